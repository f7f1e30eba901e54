// The job service: runs, stops, lists and follows jobs. It owns the lifecycle (the state machine in
// state.ts), persists every change before acting on it, and never keeps anything that matters only in
// memory: on start it rebuilds its view from the store, conmon's exit files and the runtime.
import path from "node:path";
import type { Logger } from "pino";
import { JobletError } from "../../shared/errors.js";
import { newJobId, validateIdPrefix } from "../../shared/ids.js";
import { formatDurationMs } from "../../shared/units.js";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { blockDeviceFor } from "../cgroups/blockdev.js";
import { formatCpuList, onlineCpus, onlineMems, validateCpuCores } from "../cgroups/cpuset.js";
import type { CgroupManager } from "../cgroups/manager.js";
import { readLog, type LogChunk } from "../logs/reader.js";
import { removeLog } from "../logs/retention.js";
import type { JobRuntime, JobStarted } from "../runtime/job-runtime.js";
import { idMapForBase, type JobResources } from "../runtime/spec.js";
import type { JobLimits, JobRecord } from "../store/record.js";
import type { JobPatch, JobStore } from "../store/store.js";
import { LogKeeper } from "./log-keeper.js";
import { checkDeclaredUpload, freeBytes, UploadSession, type DeclaredUpload } from "./upload-session.js";
import { signalName } from "./signals.js";
import { assertTransition, isFinal } from "./state.js";
import { validateRunRequest, type RunRequest } from "./validate.js";
import { WakeLists } from "./wake-lists.js";

/** CFS period, microseconds: quota = percent × 1000 µs per 100 ms period. */
const CPU_PERIOD_US = 100_000;
/** How long to wait for a job to end after SIGKILL before reporting a bug, milliseconds. */
const KILL_WAIT_MS = 10_000;
/** How long conmon may take to drain the job's output after its PID 1 ended, milliseconds. */
const MONITOR_DRAIN_MS = 5_000;
const JOB_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** How often finished jobs are pruned by age even when no job ends, milliseconds. */
const PRUNE_INTERVAL_MS = 3_600_000;
/** A bandwidth "limit" of about 9 PB/s, for counting IO without limiting it, bytes/s. */
const UNREACHABLE_BPS = Number.MAX_SAFE_INTEGER;

/** Told about lifecycle events (metrics, audit); each method is called synchronously and must not throw. */
export interface JobObserver {
  /** A job's process runs; `startMs` is the time from accepting the request to then. */
  jobStarted?(job: JobRecord, startMs: number): void;
  jobStartFailed?(job: JobRecord): void;
  /** A job reached a final state (its record has the outcome). */
  jobEnded?(job: JobRecord): void;
}

/** What the service needs. */
export interface JobServiceDeps {
  config: DaemonConfig;
  store: JobStore;
  runtime: JobRuntime;
  cgroups: CgroupManager;
  logger: Logger;
  observer?: JobObserver;
}

/** Runs and supervises jobs. */
export class JobService {
  private readonly config: DaemonConfig;
  private readonly store: JobStore;
  private readonly runtime: JobRuntime;
  private readonly cgroups: CgroupManager;
  private readonly log: Logger;
  private readonly observer: JobObserver;
  /** Exit handling in progress, per job: finalisation is idempotent and runs once at a time. */
  private readonly finalizing = new Map<string, Promise<void>>();
  /** Starts in progress, per job, so a stop can wait for the start it races with. */
  private readonly starting = new Map<string, Promise<unknown>>();
  private readonly finalWaiters = new WakeLists();
  /** Log followers of running jobs, told when the job's end is recorded (before its container is removed). */
  private readonly endWatchers = new WakeLists();
  /** Armed job timeouts; a timeout is also re-armed from the record after a daemon restart. */
  private readonly timeouts = new Map<string, NodeJS.Timeout>();
  private stopWatching: (() => void) | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  /** A prune is queued for the next turn of the event loop (jobs ending together share one). */
  private prunePending = false;
  private closed = false;
  private readonly logKeeper: LogKeeper;
  /** Uploads in progress, per job (INITIALIZING until complete). */
  private readonly uploads = new Map<string, UploadSession>();

