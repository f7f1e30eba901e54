// Assembles and runs the daemon: config → state dir → store, cgroups, runtime → job service (which
// recovers unfinished jobs) → API. Stopping the daemon leaves every job running under its monitor.
import { accessSync, chmodSync, closeSync, constants, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { JobletError } from "../shared/errors.js";
import type { DaemonConfig } from "../shared/config/daemon.js";
import { AuditLog } from "./api/audit.js";
import { revokedByAny } from "./api/auth.js";
import type { CrlRevocations } from "./api/crl.js";
import { startApiServer, type ApiServer } from "./api/server.js";
import { createCgroupManager } from "./cgroups/factory.js";
import { JobService } from "./jobs/service.js";
import { droppedOutputBytes } from "./logs/retention.js";
import { JobletMetrics } from "./metrics/collector.js";
import { startMetricsServer, type MetricsServer } from "./metrics/server.js";
import { isAlive } from "./runtime/conmon.js";
import { prepareHostFs } from "./runtime/hostfs.js";
import { seccompForSetting } from "./runtime/seccomp.js";
import { idMapForBase } from "./runtime/spec.js";
import { JobRuntime } from "./runtime/job-runtime.js";
import { SqliteJobStore } from "./store/sqlite.js";

/** A running daemon. */
export interface Daemon {
  port: number;
  /** Stops serving and releases the state dir; jobs keep running. */
  close(): Promise<void>;
}

/** Starts the daemon with `config`; resolves once it serves. */
export async function startDaemon(config: DaemonConfig, log: Logger): Promise<Daemon> {
  const runtimePath = findExecutable(config.runtimePath, "runtime.path", "runc (Debian package `runc`)");
  const conmonPath = findExecutable(config.conmonPath, "runtime.conmonPath", "conmon (Debian package `conmon`)");
  checkKeyFilePermissions(config.file, log);
  // 0711: jobs' mapped root must pass through to the shared rootfs, /etc and work dirs; nothing is listable.
  mkdirSync(config.stateDir, { recursive: true, mode: 0o711 });
  chmodSync(config.stateDir, 0o711);
  if (config.idMapBase !== undefined) {
    for (const dir of [config.stateDir, config.jobsDir]) checkTraversable(dir, config.idMapBase);
  }
  const releaseState = lockDir(config.stateDir, "state dir", "state.dir");
  let releaseRun: (() => void) | undefined;
  if (config.runDir !== config.stateDir) {
    // Bundles and runc's state: read by root only (runc hands the job what it needs as open descriptors).
    try {
      mkdirSync(config.runDir, { recursive: true, mode: 0o700 });
      releaseRun = lockDir(config.runDir, "run dir", "state.runDir");
    } catch (err) {
      releaseState();
      if (err instanceof JobletError) throw err;
      throw new JobletError("FAILED_PRECONDITION", `state.runDir: cannot use ${config.runDir}: ${(err as Error).message}`, {
        hint: "set state.runDir to a writable local directory (a tmpfs such as /run/joblet), or remove it to keep runtime state in state.dir",
        cause: err,
      });
    }
  }
  const releaseLock = () => {
    releaseRun?.();
    releaseState();
  };
  let audit: AuditLog | undefined;
  let store: SqliteJobStore | undefined;
  let jobs: JobService | undefined;
  let api: ApiServer | undefined;
  let metricsServer: MetricsServer | undefined;
  let crl: CrlRevocations | undefined;
  try {
    // Before anything runs: a revocation list that cannot be trusted stops the start.
    // Loaded only when configured: it brings an X.509 library (~3 MiB of the daemon's memory).
    crl = config.crlFile ? await (await import("./api/crl.js")).CrlRevocations.open(config.crlFile, config.tls.caPem, log) : undefined;
    const cgroups = createCgroupManager();
    const hostFs = prepareHostFs(config.stateDir);
    store = new SqliteJobStore(path.join(config.stateDir, "joblet.db"));
    const runtime = new JobRuntime({
      stateDir: config.stateDir,
      runDir: config.runDir,
      jobsDir: config.jobsDir,
      runtimePath,
      conmonPath,
      hostFs,
      tmpBytes: config.limits.tmpSizeBytes,
      seccomp: seccompForSetting(config.seccomp),
      idMap: idMapForBase(config.idMapBase),
      workSizeBytes: config.limits.workSizeBytes,
    });
    const metrics = config.metrics
      ? new JobletMetrics({
          listJobs: () => jobs?.list() ?? [],
          cgroups,
          cgroupParent: config.cgroupParent,
          stateDir: config.stateDir,
          droppedLogBytes: droppedOutputBytes,
        })
      : undefined;
    jobs = new JobService({ config, store, runtime, cgroups, logger: log, ...(metrics && { observer: metrics }) });
    await jobs.start();
    const auditLog = new AuditLog(config.auditLogFile);
    audit = auditLog;
    let auditFailed = false;
    const onAuditError = (err: unknown) => {
      if (!auditFailed) log.error({ err, file: config.auditLogFile }, "writing the audit log failed");
      auditFailed = true;
    };
    if (config.metrics && metrics) {
      metricsServer = await startMetricsServer({
        host: config.metrics.host,
        port: config.metrics.port,
        ...(config.metrics.tls && { tls: config.tls }),
        render: () => metrics.render(),
        logger: log,
      });
      log.info({ address: config.metrics.host, port: metricsServer.port, tls: config.metrics.tls }, "metrics serving at /metrics");
    }
    api = await startApiServer({
      address: config.server.address,
      port: config.server.port,
      tls: config.tls,
      maxRecvMsgSize: config.grpc.maxRecvMsgSize,
      maxSendMsgSize: config.grpc.maxSendMsgSize,
      jobs,
      logger: log,
      revoked: crl ? revokedByAny([new Set(config.revokedSerials), crl]) : new Set(config.revokedSerials),
      onCall: (call) => {
        metrics?.callFinished(call);
        auditLog.record(call, onAuditError);
      },
      onHandshakeRefused: (h) => {
        log.info({ remote: h.remote, reason: h.reason, subject: h.subject, serial: h.serial }, "TLS handshake refused");
        auditLog.recordHandshake(h, onAuditError);
      },
    });
    log.info(
      { address: config.server.address, port: api.port, stateDir: config.stateDir, runDir: config.runDir, cgroups: cgroups.mode, runtime: runtimePath, config: config.file },
      "joblet serving",
    );
  } catch (err) {
    crl?.close();
    await metricsServer?.close();
    await jobs?.close();
    store?.close();
    audit?.close();
    releaseLock();
    throw err;
  }
  const [serving, service, db, auditLog, metricsSrv, revocations] = [api, jobs, store, audit, metricsServer, crl];
  return {
    port: serving.port,
    close: async () => {
      await serving.close();
      revocations?.close();
      await metricsSrv?.close();
      await service.close();
      db.close();
      auditLog.close();
      releaseLock();
    },
  };
}

/** Every ancestor of `dir` must let other users pass (x): jobs' root is the unprivileged host uid `uid`. */
function checkTraversable(dir: string, uid: number): void {
  for (let p = path.dirname(dir); ; p = path.dirname(p)) {
    if (!(statSync(p).mode & 0o001)) {
      throw new JobletError(
        "FAILED_PRECONDITION",
        `jobs run as host uid ${uid} (security.userNamespace) and cannot reach ${dir}: ${p} is not searchable by other users`,
        { hint: `chmod o+x ${p}, move state.dir / filesystem.baseDir, or set security.userNamespace: false` },
      );
    }
    if (p === path.dirname(p)) return;
  }
}

/**
 * The config holds the server's private key: refuse to run when any user may read it, warn when its group
 * may (a packaging choice some admins make deliberately).
 */
function checkKeyFilePermissions(file: string, log: Logger): void {
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o004) {
    throw new JobletError("FAILED_PRECONDITION", `${file} holds the server's private key but every user may read it (mode ${mode.toString(8)})`, {
      hint: `chmod 600 ${file}`,
    });
  }
  if (mode & 0o040) log.warn({ file, mode: mode.toString(8) }, "the config holds the server's private key and its group may read it");
}

/** Resolves a program name via PATH (or checks an absolute path); the error names the config key. */
function findExecutable(name: string, key: string, what: string): string {
  const candidates = name.includes("/") ? [name] : (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // try the next
    }
  }
  throw new JobletError("FAILED_PRECONDITION", `${key}: ${JSON.stringify(name)} is not an executable on this host`, {
    hint: `install ${what} or set ${key} to its absolute path`,
  });
}

/**
 * Makes sure one daemon at a time uses `dir` (the state dir, or the run dir: two daemons sharing bundles would
 * each clean up the other's as leftovers); a lock left by a dead process is taken over.
 */
function lockDir(dir: string, what: string, key: string): () => void {
  const file = path.join(dir, "joblet.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number.parseInt(readFileSync(file, "utf8"), 10);
      if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
        throw new JobletError("FAILED_PRECONDITION", `another joblet (pid ${pid}) uses the ${what} ${dir}`, {
          hint: `stop it first, or give this one another ${key}`,
        });
      }
      rmSync(file, { force: true });
    }
  }
  throw new JobletError("FAILED_PRECONDITION", `cannot lock the ${what} ${dir}`);
}
