// Whether every limit a job can have is enforceable here: the doctor makes its own test cgroup under the
// configured parent, writes each limit there and reads it back, then runs a short direct-IO write in it
// under a bandwidth limit and measures the rate (the one limit that silently does nothing when it is set on
// the wrong device or the kernel lacks blk-throttle). The test cgroup is always removed, and so is the
// parent if the doctor created it.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { blockDeviceFor, type BlockDevice } from "../cgroups/blockdev.js";
import { formatCpuList, onlineCpus, onlineMems } from "../cgroups/cpuset.js";
import { findV1Hierarchies, type CgroupMode } from "../cgroups/detect.js";
import { createCgroupManager } from "../cgroups/factory.js";
import type { CgroupManager } from "../cgroups/manager.js";
import { fail, failFrom, formatBytes, ok, warn, type CheckResult } from "./check.js";

/** Bandwidth limit of the throttling self-test, bytes/s. */
export const THROTTLE_TEST_BPS = 4 * 1024 * 1024;
/** Bytes the self-test writes: 1.5 s at the limit. Measured here: 6 MiB in 1.44 s (1.04× the limit). */
const THROTTLE_TEST_BYTES = 6 * 1024 * 1024;
/** dd block size; 24 direct writes of 256 KiB. */
const THROTTLE_BLOCK_BYTES = 256 * 1024;
/** Measured rates up to this multiple of the limit count as throttled (blk-throttle allows a small burst). */
const THROTTLE_MAX_RATIO = 1.5;
/** Below this multiple the disk itself may be the bottleneck: the test says nothing about throttling. */
const THROTTLE_MIN_RATIO = 0.5;
/** The self-test gives up after this long, ms. */
const THROTTLE_TIMEOUT_MS = 15_000;
/** Memory limit written to the test cgroup, bytes. */
const TEST_MEMORY_BYTES = 64 * 1024 * 1024;

/** Where a controller's files are: v1 — its own hierarchy; v2 — the one unified tree. */
interface Layout {
  mode: CgroupMode;
  /** The cgroup root holding `controller`, or undefined when it is not available. */
  rootOf(controller: string): string | undefined;
  /** Hint for a controller that is not available. */
  missingHint(controller: string): string;
}

function v1Layout(mode: CgroupMode): Layout {
  const hierarchies = findV1Hierarchies();
  return {
    mode,
    rootOf: (c) => hierarchies.find((h) => h.controllers.includes(c))?.dir,
    missingHint: (c) => `mount the v1 ${c} hierarchy (systemd does this at boot) and make sure the kernel has it (cgroup_disable= not on the kernel command line)`,
  };
}

function v2Layout(root: string, parentDir: string): Layout {
  // A v2 controller is usable in a child of the parent exactly when the parent's subtree_control has it.
  const enabled = new Set((readOpt(path.join(parentDir, "cgroup.subtree_control")) ?? "").split(/\s+/).filter(Boolean));
  return {
    mode: "v2",
    rootOf: (c) => (enabled.has(c) ? root : undefined),
    missingHint: (c) =>
      `enable it for the jobs' parent: echo +${c} > ${path.join(path.dirname(parentDir), "cgroup.subtree_control")} (under systemd the service needs Delegate=yes)`,
  };
}

/** One limit: the files to write (in order) and what each must read back. */
interface LimitProbe {
  id: string;
  title: string;
  controller: string;
  /** [file, value to write, text the file must then contain]. */
  writes: [string, string, string][];
}

