// The runtime facade the job service uses: one job = one bundle, one conmon, one runc container. Knows the
// state dir layout; knows nothing of job records.
import { existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, watch, writeFileSync, type FSWatcher, type Stats } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { JobletError, invalidArgument } from "../../shared/errors.js";
import { isJobId } from "../../shared/ids.js";
import { bundlesDir, exitsDir, isAlive, launchConmon, logsDir, readPid, runtimeRootDir, socketsDir, supervisionPaths, type ConmonStarted, type SupervisionPaths } from "./conmon.js";
import type { HostFs } from "./hostfs.js";
import { RuntimeClient } from "./runc.js";
import { buildJobSpec, type IdMap, type JobResources } from "./spec.js";
import { findWorkVolumePrograms, isMountPoint, mountWorkVolume, unmountWorkVolume, unmountWorkVolumeSync, type WorkVolumePrograms } from "./work-quota.js";

/** Settings of the runtime layer, from the daemon config. */
export interface JobRuntimeOptions {
  stateDir: string;
  /** Where bundles, runc's root and conmon's sockets go (config `state.runDir`; the state dir by default). */
  runDir: string;
  jobsDir: string;
  runtimePath: string;
  conmonPath: string;
  hostFs: HostFs;
  tmpBytes: number;
  /** The OCI seccomp section every job gets; undefined = none. */
  seccomp?: Record<string, unknown>;
  /** User namespace mapping of every job; undefined = jobs run as host root (in their other namespaces). */
  idMap?: IdMap;
  /**
   * Size of each job's /work, bytes: the work dir is then the mount point of an ext4 volume of this size
   * (work-quota.ts). 0 or undefined = no cap: a plain directory on the jobs dir's file system.
   */
  workSizeBytes?: number;
}

/** What a job's process is and what it may use. */
export interface JobLaunch {
  args: string[];
  env: string[];
  /** Working directory inside the job (/work or below). */
  cwd: string;
  hostname: string;
  cgroupsPath: string;
  network: "host" | "none";
  resources: JobResources;
}

/** A started job: its conmon and where the start's time went, milliseconds (for the debug log). */
export interface JobStarted extends ConmonStarted {
  /** Writing the bundle (config.json). */
  specMs: number;
  /** From the container created to its process running (the start signal taken). */
  startMs: number;
}

/** Starts, signals, inspects and removes jobs' containers. */
export class JobRuntime {
  readonly runtime: RuntimeClient;
  private readonly runtimeRoot: string;
  /** The programs work volumes need; undefined when there is no /work cap. */
  private readonly volumePrograms: WorkVolumePrograms | undefined;
  /** Volumes being mounted, per job: a second prepareWorkDir waits for the first instead of mounting twice. */
  private readonly mounting = new Map<string, Promise<void>>();
  /** The last start's turn of the event loop (see nextLaunchTurn). */
  private launchTurn: Promise<void> = Promise.resolve();

