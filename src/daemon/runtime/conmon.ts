// Starting a job under conmon. conmon runs `runc create`, holds the job's stdio and writes it to the log
// file, records the exit code in `<exitDir>/<id>`, and outlives the daemon: it daemonizes, so the daemon is
// never the parent of a job and a daemon restart or crash loses neither output nor exit code.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { JobletError } from "../../shared/errors.js";

/** Files and directories of one job's supervision. */
export interface SupervisionPaths {
  bundleDir: string;
  /** Written by runc once the container's init process exists (and `runc start` may be called). */
  pidFile: string;
  conmonPidFile: string;
  /** conmon writes `<exitDir>/<id>` holding the exit code when the job's PID 1 ends. */
  exitDir: string;
  socketDir: string;
  /** conmon's k8s-file log of stdout and stderr. */
  logPath: string;
  /** runc's own log (JSON lines), read to explain a failed create. */
  runtimeLogPath: string;
  /** conmon's stderr, for diagnostics. */
  conmonLogPath: string;
}

/**
 * Where a daemon keeps its jobs' files. `stateDir` holds what must outlive a reboot's loss of the runtime state
 * (exit codes, logs); `runDir` what dies with the host anyway (bundles, runc's state, conmon's sockets), and
 * may be the same directory.
 */
export interface StateDirs {
  stateDir: string;
  runDir: string;
}

/** Bundles (`<runDir>/run/<id>`), one per job not yet cleaned up. */
export function bundlesDir(dirs: StateDirs): string {
  return path.join(dirs.runDir, "run");
}

/** The runtime's --root (its per-container state dirs). */
export function runtimeRootDir(dirs: StateDirs): string {
  return path.join(dirs.runDir, "runtime");
}

/** conmon's exit files, `<exitsDir>/<id>` holding the exit code: on disk, so a daemon down at the job's end still learns it. */
export function exitsDir(dirs: StateDirs): string {
  return path.join(dirs.stateDir, "exits");
}

/** conmon's attach sockets (one per job, made by conmon; the daemon never attaches). */
export function socketsDir(dirs: StateDirs): string {
  return path.join(dirs.runDir, "sockets");
}

/** Jobs' output logs, `<logsDir>/<id>.log`. */
export function logsDir(stateDir: string): string {
  return path.join(stateDir, "logs");
}

/** Job `id`'s output as conmon writes it (k8s-file). */
export function jobLogPath(stateDir: string, id: string): string {
  return path.join(logsDir(stateDir), `${id}.log`);
}

/** The paths of job `id` under the fixed layout of `dirs`. */
export function supervisionPaths(dirs: StateDirs, id: string): SupervisionPaths {
  const bundleDir = path.join(bundlesDir(dirs), id);
  return {
    bundleDir,
    pidFile: path.join(bundleDir, "pidfile"),
    conmonPidFile: path.join(bundleDir, "conmon.pid"),
    exitDir: exitsDir(dirs),
    socketDir: socketsDir(dirs),
    logPath: jobLogPath(dirs.stateDir, id),
    runtimeLogPath: path.join(bundleDir, "runtime.log"),
    conmonLogPath: path.join(bundleDir, "conmon.log"),
  };
}

/** Binaries and the runtime's state root. */
export interface ConmonOptions {
  conmonPath: string;
  runtimePath: string;
  runtimeRoot: string;
  /** How long `runc create` may take before the start is abandoned, milliseconds. */
  createTimeoutMs?: number;
}

/**
 * Launches conmon for job `id` and waits until the container is created (conmon reports it on its sync
 * pipe once `runc create` has written the pidfile) and may be started. Throws a FAILED_PRECONDITION JobletError carrying the runtime's own message when create
 * fails (bad command, bad limit, …).
 */
