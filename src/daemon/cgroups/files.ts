// Reading cgroup control files. A missing file means the controller is absent, the kernel is older, or the
// cgroup went away between two reads: every reader here turns that into "no value", never an error.
import { readFileSync, statSync } from "node:fs";
import { JobletError } from "../../shared/errors.js";

/** Errors that mean "this file or cgroup is not there" (ENODEV: a controller file of a dying cgroup). */
const GONE = new Set(["ENOENT", "ENODEV", "ENOTDIR"]);

/** The file's text, or undefined when it does not exist. */
export function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    if (GONE.has((err as NodeJS.ErrnoException).code ?? "")) return undefined;
    throw new JobletError("INTERNAL", `reading ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function toNumber(file: string, text: string): number {
  const n = Number(text);
  if (text === "" || !Number.isFinite(n)) {
    throw new JobletError("INTERNAL", `${file}: expected a number, got ${JSON.stringify(text.slice(0, 40))}`);
  }
  return n;
}

/** A single-number file such as memory.current; 0 when missing. */
export function readNumber(file: string): number {
  const text = readOptional(file);
  return text === undefined ? 0 : toNumber(file, text.trim());
}

/** One value of a flat-keyed file ("key value" lines: cpu.stat, memory.events, memory.oom_control); 0 when missing. */
export function readKeyed(file: string, key: string): number {
  const text = readOptional(file);
  if (text === undefined) return 0;
  for (const line of text.split("\n")) {
    const [k, v] = line.split(" ");
    if (k === key && v !== undefined) return toNumber(file, v);
  }
  return 0;
}

/** The pids listed in a cgroup.procs file; [] when missing. */
export function readPids(file: string): number[] {
  const text = readOptional(file);
  if (text === undefined) return [];
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => toNumber(file, l));
}

/** True when `dir` exists and is a directory. */
export function isDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
