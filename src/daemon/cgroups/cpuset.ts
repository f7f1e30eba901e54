// CPU and memory-node lists in the kernel's list format ("0-3", "1,3,5", "0-1,4-5"), as used by
// /sys/devices/system/cpu/online, cpuset.cpus and the OCI spec's `linux.resources.cpu.cpus`.
import { readFileSync } from "node:fs";
import path from "node:path";
import { invalidArgument } from "../../shared/errors.js";

/** Highest CPU count a list may name: the kernel's largest CONFIG_NR_CPUS (x86_64 MAXSMP) is 8192. */
const MAX_CPUS = 8192;
/** Longest user-written `cpuCores` spec accepted; a real list of online CPUs is far shorter. */
const MAX_SPEC_CHARS = 256;

const PART_RE = /^(\d+)(?:-(\d+))?$/;

/**
 * Parses the kernel list format into sorted, de-duplicated ids. "" (an empty kernel file) is []. Throws an
 * Error saying which part is wrong for empty parts, descending ranges, non-digits (whitespace included) and
 * ids at or above 8192. Callers trim kernel files' trailing newline first.
 */
export function parseCpuList(text: string): number[] {
  if (text === "") return [];
  const ids = new Set<number>();
  for (const part of text.split(",")) {
    const m = PART_RE.exec(part);
    if (!m) throw new Error(`bad part ${JSON.stringify(part)}: expected N or N-M with decimal N, M`);
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    if (last < first) throw new Error(`bad range ${JSON.stringify(part)}: ${last} is below ${first}`);
    if (last >= MAX_CPUS) throw new Error(`id ${last} in ${JSON.stringify(part)} is not below ${MAX_CPUS}`);
    for (let id = first; id <= last; id++) ids.add(id);
  }
  return [...ids].sort((a, b) => a - b);
}

/** Formats ids as the shortest kernel list: [0,1,2,4] → "0-2,4"; [] → "". Input need not be sorted. */
export function formatCpuList(ids: readonly number[]): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

function readList(file: string): number[] | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return parseCpuList(text.trim());
}

/** The online CPUs of this host, from `<sysRoot>/devices/system/cpu/online`. */
export function onlineCpus(sysRoot = "/sys"): number[] {
  const file = path.join(sysRoot, "devices/system/cpu/online");
  const ids = readList(file);
  if (ids === undefined || ids.length === 0) throw new Error(`${file}: no online CPUs listed`);
  return ids;
}

/** The online memory nodes, from `<sysRoot>/devices/system/node/online`; [0] on kernels without NUMA. */
export function onlineMems(sysRoot = "/sys"): number[] {
  const ids = readList(path.join(sysRoot, "devices/system/node/online"));
  return ids === undefined || ids.length === 0 ? [0] : ids;
}

/**
 * Checks a user's `cpuCores` spec against the online CPUs and returns it normalised ("1,0,1" → "0-1").
 * Throws INVALID_ARGUMENT naming the field, the spec and this host's online CPUs. Callers that treat an
 * empty spec as "no CPU pinning" must not call this with "".
 */
export function validateCpuCores(spec: string, online: readonly number[]): string {
  const fail = (reason: string) =>
    invalidArgument(
      "cpuCores",
      `a CPU list such as "0-1" or "0,2" using online CPUs ${formatCpuList(online)}`,
      spec,
      reason,
    );
  if (spec.length === 0) throw fail("the list is empty");
  if (spec.length > MAX_SPEC_CHARS) throw fail(`the list is longer than ${MAX_SPEC_CHARS} characters`);
  let ids: number[];
  try {
    ids = parseCpuList(spec);
  } catch (err) {
    throw fail((err as Error).message);
  }
  const onlineSet = new Set(online);
  const offline = ids.filter((id) => !onlineSet.has(id));
  if (offline.length > 0) throw fail(`CPU ${formatCpuList(offline)} not online on this host`);
  return formatCpuList(ids);
}