  constructor(deps: JobServiceDeps) {
    this.config = deps.config;
    this.store = deps.store;
    this.runtime = deps.runtime;
    this.cgroups = deps.cgroups;
    this.log = deps.logger;
    this.observer = deps.observer ?? {};
    this.logKeeper = new LogKeeper({
      limits: this.config.logs,
      logPathOf: (id) => this.runtime.paths(id).logPath,
      runningIds: () => this.store.listUnfinished().flatMap((j) => (j.status === "RUNNING" ? [j.id] : [])),
      noteOutputLost: (id, reason) => this.store.update(id, { reason }),
      logger: this.log,
    });
  }

  /** Reconciles unfinished jobs with the system, then watches for exits. Call once before serving. */
  async start(): Promise<void> {
    this.cgroups.ensureParent(this.config.cgroupParent);
    await this.recover();
    this.stopWatching = this.runtime.watchExits((id) => void this.finalize(id));
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
    await this.logKeeper.start();
  }

  /**
   * Stops watching and disarms timers; running jobs keep running under their monitors. Uploads in progress
   * are abandoned (their jobs recorded FAILED): resolves once that is recorded, so the store can be closed.
   */
  async close(): Promise<void> {
    const uploads = [...this.uploads.values()];
    for (const upload of uploads) upload.cancel("the daemon stopped during the upload");
    await Promise.all(uploads.map((u) => u.settled));
    this.closed = true;
    this.stopWatching?.();
    clearInterval(this.pruneTimer);
    this.logKeeper.close();
    for (const t of this.timeouts.values()) clearTimeout(t);
    this.timeouts.clear();
  }

  /** Starts a job and returns its record once its process runs. */
  async run(req: RunRequest): Promise<JobRecord> {
    return this.startAdmitted(this.admit(req), req.env);
  }

  /**
   * Accepts a job whose /work first receives an upload: checks the request and the declared totals against
   * the limits and the free disk space, records the job INITIALIZING and makes its empty work dir. The job
   * starts when the session completes; a failed or abandoned session leaves it FAILED and its work dir gone.
   */
  async beginUpload(req: RunRequest, declared: DeclaredUpload): Promise<UploadSession> {
    validateRunRequest(req);
    checkDeclaredUpload(declared, this.config, freeBytes(this.config.jobsDir));
    const job = this.admit(req);
    const log = this.log.child({ jobId: job.id });
    let workDir: string;
    // A stop arriving meanwhile waits for this, then finds the upload session (or the job failed).
    const prepared = this.runtime.prepareWorkDir(job.id);
    this.starting.set(job.id, prepared.catch(() => undefined));
    try {
      workDir = await prepared;
    } catch (err) {
      this.failUpload(job.id, `preparing its work dir failed: ${(err as Error).message}`);
      throw err;
    } finally {
      this.starting.delete(job.id);
    }
    const idMap = idMapForBase(this.config.idMapBase);
    const session = new UploadSession(job.id, workDir, declared, idMap && { uid: idMap.hostUid, gid: idMap.hostGid }, {
      complete: (upload) => {
        this.uploads.delete(job.id);
        this.store.update(job.id, { upload });
        log.info({ upload: { ...upload, roots: upload.roots.length } }, "upload complete");
        return this.startAdmitted(this.mustGet(job.id), req.env);
      },
      fail: (reason) => {
        this.uploads.delete(job.id);
        this.failUpload(job.id, reason);
        log.warn({ reason }, "upload failed; the job was not started");
      },
    });
    this.uploads.set(job.id, session);
    return session;
  }

  /** What one upload may hold (uploads.maxTotalMB, uploads.maxEntries), as the client is told. */
  uploadLimits(): { maxBytes: number; maxEntries: number } {
    return { ...this.config.uploads };
  }