export async function launchConmon(id: string, p: SupervisionPaths, opts: ConmonOptions): Promise<ConmonStarted> {
  const args = [
    "--api-version", "1",
    "-c", id, "-u", id, "-n", id,
    "-r", opts.runtimePath,
    "-b", p.bundleDir,
    "-p", p.pidFile,
    "--exit-dir", p.exitDir,
    "--conmon-pidfile", p.conmonPidFile,
    "--socket-dir-path", p.socketDir,
    "-l", `k8s-file:${p.logPath}`,
    // conmon would sync() the whole host after the job ends, adding up to seconds per job; page cache
    // survives a daemon crash, only a power loss could cost the last output.
    "--no-sync-log",
    // conmon writes an "oom" marker (and a copy of the exit code) into its persist dir; without one it
    // writes "oom" into its working directory. Both go to the bundle, removed with it.
    "--persist-dir", p.bundleDir,
    "--runtime-arg", "--root", "--runtime-arg", opts.runtimeRoot,
    "--runtime-arg", "--log", "--runtime-arg", p.runtimeLogPath,
    "--runtime-arg", "--log-format", "--runtime-arg", "json",
  ];
  const errFd = openSync(p.conmonLogPath, "a", 0o600);
  const timeoutMs = opts.createTimeoutMs ?? 30_000;
  let reply: SyncReply | undefined;
  const t0 = performance.now();
  let spawnedAt = t0;
  try {
    // conmon forks and its first process exits at once; the monitor is re-parented away from the daemon.
    // fd 3 is the sync pipe (_OCI_SYNCPIPE): once `runc create` has exited, conmon writes one JSON line,
    // `{"data": PID}` or `{"data": -1, "message": "…"}`, and marks the fd close-on-exec so neither the
    // runtime nor the job holds it. Waiting on it replaces polling for the pidfile (1–20 ms late each time).
    const child = spawn(opts.conmonPath, args, {
      detached: true,
      cwd: p.bundleDir,
      stdio: ["ignore", "ignore", errFd, "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", _OCI_SYNCPIPE: "3" },
    });
    spawnedAt = performance.now();
    reply = await readSyncReply(child, timeoutMs);
  } catch (err) {
    if (err instanceof JobletError) throw err;
    throw new JobletError("FAILED_PRECONDITION", `cannot run conmon (${opts.conmonPath}): ${(err as Error).message}`, {
      hint: "install conmon (Debian package `conmon`) or set runtime.conmonPath",
      cause: err,
    });
  } finally {
    closeSync(errFd);
  }
  if (reply === "timeout") throw startFailure(id, p, `the runtime did not create the job within ${timeoutMs} ms`);
  if (reply === "closed") throw startFailure(id, p, "conmon ended without reporting the job created");
  if (reply.pid <= 0) throw startFailure(id, p, reply.message ?? "the runtime did not create the job");
  const conmonPid = readPid(p.conmonPidFile);
  if (conmonPid === undefined) throw startFailure(id, p, "conmon wrote no pidfile");
  return { conmonPid, spawnMs: spawnedAt - t0, createMs: performance.now() - spawnedAt };
}

/** A job's conmon, launched and reporting its container created. */
export interface ConmonStarted {
  conmonPid: number;
  /**
   * Milliseconds the daemon's thread spent in spawn(): libuv forks and waits until the child has called
   * execve, so on a loaded host this is mostly waiting for the child to be scheduled.
   */
  spawnMs: number;
  /** Milliseconds from then until conmon reported the container created (`runc create` done). */
  createMs: number;
}

/** What conmon said on its sync pipe: the container's pid (≤ 0 when create failed) or why nothing came. */
type SyncReply = { pid: number; message?: string } | "closed" | "timeout";

/** Parses conmon's sync-pipe line (API version 1: `{"data": N}` plus `"message"` on failure). */
export function parseSyncReply(line: string): { pid: number; message?: string } | undefined {
  try {
    const msg = JSON.parse(line) as { data?: unknown; pid?: unknown; message?: unknown };
    const pid = typeof msg.data === "number" ? msg.data : typeof msg.pid === "number" ? msg.pid : undefined;
    if (pid === undefined) return undefined;
    return typeof msg.message === "string" && msg.message ? { pid, message: msg.message } : { pid };
  } catch {
    return undefined;
  }
}

/**
 * Waits for the first line conmon writes to the sync pipe (fd 3 of `child`), then closes the daemon's end.
 * "closed" when the pipe ends first (conmon failed, or its first process exited non-zero), "timeout" after
 * `timeoutMs`; a spawn failure rejects.
 */
function readSyncReply(child: ChildProcess, timeoutMs: number): Promise<SyncReply> {
  const pipe = child.stdio[3] as Readable;
  return new Promise<SyncReply>((resolve, reject) => {
    let text = "";
    const done = (r: SyncReply) => {
      clearTimeout(timer);
      pipe.removeAllListeners("data");
      pipe.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done("timeout"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      pipe.destroy();
      reject(err);
    });
    pipe.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const nl = text.indexOf("\n");
      if (nl < 0) return;
      done(parseSyncReply(text.slice(0, nl)) ?? { pid: -1, message: `conmon wrote ${JSON.stringify(text.slice(0, nl))} on its sync pipe` });
    });
    pipe.once("end", () => done("closed"));
    pipe.once("error", () => done("closed"));
  });
}

/** The pid in `file`, or undefined when the file is missing or not yet written. */
export function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True while a process with this pid runs. A zombie counts as gone: conmon is re-parented to the host's
 * init, which may take a while to reap it (seen here: ~1 s), and its exit is what matters.
 */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state is the first field after the parenthesised command name (which may itself hold spaces).
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** The runtime's last error message for this job, read from its JSON log, else conmon's stderr. */
export function runtimeErrorMessage(p: SupervisionPaths): string | undefined {
  for (const file of [p.runtimeLogPath, p.conmonLogPath]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    const lines = text.trim().split("\n").reverse();
    for (const line of lines) {
      try {
        const entry = JSON.parse(line) as { level?: string; msg?: string };
        if (entry.level === "error" && entry.msg) return entry.msg;
      } catch {
        if (line.trim()) return line.trim();
      }
    }
  }
  return undefined;
}

function startFailure(id: string, p: SupervisionPaths, fallback: string): JobletError {
  const msg = runtimeErrorMessage(p) ?? fallback;
  return new JobletError("FAILED_PRECONDITION", `job ${id} could not start: ${msg}`);
}
