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

/** Checks the state dir and, when it lies elsewhere, the jobs dir. */
export function checkStateDirs(config: DaemonConfig): CheckResult[] {
  const out = [checkDir("state", "state dir", config.stateDir, "state.dir", config.idMapBase)];
  const rel = path.relative(config.stateDir, config.jobsDir);
  if (rel.startsWith("..") || path.isAbsolute(rel)) out.push(checkDir("jobs", "jobs dir", config.jobsDir, "filesystem.baseDir", config.idMapBase));
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
function checkDir(id: string, title: string, dir: string, key: string, idMapBase: number | undefined): CheckResult {
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
  if (free < MIN_FREE_BYTES) return fail(id, title, found, `free space on that filesystem (under ${formatBytes(MIN_FREE_BYTES)}), or move ${key}`);
  if (free < LOW_FREE_BYTES) return warn(id, title, found, `jobs' logs and work dirs will soon fill it: free space or move ${key}`);
  return ok(id, title, found);
}