  /** Validates a request, applies defaults, takes a concurrency slot and records the job INITIALIZING. */
  private admit(req: RunRequest): JobRecord {
    validateRunRequest(req);
    const limits = this.effectiveLimits(req);
    const unfinished = this.store.countUnfinished();
    if (unfinished >= this.config.limits.maxConcurrentJobs) {
      throw new JobletError(
        "RESOURCE_EXHAUSTED",
        `${unfinished} jobs are running, the limit is joblet.maxConcurrentJobs = ${this.config.limits.maxConcurrentJobs}`,
        { hint: "wait for a job to finish or stop one (rnx stop ID)" },
      );
    }
    const job: JobRecord = {
      id: newJobId(),
      command: req.command,
      args: req.args,
      limits,
      status: "INITIALIZING",
      createTime: new Date().toISOString(),
      oomKilled: false,
      stopRequested: false,
      timeoutMs: req.timeoutMs || this.config.jobTimeoutMs,
      timedOut: false,
      workdir: req.workdir.replace(/\/+$/, ""),
      network: (req.network || this.config.network) as JobRecord["network"],
    };
    // Checked and inserted with no await in between: concurrent requests cannot both take the last slot.
    this.store.insert(job);
    return job;
  }

  /** Starts an admitted job; resolves with its record once its process runs. */
  private async startAdmitted(job: JobRecord, env: readonly string[]): Promise<JobRecord> {
    const id = job.id;
    const log = this.log.child({ jobId: id });
    const acceptedAt = performance.now();
    const started = this.launch(job, env).then(
      (phases) => {
        this.transition(id, "RUNNING", { startTime: new Date().toISOString() });
        const running = this.mustGet(id);
        this.armTimeout(running);
        const startMs = performance.now() - acceptedAt;
        this.observer.jobStarted?.(running, startMs);
        log.info({ command: job.command, args: job.args, limits: job.limits, timeoutMs: job.timeoutMs, ms: ms(startMs), phasesMs: phases }, "job started");
      },
      (err: unknown) => {
        const reason = err instanceof JobletError ? err.message : `internal error: ${(err as Error).message}`;
        // Nothing ever ran in its work dir (it may hold an upload): it goes with the failed start.
        this.forgetWorkDir(id);
        this.transition(id, "FAILED", { endTime: new Date().toISOString(), reason });
        this.observer.jobStartFailed?.(this.mustGet(id));
        log.warn({ err }, "job failed to start");
        throw asStartError(err, job.command);
      },
    );
    this.starting.set(id, started.catch(() => undefined));
    try {
      await started;
    } finally {
      this.starting.delete(id);
    }
    return this.mustGet(id);
  }

  /** Records a job whose upload failed as FAILED (STOPPED if a user stopped it) and removes its work dir. */
  private failUpload(id: string, reason: string): void {
    const job = this.store.get(id);
    if (!job || job.status !== "INITIALIZING") return;
    this.forgetWorkDir(id);
    this.transition(id, job.stopRequested ? "STOPPED" : "FAILED", { endTime: new Date().toISOString(), reason });
    this.observer.jobStartFailed?.(this.mustGet(id));
  }

  /** The record of the job `idOrPrefix` names, with live usage while it runs. */
  status(idOrPrefix: string): JobRecord {
    const job = this.mustGet(this.resolve(idOrPrefix));
    return job.status === "RUNNING" ? this.withLiveUsage(job) : job;
  }

  /** All jobs, oldest first. */
  list(): JobRecord[] {
    return this.store.list();
  }

  /**
   * Stops a job: SIGTERM to every process, then SIGKILL after the grace period. Returns once the job has
   * ended and its container and cgroup are gone.
   */
  async stop(idOrPrefix: string, requestedBy: string): Promise<JobRecord> {
    return this.terminate(this.resolve(idOrPrefix), `stopped by ${requestedBy}`, false);
  }

  /** Deletes a finished job's record, log and work dir. */
  async delete(idOrPrefix: string): Promise<string> {
    const id = this.resolve(idOrPrefix);
    const job = this.mustGet(id);
    if (!isFinal(job.status)) {
      throw new JobletError("FAILED_PRECONDITION", `job ${id} is ${job.status}; stop it before deleting it`, { hint: `rnx stop ${id}` });
    }
    await this.forget(id);
    return id;
  }

  /** Deletes a finished job's record, work dir and log. */
  private async forget(id: string): Promise<void> {
    this.store.delete(id);
    this.runtime.forget(id);
    await removeLog(this.runtime.paths(id).logPath);
  }