  constructor(private readonly opts: JobRuntimeOptions) {
    this.volumePrograms = opts.workSizeBytes ? findWorkVolumePrograms() : undefined;
    this.runtimeRoot = runtimeRootDir(opts);
    this.runtime = new RuntimeClient(opts.runtimePath, this.runtimeRoot);
    for (const dir of [this.runtimeRoot, bundlesDir(opts), exitsDir(opts), socketsDir(opts), logsDir(opts.stateDir)]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    mkdirSync(opts.jobsDir, { recursive: true, mode: 0o711 });
  }

  /** Supervision paths of job `id`. */
  paths(id: string): SupervisionPaths {
    return supervisionPaths(this.opts, id);
  }

  /** The job's writable work dir on the host (its /work). */
  workDir(id: string): string {
    return path.join(this.opts.jobsDir, id, "work");
  }

  /**
   * Makes the job's work dir exist and returns it; idempotent. With a /work cap (workSizeBytes) the work dir
   * is the job's own volume, made and mounted by the first call. With `relDir` (the job's working directory,
   * relative to /work) it also creates that directory inside the work dir, one component at a time. The
   * work dir may already hold files a client uploaded, symlinks included, so no path is ever followed:
   * each existing component must be a real directory (lstat), anything else is INVALID_ARGUMENT naming
   * `workdir`; each new one is made here and given to the job's root with lchown. Nothing else runs in the
   * work dir while this does (the job has not started), so what lstat saw is what mkdir and lchown meet.
   */
  async prepareWorkDir(id: string, relDir = ""): Promise<string> {
    if (!isJobId(id)) throw new Error(`refusing unsafe job id ${JSON.stringify(id)}`);
    const parts = relDir ? relDir.split("/") : [];
    if (parts.some((part) => part === "" || part === "." || part === "..")) {
      throw invalidArgument("workdir", 'a directory relative to /work such as "src/app" (no leading "/", no "." or ".." parts)', relDir);
    }
    const dir = this.workDir(id);
    mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
    this.ensureDirectory(dir, relDir, "");
    if (this.volumePrograms) await this.mountVolume(id, dir, this.volumePrograms);
    let p = dir;
    for (const part of parts) {
      p = path.join(p, part);
      this.ensureDirectory(p, relDir, path.relative(dir, p));
    }
    return dir;
  }

  /**
   * Creates directory `p` (owned by the job's root) unless it exists; an existing `p` must be a directory and
   * not a symlink. `relDir` and `component` (relative to /work; "" for /work itself) are for the error.
   */
  private ensureDirectory(p: string, relDir: string, component: string): void {
    let st = lstatOrUndefined(p);
    if (!st) {
      try {
        mkdirSync(p, { mode: 0o755 });
        // The job's root is an unprivileged host user: it must own the directories made for it.
        if (this.opts.idMap) lchownSync(p, this.opts.idMap.hostUid, this.opts.idMap.hostGid);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        st = lstatOrUndefined(p);
      }
    }
    if (st?.isDirectory()) return;
    const what = st?.isSymbolicLink() ? `a symbolic link to ${JSON.stringify(readlinkOrEmpty(p))}` : st?.isFile() ? "a file" : "not a directory";
    const where = component ? `/work/${component}` : "/work";
    throw new JobletError("INVALID_ARGUMENT", `workdir: cannot use ${JSON.stringify(relDir)} as the working directory: ${where} is ${what} (expected a directory)`, {
      hint: "upload a real directory at that path, or choose a --workdir that does not pass through a link or file",
    });
  }

  /** Mounts job `id`'s volume at `dir` unless it is mounted (by this daemon or an earlier one) or mounting. */
  private mountVolume(id: string, dir: string, programs: WorkVolumePrograms): Promise<void> {
    const pending = this.mounting.get(id);
    if (pending) return pending;
    if (isMountPoint(dir)) return Promise.resolve();
    const owner = { uid: this.opts.idMap?.hostUid ?? 0, gid: this.opts.idMap?.hostGid ?? 0 };
    const mounted = mountWorkVolume(this.workImage(id), dir, { sizeBytes: this.opts.workSizeBytes!, ...owner }, programs).finally(() =>
      this.mounting.delete(id),
    );
    this.mounting.set(id, mounted);
    return mounted;
  }

  /** The sparse image file holding job `id`'s volume (with a /work cap), next to its work dir. */
  private workImage(id: string): string {
    return path.join(this.opts.jobsDir, id, "work.img");
  }

  /** umount as found at start, or from PATH for a volume an earlier daemon (with a cap) left mounted. */
  private umountProgram(): { umount: string } {
    return { umount: this.volumePrograms?.umount ?? "umount" };
  }

  /**
   * Deletes a finished job's work dir and its volume's image (its log belongs to the logs layer: see
   * removeLog). A volume still mounted (the job never started, or an earlier daemon stopped before removing
   * it) is unmounted first, lazily if busy; if even that fails this throws and deletes nothing, because
   * deleting through the mount point would only empty the volume.
   */
  forget(id: string): void {
    if (!isJobId(id)) throw new Error(`refusing unsafe job id ${JSON.stringify(id)}`);
    unmountWorkVolumeSync(this.workDir(id), this.umountProgram());
    rmSync(path.join(this.opts.jobsDir, id), { recursive: true, force: true });
  }

  /**
   * Writes the bundle, starts conmon (which runs `runc create`), then `runc start`. Returns once the job's
   * process runs. On failure everything this call made is removed and the error is rethrown.
   */
  async start(id: string, launch: JobLaunch): Promise<JobStarted> {
    if (!isJobId(id)) throw new Error(`refusing unsafe job id ${JSON.stringify(id)}`);
    await this.nextLaunchTurn();
    const t0 = performance.now();
    const p = this.paths(id);
    mkdirSync(p.bundleDir, { recursive: true, mode: 0o700 });
    const spec = buildJobSpec({
      ...launch,
      rootfsDir: this.opts.hostFs.rootfsDir,
      etcDir: this.opts.hostFs.etcDir,
      extraRoBinds: this.opts.hostFs.extraRoBinds,
      workDir: this.workDir(id),
      tmpBytes: this.opts.tmpBytes,
      seccomp: this.opts.seccomp,
      idMap: this.opts.idMap,
    });
    const tmp = path.join(p.bundleDir, "config.json.tmp");
    writeFileSync(tmp, JSON.stringify(spec), { mode: 0o600 });
    renameSync(tmp, path.join(p.bundleDir, "config.json"));
    const specMs = performance.now() - t0;
    try {
      const started = await launchConmon(id, p, {
        conmonPath: this.opts.conmonPath,
        runtimePath: this.opts.runtimePath,
        runtimeRoot: this.runtimeRoot,
      });
      const t1 = performance.now();
      await this.runtime.start(id, readPid(p.pidFile));
      return { ...started, specMs, startMs: performance.now() - t1 };
    } catch (err) {
      await this.remove(id).catch(() => undefined);
      this.removeExitFile(id);
      throw err;
    }
  }

  /**
   * Resolves in a later turn of the event loop than the previous start's, one start per turn. Launching conmon
   * blocks the daemon's thread: libuv forks and waits until the child has called execve, 15–40 ms on the
   * loaded 2-core host (up to 0.9 s seen), mostly waiting for the child to be scheduled. 100 RunJob calls
   * read in one go used to launch all 100 conmons back to back before the loop polled again: no container
   * created meanwhile could be started, and the first of 100 jobs ran only after the last was launched. With
   * one launch per turn, the replies of conmons launched earlier and their starts are handled in between.
   */
  private nextLaunchTurn(): Promise<void> {
    // setImmediate from a callback of the check phase runs in the next turn, after that turn's I/O poll.
    const turn = this.launchTurn.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    this.launchTurn = turn;
    return turn;
  }

  /** Signals every process of the job; a job that already ended is not an error. */
  async kill(id: string, signal: "TERM" | "KILL"): Promise<void> {
    try {
      await this.runtime.kill(id, signal, true);
    } catch (err) {
      const state = await this.runtime.state(id).catch(() => undefined);
      if (state === undefined || state.status === "stopped") return;
      throw err;
    }
  }

  /**
   * Removes the container (killing what is left of it), unmounts the job's volume if it has one (its files
   * stay in the image until forget), then removes the bundle. Logs, work dir and exit file stay. The bundle
   * goes last: it marks a job not yet cleaned up, so a daemon stopped halfway finishes this on recovery.
   */
  async remove(id: string): Promise<void> {
    await this.runtime.delete(id, true);
    await unmountWorkVolume(this.workDir(id), this.umountProgram());
    rmSync(this.paths(id).bundleDir, { recursive: true, force: true });
  }

  /**
   * remove() for a job whose PID 1 has exited (conmon wrote its exit file), without running `runc delete`:
   * that is a Go process costing ~40 ms of CPU on the loaded 2-core host, once per job on the path of
   * every finished job. For a stopped container `runc delete` removes its cgroup (the caller removes that
   * itself) and its state dir under our --root, which this deletes. The container is stopped for good: the
   * job always has its own PID namespace, and the kernel kills every other process in it before its PID 1
   * finishes exiting, so nothing of it runs and nothing can be started in it again.
   */
  async removeEnded(id: string): Promise<void> {
    if (!isJobId(id)) throw new Error(`refusing unsafe job id ${JSON.stringify(id)}`);
    removeFlatDir(path.join(this.runtimeRoot, id));
    await unmountWorkVolume(this.workDir(id), this.umountProgram());
    removeFlatDir(this.paths(id).bundleDir);
  }

  /** The exit code conmon recorded, or undefined while the job's PID 1 runs. */
  exitCode(id: string): number | undefined {
    try {
      const text = readFileSync(path.join(this.paths(id).exitDir, id), "utf8").trim();
      const code = Number.parseInt(text, 10);
      return Number.isInteger(code) ? code : undefined;
    } catch {
      return undefined;
    }
  }

  /** Milliseconds since conmon wrote the exit file (how late the daemon noticed), or undefined. */
  exitAgeMs(id: string): number | undefined {
    try {
      return Math.round(Date.now() - statSync(path.join(this.paths(id).exitDir, id)).mtimeMs);
    } catch {
      return undefined;
    }
  }

  /** Deletes conmon's exit file once the exit was recorded elsewhere. */
  removeExitFile(id: string): void {
    rmSync(path.join(this.paths(id).exitDir, id), { force: true });
  }

  /** True while the job's conmon runs (it still holds the job's stdio). */
  monitorAlive(id: string): boolean {
    const pid = readPid(this.paths(id).conmonPidFile);
    return pid !== undefined && isAlive(pid);
  }

  /** Waits until conmon has exited, so every byte of output is in the log file; false on timeout. */
  async waitMonitorExit(id: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.monitorAlive(id)) {
      if (Date.now() > deadline) return false;
      await sleep(5);
    }
    return true;
  }