function limitProbes(mode: CgroupMode, cpus: string, mems: string, dev: BlockDevice | undefined): LimitProbe[] {
  const devNo = dev ? `${dev.major}:${dev.minor}` : undefined;
  const bps = String(THROTTLE_TEST_BPS);
  const mem = String(TEST_MEMORY_BYTES);
  if (mode === "v2") {
    return [
      { id: "cpu", title: "CPU limit", controller: "cpu", writes: [["cpu.max", "50000 100000", "50000 100000"]] },
      { id: "memory", title: "memory limit", controller: "memory", writes: [["memory.max", mem, mem]] },
      { id: "pids", title: "process limit", controller: "pids", writes: [["pids.max", "32", "32"]] },
      { id: "cpuset", title: "CPU cores", controller: "cpuset", writes: [["cpuset.cpus", cpus, cpus], ["cpuset.mems", mems, mems]] },
      { id: "io", title: "IO limit", controller: "io", writes: devNo ? [["io.max", `${devNo} rbps=${bps} wbps=${bps}`, `${devNo} rbps=${bps} wbps=${bps}`]] : [] },
    ];
  }
  return [
    { id: "cpu", title: "CPU limit", controller: "cpu", writes: [["cpu.cfs_period_us", "100000", "100000"], ["cpu.cfs_quota_us", "50000", "50000"]] },
    { id: "memory", title: "memory limit", controller: "memory", writes: [["memory.limit_in_bytes", mem, mem]] },
    { id: "pids", title: "process limit", controller: "pids", writes: [["pids.max", "32", "32"]] },
    { id: "cpuset", title: "CPU cores", controller: "cpuset", writes: [["cpuset.cpus", cpus, cpus], ["cpuset.mems", mems, mems]] },
    {
      id: "io",
      title: "IO limit",
      controller: "blkio",
      writes: devNo
        ? [["blkio.throttle.read_bps_device", `${devNo} ${bps}`, `${devNo} ${bps}`], ["blkio.throttle.write_bps_device", `${devNo} ${bps}`, `${devNo} ${bps}`]]
        : [],
    },
  ];
}

/** The nearest existing directory at or above `dir` (the jobs dir may not exist before the first start). */
export function existingAncestor(dir: string): string {
  let p = path.resolve(dir);
  while (!existsSync(p) && p !== path.dirname(p)) p = path.dirname(p);
  return p;
}

/** Runs the cgroup and IO checks; never leaves a cgroup or file behind. */
export async function checkCgroups(config: DaemonConfig): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  let cgroups: CgroupManager;
  try {
    cgroups = createCgroupManager();
  } catch (err) {
    return [failFrom("cgroup.mode", "cgroups", err, "mount cgroupfs at /sys/fs/cgroup")];
  }
  const root = "/sys/fs/cgroup";
  results.push(
    ok(
      "cgroup.mode",
      "cgroups",
      cgroups.mode === "hybrid"
        ? `hybrid: v1 controllers under ${root}, a cgroup2 mount at ${root}/unified (jobs are limited through v1)`
        : cgroups.mode === "v1"
          ? `v1: one hierarchy per controller under ${root}`
          : `v2: unified hierarchy at ${root}`,
    ),
  );

  // The block device the IO limit uses: the whole disk under the jobs dir (where work dirs live).
  const jobsDir = existingAncestor(config.jobsDir);
  let dev: BlockDevice | undefined;
  try {
    dev = blockDeviceFor(jobsDir);
    results.push(ok("io.device", "IO device", `${dev.name} (${dev.major}:${dev.minor}) holds ${jobsDir}${jobsDir === config.jobsDir ? "" : ` (where ${config.jobsDir} will be)`}`));
  } catch (err) {
    results.push(failFrom("io.device", "IO device", err, "put filesystem.baseDir on a block-device filesystem (ext4, xfs)"));
  }

  const parent = config.cgroupParent;
  const parentExisted = cgroups.exists(parent);
  const testPath = `${parent}/joblet-doctor-${process.pid}`;
  try {
    cgroups.ensureParent(parent);
  } catch (err) {
    results.push(failFrom("cgroup.parent", "cgroup parent", err, "run joblet doctor as root, and check cgroup.baseDir"));
    return results;
  }
  const layout = cgroups.mode === "v2" ? v2Layout(root, path.join(root, parent)) : v1Layout(cgroups.mode);
  const createdDirs: string[] = [];
  try {
    // Create the test cgroup in every hierarchy a probe needs (combined hierarchies appear once).
    const controllers = ["cpu", "cpuacct", "memory", "pids", "cpuset", cgroups.mode === "v2" ? "io" : "blkio"];
    const dirs = new Map<string, string>();
    for (const c of controllers) {
      const r = layout.rootOf(c);
      if (r === undefined) continue;
      const dir = path.join(r, testPath);
      dirs.set(c, dir);
      if (!createdDirs.includes(dir)) {
        mkdirSync(dir);
        createdDirs.push(dir);
      }
    }
    results.push(
      ok("cgroup.parent", "cgroup parent", `${parent} ${parentExisted ? "exists" : "created"}; test cgroup ${testPath} created in ${createdDirs.length} ${cgroups.mode === "v2" ? "tree" : "hierarchies"}`),
    );

    const cpus = formatCpuList(onlineCpus().slice(0, 1));
    const mems = formatCpuList(onlineMems().slice(0, 1));
    const usable = new Set<string>();
    for (const probe of limitProbes(cgroups.mode, cpus, mems, dev)) {
      const r = probeLimit(probe, dirs.get(probe.controller), layout, dev);
      if (r.status === "ok") usable.add(probe.controller);
      results.push(r);
    }
    results.push(checkSwap(cgroups.mode, dirs.get("memory")));

    // The self-test process joins the test cgroup everywhere it could be set up; a v1 cpuset cgroup only
    // takes tasks once its cpus and mems are set.
    const joinDirs = [...new Set([...dirs].filter(([c]) => c !== "cpuset" || usable.has("cpuset")).map(([, d]) => d))];
    const ioController = cgroups.mode === "v2" ? "io" : "blkio";
    const throttle = usable.has(ioController) ? await throttleSelfTest(jobsDir, joinDirs) : undefined;
    if (!throttle) {
      results.push(fail("io.throttle", "IO throttling", "not tested: the IO limit could not be set", "fix the IO limit check above"));
    } else if ("error" in throttle) {
      results.push(fail("io.throttle", "IO throttling", throttle.error, "check the IO device above and that the kernel has blk-throttle (CONFIG_BLK_DEV_THROTTLING)"));
    } else {
      const ratio = throttle.bytesPerSec / THROTTLE_TEST_BPS;
      const what = `${formatBytes(THROTTLE_TEST_BYTES)} of direct writes under a ${formatBytes(THROTTLE_TEST_BPS)}/s limit ran at ${formatBytes(throttle.bytesPerSec)}/s (${throttle.seconds.toFixed(2)} s, ${ratio.toFixed(2)}× the limit)`;
      if (ratio > THROTTLE_MAX_RATIO) {
        results.push(fail("io.throttle", "IO throttling", `${what}: not throttled`, `the limit on ${dev?.name ?? "the disk"} had no effect: check that ${dev?.name} is the disk under ${jobsDir} and that the kernel has blk-throttle`));
      } else if (ratio < THROTTLE_MIN_RATIO) {
        results.push(warn("io.throttle", "IO throttling", `${what}: slower than the limit`, "the disk itself is slower than the test limit, so throttling could not be confirmed; rerun when the disk is idle"));
      } else {
        results.push(ok("io.throttle", "IO throttling", what));
      }
    }
    results.push(checkCpuAccounting(cgroups.mode, dirs.get(cgroups.mode === "v2" ? "cpu" : "cpuacct"), throttle !== undefined && !("error" in throttle), layout));
  } catch (err) {
    results.push(failFrom("cgroup.probe", "cgroup probe", err, "run joblet doctor as root, and check cgroup.baseDir"));
  } finally {
    await cgroups.remove(testPath).catch((err: unknown) => results.push(failFrom("cgroup.cleanup", "cgroup cleanup", err, `remove ${testPath} by hand (rmdir in each hierarchy)`)));
    if (!parentExisted) await cgroups.remove(parent).catch(() => undefined);
  }
  return results;
}