  /** Removes the work dir of a job that never ran; logs, never throws. */
  private forgetWorkDir(id: string): void {
    try {
      this.runtime.forget(id);
    } catch (err) {
      this.log.error({ err, jobId: id }, "removing the work dir of a job that did not start failed");
    }
  }

  /** Deletes finished jobs beyond joblet.retention (count and age), oldest first. */
  private prune(): void {
    const { maxJobs, maxAgeMs } = this.config.retention;
    const before = maxAgeMs > 0 ? new Date(Date.now() - maxAgeMs).toISOString() : undefined;
    const ids = this.store.finishedToPrune(maxJobs, before);
    for (const id of ids) {
      this.forget(id).catch((err: unknown) => this.log.error({ err, jobId: id }, "pruning the job failed"));
    }
    if (ids.length) this.log.info({ pruned: ids.length, maxJobs, maxAgeMs }, "pruned finished jobs");
  }

  /** Prunes once in the next turn of the event loop, however many jobs end before then. */
  private schedulePrune(): void {
    if (this.prunePending) return;
    this.prunePending = true;
    setImmediate(() => {
      this.prunePending = false;
      if (!this.closed) this.prune();
    });
  }

  private armTimeout(job: JobRecord): void {
    if (job.timeoutMs <= 0 || job.status !== "RUNNING" || !job.startTime) return;
    const remainingMs = Math.max(0, Date.parse(job.startTime) + job.timeoutMs - Date.now());
    const timer = setTimeout(() => {
      this.timeouts.delete(job.id);
      this.terminate(job.id, `timed out after ${formatDurationMs(job.timeoutMs)}`, true).catch((err: unknown) => {
        if (!(err instanceof JobletError && err.code === "FAILED_PRECONDITION")) this.log.error({ err, jobId: job.id }, "stopping the job at its timeout failed");
      });
    }, remainingMs);
    this.timeouts.set(job.id, timer);
  }

  /** A polite then forced stop; `reason` is recorded; `timedOut` marks a stop by the job's timeout. */
  private async terminate(id: string, reason: string, timedOut: boolean): Promise<JobRecord> {
    await this.starting.get(id);
    const job = this.mustGet(id);
    if (isFinal(job.status)) {
      throw new JobletError("FAILED_PRECONDITION", `job ${id} has already ended (${job.status}); there is nothing to stop`);
    }
    const log = this.log.child({ jobId: id });
    this.store.update(id, { stopRequested: true, reason, timedOut });
    const upload = this.uploads.get(id);
    if (upload) {
      // Still receiving its files: nothing runs yet; the upload is abandoned and the job ends STOPPED.
      upload.cancel(`${reason} during its upload`);
      await upload.settled;
      return this.mustGet(id);
    }
    log.info({ reason, graceMs: this.config.stopGraceMs }, "stopping job");
    await this.runtime.kill(id, "TERM");
    if (!(await this.waitFinal(id, this.config.stopGraceMs))) {
      log.info("grace period over, sending SIGKILL");
      await this.runtime.kill(id, "KILL");
      if (!(await this.waitFinal(id, KILL_WAIT_MS))) {
        throw new Error(`job ${id} did not end within ${KILL_WAIT_MS} ms of SIGKILL`);
      }
    }
    return this.mustGet(id);
  }

  /**
   * The job's output from byte `fromOffset` on, in chunks of at most `maxChunkBytes` (default: the reader's);
   * for a job that has not ended, follows it until it has and every byte is delivered.
   */
  async *logs(idOrPrefix: string, fromOffset: number, signal?: AbortSignal, maxChunkBytes?: number): AsyncGenerator<LogChunk> {
    const id = this.resolve(idOrPrefix);
    const job = this.mustGet(id);
    const file = this.runtime.paths(id).logPath;
    const follow = !isFinal(job.status);
    try {
      yield* readLog(file, fromOffset, {
        follow,
        signal,
        maxChunkBytes,
        isDone: () => isFinal(this.mustGet(id).status),
        subscribeDone: (wake) => this.endWatchers.add(id, wake),
      });
    } catch (err) {
      // A job that never started has no log file: its output is empty, not missing.
      if (!follow && err instanceof JobletError && err.code === "NOT_FOUND") return;
      throw err;
    }
  }