  /** Whether the job's bundle exists (it is removed when the job has been cleaned up). */
  hasBundle(id: string): boolean {
    return existsSync(this.paths(id).bundleDir);
  }

  /** IDs of jobs that have a bundle (created, running, or not yet cleaned up). */
  bundleIds(): string[] {
    return readdirSync(bundlesDir(this.opts)).filter(isJobId);
  }

  /** IDs of jobs with an exit file. */
  exitedIds(): string[] {
    return readdirSync(exitsDir(this.opts)).filter(isJobId);
  }

  /**
   * Calls `onExit(id)` when conmon writes an exit file. fs.watch can miss events, so the directory is also
   * rescanned every `pollMs`. Returns a function that stops watching.
   */
  watchExits(onExit: (id: string) => void, pollMs = 500): () => void {
    const dir = exitsDir(this.opts);
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(dir, (_event, name) => {
        if (name && isJobId(name.toString())) onExit(name.toString());
      });
    } catch {
      watcher = undefined;
    }
    const timer = setInterval(() => {
      for (const id of this.exitedIds()) onExit(id);
    }, pollMs);
    timer.unref();
    return () => {
      watcher?.close();
      clearInterval(timer);
    };
  }
}

/**
 * Removes `dir` and the files in it (a bundle or a runtime state dir: regular files, FIFOs, sockets and
 * symlinks, no subdirectories) with one readdir and an unlink each; anything else (a subdirectory) falls back
 * to rmSync's recursive walk, which lstats every entry first (~1.5 ms per finished job on the loaded host).
 */
function removeFlatDir(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  try {
    for (const name of names) unlinkSync(path.join(dir, name));
    rmdirSync(dir);
  } catch {
    rmSync(dir, { recursive: true, force: true });
  }
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function readlinkOrEmpty(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return "";
  }
}