function probeLimit(probe: LimitProbe, dir: string | undefined, layout: Layout, dev: BlockDevice | undefined): CheckResult {
  const id = `cgroup.${probe.id}`;
  if (dir === undefined) return fail(id, probe.title, `the ${probe.controller} controller is not available`, layout.missingHint(probe.controller));
  if (probe.writes.length === 0) return fail(id, probe.title, "not tested: no block device for the IO limit", "fix the IO device check above");
  const shown: string[] = [];
  for (const [file, value, expected] of probe.writes) {
    const full = path.join(dir, file);
    try {
      writeFileSync(full, value);
    } catch (err) {
      return fail(id, probe.title, `writing ${JSON.stringify(value)} to ${full} failed: ${(err as Error).message}`, "run joblet doctor as root; a missing file means the kernel lacks this feature of the controller");
    }
    const back = readOpt(full);
    if (back === undefined || !back.includes(expected)) {
      return fail(id, probe.title, `${full} reads ${JSON.stringify(back?.trim())} after writing ${JSON.stringify(value)}`, "the kernel does not apply this limit; check its cgroup configuration");
    }
    shown.push(`${file}=${value}`);
  }
  const extra = probe.id === "io" && dev ? ` on ${dev.name}` : "";
  return ok(id, probe.title, `${shown.join(", ")}${extra} set and read back`);
}