  /** Resolves a full ID or unique prefix to the job's ID. */
  resolve(idOrPrefix: string): string {
    validateIdPrefix("id", idOrPrefix);
    const ids = this.store.idsWithPrefix(idOrPrefix, 11);
    if (ids.length === 1) return ids[0]!;
    if (ids.length === 0) throw new JobletError("NOT_FOUND", `no job with ID ${idOrPrefix}`, { hint: "list jobs with `rnx list`" });
    if (ids.includes(idOrPrefix)) return idOrPrefix;
    const shown = ids.slice(0, 10).join(", ");
    throw new JobletError("INVALID_ARGUMENT", `id: the prefix "${idOrPrefix}" matches several jobs: ${shown}${ids.length > 10 ? ", …" : ""}`, {
      hint: "give more characters of the ID",
    });
  }

  private effectiveLimits(req: RunRequest): JobLimits {
    const d = this.config.limits;
    return {
      maxCpuPercent: req.maxCpuPercent || d.defaultCpuPercent,
      cpuCores: req.cpuCores ? validateCpuCores(req.cpuCores, onlineCpus()) : "",
      maxMemoryMB: req.maxMemoryMB || d.defaultMemoryMB,
      maxIoBps: req.maxIoBps || d.defaultIoBps,
    };
  }

  /** Starts an admitted job's container; resolves with where the time went (milliseconds, rounded). */
  private async launch(job: JobRecord, extraEnv: readonly string[]): Promise<Record<keyof JobStarted | "prepareMs", number>> {
    const t0 = performance.now();
    const workDir = await this.runtime.prepareWorkDir(job.id, job.workdir);
    const l = job.limits;
    const resources: JobResources = {
      cpuPeriodUs: CPU_PERIOD_US,
      limitSwap: this.cgroups.capabilities().memorySwap,
      pidsLimit: this.config.limits.pidsLimit,
      ...(l.maxCpuPercent > 0 && { cpuQuotaUs: (l.maxCpuPercent * CPU_PERIOD_US) / 100 }),
      ...(l.cpuCores && { cpus: l.cpuCores, mems: formatCpuList(onlineMems()) }),
      ...(l.maxMemoryMB > 0 && { memoryBytes: l.maxMemoryMB * 1024 * 1024 }),
    };
    if (l.maxIoBps > 0) {
      const dev = blockDeviceFor(workDir);
      resources.io = { major: dev.major, minor: dev.minor, bytesPerSec: l.maxIoBps };
    } else if (this.cgroups.capabilities().ioStatsNeedThrottleRule) {
      // A rule no job can reach, only so that the kernel counts the job's IO for its usage.
      const dev = blockDeviceOrNone(workDir);
      if (dev) resources.io = { major: dev.major, minor: dev.minor, bytesPerSec: UNREACHABLE_BPS };
    }
    const prepareMs = performance.now() - t0;
    const started = await this.runtime.start(job.id, {
      args: [job.command, ...job.args],
      env: jobEnv(job.id, extraEnv),
      cwd: job.workdir ? `/work/${job.workdir}` : "/work",
      hostname: `job-${job.id.slice(0, 8)}`,
      cgroupsPath: this.cgroupPath(job.id),
      network: job.network,
      resources,
    });
    return {
      prepareMs: ms(prepareMs),
      specMs: ms(started.specMs),
      spawnMs: ms(started.spawnMs),
      createMs: ms(started.createMs),
      startMs: ms(started.startMs),
      conmonPid: started.conmonPid,
    };
  }

  private cgroupPath(id: string): string {
    return path.posix.join(this.config.cgroupParent, id);
  }

  /** Records the end of a job whose PID 1 exited; idempotent, one at a time per job. */
  private finalize(id: string): Promise<void> {
    const running = this.finalizing.get(id);
    if (running) return running;
    const p = this.doFinalize(id)
      .catch((err: unknown) => this.log.error({ err, jobId: id }, "recording the end of the job failed"))
      .finally(() => this.finalizing.delete(id));
    this.finalizing.set(id, p);
    return p;
  }

