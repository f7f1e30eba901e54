// The state dir (database, logs, runtime state) and the jobs dir (work dirs): writable, with room to grow.
import { closeSync, fsyncSync, openSync, rmSync, statfsSync, statSync, writeSync } from "node:fs";
import path from "node:path";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { fail, formatBytes, ok, warn, type CheckResult } from "./check.js";
import { existingAncestor } from "./cgroups.js";

/** Below this much free space the daemon cannot be trusted to record jobs and output, bytes. */
export const MIN_FREE_BYTES = 100 * 1024 * 1024;
/** Below this much free space the doctor warns, bytes. */
export const LOW_FREE_BYTES = 1024 * 1024 * 1024;

/** How much room a directory needs, bytes, and what fills it (for the warning). */
interface Room {
  min: number;
  low: number;
  fills: string;
}
const LOGS_AND_WORK: Room = { min: MIN_FREE_BYTES, low: LOW_FREE_BYTES, fills: "jobs' logs and work dirs" };
// A running job keeps ~20 KiB in the run dir (its spec, runc's state, pid files); a small tmpfs such as
// systemd's /run (10 % of RAM) holds thousands.
const RUNTIME_STATE: Room = { min: 4 * 1024 * 1024, low: 32 * 1024 * 1024, fills: "running jobs' runtime state" };

/** Checks the state dir and, when they lie elsewhere, the jobs dir and the run dir. */
export function checkStateDirs(config: DaemonConfig): CheckResult[] {
  const out = [checkDir("state", "state dir", config.stateDir, "state.dir", config.idMapBase, LOGS_AND_WORK)];
  const outside = (dir: string) => {
    const rel = path.relative(config.stateDir, dir);
    return rel.startsWith("..") || path.isAbsolute(rel);
  };
  if (outside(config.jobsDir)) out.push(checkDir("jobs", "jobs dir", config.jobsDir, "filesystem.baseDir", config.idMapBase, LOGS_AND_WORK));
  // The jobs' mapped root never enters the run dir: runc, as root, reads the bundle and passes the rest as descriptors.
  if (outside(config.runDir)) out.push(checkDir("run", "run dir", config.runDir, "state.runDir", undefined, RUNTIME_STATE));
  return out;
}

/** The first ancestor of `dir` that other users cannot search (no o+x), if any. */
export function unsearchableAncestor(dir: string): string | undefined {
  for (let p = path.dirname(dir); ; p = path.dirname(p)) {
    if (!(statSync(p).mode & 0o001)) return p;
    if (p === path.dirname(p)) return undefined;
  }
}

/** `dir` (or, if it does not exist yet, the directory it will be created in) takes a synced write, and has room. */
function checkDir(id: string, title: string, dir: string, key: string, idMapBase: number | undefined, room: Room): CheckResult {
  const target = existingAncestor(dir);
  const where = target === dir ? dir : `${target} (${dir} does not exist yet; the daemon creates it)`;
  if (!statSync(target).isDirectory()) return fail(id, title, `${target} is not a directory`, `set ${key} to a directory`);
  const probe = path.join(target, `.joblet-doctor-${process.pid}`);
  try {
    const fd = openSync(probe, "wx", 0o600);
    try {
      writeSync(fd, "joblet doctor\n");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return fail(id, title, `cannot write to ${where}: ${(err as Error).message}`, `run as root, make ${target} writable, or set ${key} to a writable local directory`);
  } finally {
    rmSync(probe, { force: true });
  }
  // Jobs whose root is an unprivileged host uid (user namespace) must pass through every parent directory.
  const closed = idMapBase === undefined ? undefined : unsearchableAncestor(target === dir ? dir : path.join(target, "x"));
  if (closed !== undefined) {
    return fail(id, title, `jobs run as host uid ${idMapBase} (security.userNamespace) and cannot pass through ${closed} (no o+x) to reach ${dir}`, `chmod o+x ${closed}, move ${key}, or set security.userNamespace: false`);
  }
  const s = statfsSync(target);
  const free = s.bavail * s.bsize;
  const found = `${where} is writable; ${formatBytes(free)} free of ${formatBytes(s.blocks * s.bsize)}`;
  if (free < room.min) return fail(id, title, found, `free space on that filesystem (under ${formatBytes(room.min)}), or move ${key}`);
  if (free < room.low) return warn(id, title, found, `${room.fills} will soon fill it: free space or move ${key}`);
  return ok(id, title, found);
}