/** Swap accounting: without it a job with a memory limit can still fill swap. */
function checkSwap(mode: CgroupMode, memoryDir: string | undefined): CheckResult {
  const id = "cgroup.swap";
  const title = "swap limit";
  if (memoryDir === undefined) return fail(id, title, "not tested: no memory controller", "fix the memory limit check above");
  const file = mode === "v2" ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
  const full = path.join(memoryDir, file);
  if (!existsSync(full)) {
    const swaps = (readOpt("/proc/swaps") ?? "").trim().split("\n").slice(1).filter(Boolean);
    const hint = mode === "v2" ? "use a kernel with CONFIG_MEMCG_SWAP" : "boot with swapaccount=1 on the kernel command line";
    return swaps.length > 0
      ? fail(id, title, `swap accounting is off (no ${file}) and the host has ${swaps.length} swap area(s): jobs can use swap beyond --max-memory`, hint)
      : warn(id, title, `swap accounting is off (no ${file}); harmless while the host has no swap`, `${hint} before enabling swap`);
  }
  const value = mode === "v2" ? "0" : String(TEST_MEMORY_BYTES);
  try {
    writeFileSync(full, value);
  } catch (err) {
    return fail(id, title, `writing ${value} to ${full} failed: ${(err as Error).message}`, "run joblet doctor as root");
  }
  return ok(id, title, `${file}=${value} set (swap is accounted)`);
}

/** CPU accounting: the usage counter exists and counted the self-test's CPU time. */
function checkCpuAccounting(mode: CgroupMode, dir: string | undefined, ran: boolean, layout: Layout): CheckResult {
  const id = "cgroup.cpuacct";
  const title = "CPU accounting";
  const controller = mode === "v2" ? "cpu" : "cpuacct";
  if (dir === undefined) return fail(id, title, `the ${controller} controller is not available`, layout.missingHint(controller));
  const file = path.join(dir, mode === "v2" ? "cpu.stat" : "cpuacct.usage");
  const text = readOpt(file);
  const ns = mode === "v2" ? Number(/^usage_usec (\d+)$/m.exec(text ?? "")?.[1] ?? NaN) * 1000 : Number(text?.trim() ?? NaN);
  if (!Number.isFinite(ns)) return fail(id, title, `${file} is missing or unreadable`, "the kernel lacks CPU accounting for cgroups (CONFIG_CGROUP_CPUACCT)");
  if (ran && ns <= 0) return fail(id, title, `${file} stayed 0 while the self-test ran in the cgroup`, "CPU usage of jobs would read 0; check the kernel's cgroup CPU accounting");
  return ok(id, title, `${path.basename(file)} counted ${(ns / 1e6).toFixed(1)} ms of the self-test's CPU time`);
}

/**
 * Writes THROTTLE_TEST_BYTES with `dd oflag=direct` from a process placed in `dirs` (the test cgroup) and
 * times it. The process is started blocked on stdin, moved into the cgroup, then released.
 */
async function throttleSelfTest(dir: string, dirs: string[]): Promise<{ bytesPerSec: number; seconds: number } | { error: string }> {
  const file = path.join(dir, `.joblet-doctor-${process.pid}.io`);
  const count = THROTTLE_TEST_BYTES / THROTTLE_BLOCK_BYTES;
  const child = spawn("sh", ["-c", `read go && exec dd if=/dev/zero of="$0" bs=${THROTTLE_BLOCK_BYTES} count=${count} oflag=direct`, file], {
    stdio: ["pipe", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  try {
    if (child.pid === undefined) return { error: "could not start sh/dd" };
    for (const d of dirs) writeFileSync(path.join(d, "cgroup.procs"), String(child.pid));
    const started = performance.now();
    child.stdin.end("go\n");
    const timer = setTimeout(() => child.kill("SIGKILL"), THROTTLE_TIMEOUT_MS);
    const code = await exited;
    clearTimeout(timer);
    const seconds = (performance.now() - started) / 1000;
    if (code !== 0) {
      return { error: code === null ? `dd did not finish ${formatBytes(THROTTLE_TEST_BYTES)} within ${THROTTLE_TIMEOUT_MS / 1000} s` : `dd failed in ${dir}: ${stderr.trim().split("\n")[0]}` };
    }
    return { bytesPerSec: THROTTLE_TEST_BYTES / seconds, seconds };
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    return { error: `could not move the self-test into the test cgroup: ${(err as Error).message}` };
  } finally {
    rmSync(file, { force: true });
  }
}

function readOpt(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}