  private async doFinalize(id: string): Promise<void> {
    const job = this.store.get(id);
    if (!job || isFinal(job.status)) {
      this.runtime.removeExitFile(id);
      return;
    }
    // An exit file during INITIALIZING belongs to a failed start; run() records that.
    if (job.status !== "RUNNING") return;
    const code = this.runtime.exitCode(id);
    if (code === undefined) return;
    const log = this.log.child({ jobId: id });
    const t0 = performance.now();
    if (!(await this.runtime.waitMonitorExit(id, MONITOR_DRAIN_MS))) log.warn("conmon still runs after the job ended");
    const tDrained = performance.now();
    // conmon has written the last byte: cut the log to logs.maxJobLogMB before the end is recorded, so that a
    // job seen as ended has its final log (a log under the cap costs one stat).
    await this.logKeeper.capJob(id);
    // Read the OOM counter and usage before the cgroup is removed with the container.
    const cg = this.cgroupPath(id);
    const stats = this.cgroups.stats(cg);
    const oomKilled = (stats?.oomKills ?? 0) > 0;

    const status = job.stopRequested ? "STOPPED" : code === 0 && !oomKilled ? "COMPLETED" : "FAILED";
    const patch: JobPatch = { status, endTime: new Date().toISOString(), exitCode: code, oomKilled };
    if (stats) {
      patch.usage = {
        cpuTimeNs: stats.cpuTimeNs,
        memoryPeakBytes: stats.memoryPeakBytes,
        ioReadBytes: stats.ioReadBytes,
        ioWriteBytes: stats.ioWriteBytes,
      };
    }
    if (oomKilled) {
      patch.signal = "SIGKILL";
      patch.reason = `killed by the kernel's OOM killer: the job exceeded its memory limit of ${job.limits.maxMemoryMB} MB`;
    } else if (job.stopRequested && code > 128) {
      const name = signalName(code - 128);
      if (name) patch.signal = name;
    }
    clearTimeout(this.timeouts.get(id));
    this.timeouts.delete(id);
    // The outcome is recorded first (followers and `rnx run` see the end at once); the container and cgroup
    // are removed after it, and a stop returns only then. A crash in between is cleaned up by recover().
    this.transition(id, status, patch, false);
    await this.cleanup(id, true);
    const tRemoved = performance.now();
    this.finalWaiters.wake(id);
    log.info(
      { status, exitCode: code, oomKilled, drainMs: ms(tDrained - t0), removeMs: ms(tRemoved - tDrained), exitSeenAfterMs: this.runtime.exitAgeMs(id) },
      "job ended",
    );
    this.runtime.removeExitFile(id);
    this.schedulePrune();
  }

  /**
   * Removes a job's container (and anything left in it) and cgroup; logs, never throws. `ended`: the job's
   * PID 1 has exited (its exit file exists), so the runtime's own delete can be skipped (removeEnded).
   */
  private async cleanup(id: string, ended = false): Promise<void> {
    const log = this.log.child({ jobId: id });
    await (ended ? this.runtime.removeEnded(id) : this.runtime.remove(id)).catch((err: unknown) => log.error({ err }, "removing the job's container failed"));
    await this.cgroups.remove(this.cgroupPath(id)).catch((err: unknown) => log.error({ err }, "removing the job's cgroup failed"));
  }

  private async recover(): Promise<void> {
    // Bundles of jobs that are already final: the daemon stopped between recording an end and cleaning up.
    for (const id of this.runtime.bundleIds()) {
      const job = this.store.get(id);
      if (!job || isFinal(job.status)) {
        await this.cleanup(id);
        this.runtime.removeExitFile(id);
        this.log.info({ jobId: id }, "removed the leftovers of a finished job");
      }
    }
    for (const job of this.store.listUnfinished()) {
      const log = this.log.child({ jobId: job.id });
      if (job.status === "INITIALIZING") {
        // The daemon stopped between accepting the job and seeing it run (maybe during its upload): undo,
        // never start it again; a partial upload is removed with the work dir.
        await this.cleanup(job.id);
        this.runtime.removeExitFile(job.id);
        this.runtime.forget(job.id);
        this.transition(job.id, "FAILED", {
          endTime: new Date().toISOString(),
          reason: "the daemon stopped while the job was starting; it was cleaned up and not started again",
        });
        log.warn("interrupted start cleaned up");
      } else if (this.runtime.exitCode(job.id) !== undefined) {
        await this.finalize(job.id);
      } else if (!this.runtime.monitorAlive(job.id)) {
        await this.cleanup(job.id);
        this.transition(job.id, "FAILED", {
          endTime: new Date().toISOString(),
          reason: "its monitor (conmon) ended without recording an exit code (was the host rebooted?)",
        });
        log.warn("monitor lost; job marked FAILED");
      } else {
        this.armTimeout(job);
        log.info("job still running; reattached");
      }
    }
  }

