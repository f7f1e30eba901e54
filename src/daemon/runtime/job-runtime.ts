// The runtime facade the job service uses: one job = one bundle, one conmon, one runc container. Knows the
// state dir layout; knows nothing of job records.
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, watch, writeFileSync, type FSWatcher } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isJobId } from "../../shared/ids.js";
import { isAlive, launchConmon, readPid, supervisionPaths, type SupervisionPaths } from "./conmon.js";
import type { HostFs } from "./hostfs.js";
import { RuntimeClient } from "./runc.js";
import { buildJobSpec, type IdMap, type JobResources } from "./spec.js";

/** Settings of the runtime layer, from the daemon config. */
export interface JobRuntimeOptions {
  stateDir: string;
  jobsDir: string;
  runtimePath: string;
  conmonPath: string;
  hostFs: HostFs;
  tmpBytes: number;
  /** The OCI seccomp section every job gets; undefined = none. */
  seccomp?: Record<string, unknown>;
  /** User namespace mapping of every job; undefined = jobs run as host root (in their other namespaces). */
  idMap?: IdMap;
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

/** Starts, signals, inspects and removes jobs' containers. */
export class JobRuntime {
  readonly runtime: RuntimeClient;
  private readonly runtimeRoot: string;

  constructor(private readonly opts: JobRuntimeOptions) {
    this.runtimeRoot = path.join(opts.stateDir, "runtime");
    this.runtime = new RuntimeClient(opts.runtimePath, this.runtimeRoot);
    for (const dir of [this.runtimeRoot, path.join(opts.stateDir, "run"), path.join(opts.stateDir, "exits"), path.join(opts.stateDir, "sockets"), path.join(opts.stateDir, "logs")]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    mkdirSync(opts.jobsDir, { recursive: true, mode: 0o711 });
  }

  /** Supervision paths of job `id`. */
  paths(id: string): SupervisionPaths {
    return supervisionPaths(this.opts.stateDir, id);
  }

  /** The job's writable work dir on the host (its /work). */
  workDir(id: string): string {
    return path.join(this.opts.jobsDir, id, "work");
  }

  /**
   * Creates the work dir and, inside it, the working directory `relDir` (already validated: relative, no
   * "..", no empty segments). The work dir is new and empty, so no path component can be a symlink.
   */
  prepareWorkDir(id: string, relDir = ""): string {
    const dir = this.workDir(id);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (relDir) mkdirSync(path.join(dir, relDir), { recursive: true, mode: 0o755 });
    // The job's root is an unprivileged host user: it must own its work dir (and the dirs made in it).
    const idMap = this.opts.idMap;
    if (idMap) {
      let p = dir;
      chownSync(p, idMap.hostUid, idMap.hostGid);
      for (const part of relDir ? relDir.split("/") : []) {
        p = path.join(p, part);
        chownSync(p, idMap.hostUid, idMap.hostGid);
      }
    }
    return dir;
  }

  /** Deletes a finished job's work dir (its log belongs to the logs layer: see removeLog). */
  forget(id: string): void {
    if (!isJobId(id)) throw new Error(`refusing unsafe job id ${JSON.stringify(id)}`);
    rmSync(path.join(this.opts.jobsDir, id), { recursive: true, force: true });
  }

  /**
   * Writes the bundle, starts conmon (which runs `runc create`), then `runc start`. Returns once the job's
   * process runs. On failure everything this call made is removed and the error is rethrown.
   */
  async start(id: string, launch: JobLaunch): Promise<{ conmonPid: number }> {
    if (!isJobId(id)) throw new Error(`refusing unsafe job id ${JSON.stringify(id)}`);
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
    try {
      const started = await launchConmon(id, p, {
        conmonPath: this.opts.conmonPath,
        runtimePath: this.opts.runtimePath,
        runtimeRoot: this.runtimeRoot,
      });
      await this.runtime.start(id);
      return started;
    } catch (err) {
      await this.remove(id).catch(() => undefined);
      this.removeExitFile(id);
      throw err;
    }
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

  /** Removes the container (killing what is left of it) and its bundle. Logs, work dir and exit file stay. */
  async remove(id: string): Promise<void> {
    await this.runtime.delete(id, true);
    rmSync(this.paths(id).bundleDir, { recursive: true, force: true });
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
    return readdirSync(path.join(this.opts.stateDir, "run")).filter(isJobId);
  }

  /** IDs of jobs with an exit file. */
  exitedIds(): string[] {
    return readdirSync(path.join(this.opts.stateDir, "exits")).filter(isJobId);
  }

  /**
   * Calls `onExit(id)` when conmon writes an exit file. fs.watch can miss events, so the directory is also
   * rescanned every `pollMs`. Returns a function that stops watching.
   */
  watchExits(onExit: (id: string) => void, pollMs = 500): () => void {
    const dir = path.join(this.opts.stateDir, "exits");
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
