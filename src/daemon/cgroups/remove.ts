// Removing a cgroup directory tree. On cgroupfs, rmdir removes a directory together with its control files,
// but only once it has no child cgroups (else EBUSY) and no live processes (else EBUSY). Processes that were
// just killed can keep a cgroup busy for a few milliseconds (7 ms after `runc kill --all KILL` here), so
// busy trees are retried on runc's schedule (libcontainer's RemovePath: 10 ms doubling, 5 retries).
import { readdirSync, rmdirSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { JobletError } from "../../shared/errors.js";
import { readPids } from "./files.js";

/** Waits between attempts on a busy cgroup, milliseconds (≈310 ms in all). */
const RETRY_DELAYS_MS = [10, 20, 40, 80, 160];

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? "";
}

/** One pass over a tree, children first; busy directories are collected, absent ones ignored. */
function removeTreeOnce(dir: string, busy: string[]): boolean {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (errCode(err) === "ENOENT") return true;
    throw new JobletError("INTERNAL", `listing cgroup ${dir}: ${(err as Error).message}`, { cause: err });
  }
  let childrenGone = true;
  for (const e of entries) {
    if (e.isDirectory()) childrenGone = removeTreeOnce(path.join(dir, e.name), busy) && childrenGone;
  }
  // A parent of a busy child is busy by definition; it is not reported, its child is.
  if (!childrenGone) return false;
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    if (errCode(err) === "ENOENT") return true;
    if (errCode(err) === "EBUSY") {
      busy.push(dir);
      return false;
    }
    throw new JobletError("INTERNAL", `removing cgroup ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Removes the cgroup directory trees `dirs` (one per hierarchy) of cgroup `cgPath`, retrying while busy.
 * Throws FAILED_PRECONDITION naming the pids still inside when it stays busy.
 */
export async function removeCgroupDirs(cgPath: string, dirs: readonly string[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const busy: string[] = [];
    for (const dir of dirs) removeTreeOnce(dir, busy);
    if (busy.length === 0) return;
    const delayMs = RETRY_DELAYS_MS[attempt];
    if (delayMs === undefined) throw busyError(cgPath, busy);
    await sleep(delayMs);
  }
}

function busyError(cgPath: string, busy: string[]): JobletError {
  const pids = [...new Set(busy.flatMap((dir) => readPids(path.join(dir, "cgroup.procs"))))].sort((a, b) => a - b);
  const where = busy.join(", ");
  // v2 can report a cgroup busy with an empty cgroup.procs while killed tasks are still being reaped.
  const what = pids.length > 0 ? `still has processes ${pids.join(", ")}` : "is still busy although it lists no processes";
  return new JobletError("FAILED_PRECONDITION", `cgroup ${cgPath} ${what} (in ${where})`, {
    hint: "stop every process of the job first (runc kill --all <id> KILL), then remove the cgroup again",
  });
}