  /** Records a state change; a final state wakes waiters unless `wake` is false (they are woken later). */
  private transition(id: string, to: JobRecord["status"], patch: JobPatch, wake = true): void {
    const job = this.mustGet(id);
    assertTransition(id, job.status, to);
    this.store.update(id, { ...patch, status: to });
    if (isFinal(to)) {
      if (job.status === "RUNNING") this.observer.jobEnded?.(this.mustGet(id));
      this.endWatchers.wake(id);
      if (wake) this.finalWaiters.wake(id);
    }
  }

  /** True once the job is final and its end handled; a job already deleted (retention, rm) counts as final. */
  private isSettled(id: string): boolean {
    const job = this.store.get(id);
    return (!job || isFinal(job.status)) && !this.finalizing.has(id);
  }

  /** Resolves true once the job is final, false after `timeoutMs`. */
  private waitFinal(id: string, timeoutMs: number): Promise<boolean> {
    if (this.isSettled(id)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        remove();
        // A timer must not throw: the job may have been pruned meanwhile (that crashed the daemon once).
        resolve(this.isSettled(id));
      }, timeoutMs);
      const remove = this.finalWaiters.add(id, wake);
      // The exit may already be on disk: do not wait for the next scan to notice it. A finalisation already
      // running may have woken the waiters before this one was added: its end wakes this one too.
      void this.finalize(id).then(() => {
        if (this.isSettled(id) && remove()) wake();
      });
    });
  }

  private withLiveUsage(job: JobRecord): JobRecord {
    const stats = this.cgroups.stats(this.cgroupPath(job.id));
    if (!stats) return job;
    return {
      ...job,
      usage: { cpuTimeNs: stats.cpuTimeNs, memoryPeakBytes: stats.memoryPeakBytes, ioReadBytes: stats.ioReadBytes, ioWriteBytes: stats.ioWriteBytes },
    };
  }

  private mustGet(id: string): JobRecord {
    const job = this.store.get(id);
    if (!job) throw new JobletError("NOT_FOUND", `no job with ID ${id}`);
    return job;
  }
}

/**
 * A job's environment, built from scratch (nothing of the daemon's own leaks in): the defaults, then the
 * request's entries, a later entry replacing an earlier one with the same key.
 */
function jobEnv(id: string, extra: readonly string[]): string[] {
  const env = new Map<string, string>();
  for (const e of [`PATH=${JOB_PATH}`, "HOME=/work", "LANG=C.UTF-8", `JOBLET_JOB_ID=${id}`, ...extra]) {
    env.set(e.slice(0, e.indexOf("=")), e);
  }
  return [...env.values()];
}

/** The disk under `dir`, or undefined where there is none (tmpfs, overlay): then IO is not counted. */
function blockDeviceOrNone(dir: string): ReturnType<typeof blockDeviceFor> | undefined {
  try {
    return blockDeviceFor(dir);
  } catch {
    return undefined;
  }
}

function ms(n: number): number {
  return Math.round(n * 10) / 10;
}

/** A start failure as the client should see it: a command that cannot be found is the request's fault. */
function asStartError(err: unknown, command: string): unknown {
  // Only errors about the command itself: others (a /work volume that could not be mounted, say) may quote a
  // tool's "No such file or directory" too.
  if (err instanceof JobletError && !err.message.startsWith("filesystem.") && /executable file not found|no such file or directory/i.test(err.message)) {
    return new JobletError(
      "INVALID_ARGUMENT",
      `command: expected a program in the job's PATH (${JOB_PATH}) or an absolute path, got ${JSON.stringify(command)} (${err.message})`,
    );
  }
  return err;
}
