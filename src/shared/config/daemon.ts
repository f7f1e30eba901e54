// The daemon's config file (joblet-config.yml): schema, defaults and loading. A superset of the reference
// implementation's v3.0 format; every accepted key has an effect, unknown keys are refused.
import { existsSync, readFileSync } from "node:fs";
import { BlockList, isIP } from "node:net";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { JobletError } from "../errors.js";
import { parseDurationMs } from "../units.js";
import { configError } from "./issues.js";

/** Where the daemon looks for its config when --config is not given, in order. */
export function daemonConfigSearchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    ...(env.JOBLET_CONFIG_PATH ? [env.JOBLET_CONFIG_PATH] : []),
    "/opt/joblet/config/joblet-config.yml",
    "./config/joblet-config.yml",
    "./joblet-config.yml",
    "/etc/joblet/joblet-config.yml",
  ];
}

const duration = z.string().refine((s) => {
  try {
    parseDurationMs("", s);
    return true;
  } catch {
    return false;
  }
}, 'expected a duration such as "500ms", "5s", "2m" or "7d"');

const MIB = 1024 * 1024;

/** Longest timer Node can arm (2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

const pem = (kind: string) =>
  z.string().refine((s) => s.includes(`-----BEGIN `) && s.includes(kind), `expected a PEM-encoded ${kind}`);

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const schema = z
  .object({
    version: z.literal("3.0"),
    server: z
      .object({
        address: z.string().min(1).default("0.0.0.0"),
        port: int(1, 65535).default(50051),
        minTlsVersion: z.literal("1.3").default("1.3"),
      })
      .strict()
      .prefault({}),
    security: z
      .object({
        serverCert: pem("CERTIFICATE"),
        serverKey: pem("PRIVATE KEY"),
        caCert: pem("CERTIFICATE"),
        auditLog: z.string().startsWith("/", "expected an absolute path").optional(),
        userNamespace: z.boolean().default(true),
        idMapBase: int(1, 4_294_967_295 - 65_536).default(100_000),
        seccomp: z
          .string()
          .regex(/^(default|unconfined|\/.+)$/, 'expected "default", "unconfined" or the absolute path of an OCI seccomp profile (JSON)')
          .default("default"),
        revokedSerials: z
          .array(z.string().regex(/^(0x)?[0-9a-fA-F:]{1,128}$/, "expected a certificate serial number in hex"))
          .default([]),
        crlFile: z.string().startsWith("/", "expected an absolute path").optional(),
      })
      .strict(),
    joblet: z
      .object({
        defaultCpuLimit: int(0, 100_000).default(0),
        defaultMemoryLimit: int(0, 16 * 1024 * 1024).default(0),
        defaultIoLimit: int(0, 2_147_483_647).default(0),
        maxConcurrentJobs: int(1, 100_000).default(100),
        stopGracePeriod: duration.default("5s"),
        pidsLimit: int(8, 4_194_304).default(1024),
        network: z.enum(["host", "none"]).default("host"),
        jobTimeout: duration
          .refine((s) => parseDurationMs("", s) <= MAX_TIMER_MS, "expected at most 24d (24 days)")
          .default("0s"),
        retention: z
          .object({
            maxJobs: int(1, 10_000_000).default(10_000),
            maxAge: duration.default("30d"),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    cgroup: z
      .object({
        baseDir: z
          .string()
          .regex(/^\/sys\/fs\/cgroup\/[A-Za-z0-9._/-]+$/, "expected an absolute path under /sys/fs/cgroup/")
          .default("/sys/fs/cgroup/joblet"),
      })
      .strict()
      .prefault({}),
    filesystem: z
      .object({
        baseDir: z.string().startsWith("/", "expected an absolute path").optional(),
        tmpSizeMB: int(1, 1024 * 1024).default(64),
        // ext4's largest file is 16 TiB minus a little: the image of a 16 TiB volume could not be made.
        workSizeMB: int(0, 15 * 1024 * 1024).default(0),
      })
      .strict()
      .prefault({}),
    state: z
      .object({
        dir: z.string().startsWith("/", "expected an absolute path").default("/var/lib/joblet"),
        runDir: z.string().startsWith("/", "expected an absolute path").optional(),
      })
      .strict()
      .prefault({}),
    runtime: z
      .object({
        path: z.string().min(1).default("runc"),
        conmonPath: z.string().min(1).default("conmon"),
      })
      .strict()
      .prefault({}),
    logs: z
      .object({
        maxJobLogMB: int(0, 16 * 1024 * 1024).default(1024),
        keepHeadMB: int(0, 16 * 1024 * 1024).default(64),
        diskBudgetMB: int(0, 1024 * 1024 * 1024).default(0),
      })
      .strict()
      .refine((l) => l.maxJobLogMB === 0 || l.maxJobLogMB > l.keepHeadMB, {
        message: "expected logs.maxJobLogMB to be 0 (no cap) or larger than logs.keepHeadMB",
        path: ["maxJobLogMB"],
      })
      .prefault({}),
    uploads: z
      .object({
        maxTotalMB: int(0, 16 * 1024 * 1024).default(1024),
        maxEntries: int(0, 10_000_000).default(100_000),
      })
      .strict()
      .prefault({}),
    grpc: z
      .object({
        maxRecvMsgSize: int(1024, 1 << 30).default(4 * 1024 * 1024),
        maxSendMsgSize: int(1024, 1 << 30).default(4 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    logging: z
      .object({
        level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
        format: z.enum(["json", "text"]).default("json"),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        address: z
          .string()
          .refine((s) => splitHostPort(s) !== undefined, 'expected "host:port" such as "127.0.0.1:9464" (IPv6 as "[::1]:9464")'),
        tls: z.boolean().default(false),
      })
      .strict()
      .superRefine((m, ctx) => {
        const hp = splitHostPort(m.address);
        if (hp && !m.tls && !isLoopbackHost(hp.host)) {
          ctx.addIssue({
            code: "custom",
            path: ["address"],
            input: m.address,
            message:
              "expected a loopback address (127.0.0.1, ::1 or localhost) for plain-HTTP metrics; set metrics.tls: true to serve HTTPS with client certificates elsewhere",
          });
        }
      })
      .optional(),
  })
  .strict();

/** The file as written, after defaults. */
export type DaemonConfigFile = z.infer<typeof schema>;

/** The daemon's settings, normalised to units and absolute paths; frozen. */
export interface DaemonConfig {
  readonly file: string;
  readonly server: { readonly address: string; readonly port: number };
  readonly tls: { readonly certPem: string; readonly keyPem: string; readonly caPem: string };
  /** Jobs' root is host uid/gid `base`, ids 0…65535 map to base…base+65535; undefined = no user namespace. */
  readonly idMapBase: number | undefined;
  /** "default" (the built-in profile), "unconfined", or the path of an OCI seccomp profile (JSON). */
  readonly seccomp: string;
  /** Append-only JSON-lines record of every API call. */
  readonly auditLogFile: string;
  /** Client certificate serials refused, lowercase hex without separators or leading zeros. */
  readonly revokedSerials: readonly string[];
  /** A PEM or DER certificate revocation list signed by the CA; certificates it lists are refused. */
  readonly crlFile: string | undefined;
  readonly limits: {
    readonly defaultCpuPercent: number;
    readonly defaultMemoryMB: number;
    readonly defaultIoBps: number;
    readonly maxConcurrentJobs: number;
    readonly pidsLimit: number;
    readonly tmpSizeBytes: number;
    /** Size of each job's /work (a loop-mounted file system of this size), bytes; 0 = no cap. */
    readonly workSizeBytes: number;
  };
  /** What a client may upload into a job's /work: total file bytes and entries; 0 = uploads refused. */
  readonly uploads: { readonly maxBytes: number; readonly maxEntries: number };
  readonly stopGraceMs: number;
  /** Default job timeout, ms; 0 = none. */
  readonly jobTimeoutMs: number;
  /** Finished jobs kept: at most `maxJobs`, none whose end is older than `maxAgeMs` (0 = no age limit). */
  readonly retention: { readonly maxJobs: number; readonly maxAgeMs: number };
  readonly network: "host" | "none";
  /** cgroup path of the parent of every job's cgroup, relative to the cgroup mount, e.g. "/joblet". */
  readonly cgroupParent: string;
  readonly stateDir: string;
  /**
   * Where the runtime's per-job state lives (`run/<id>` bundles, runc's `runtime/` root, conmon's `sockets/`):
   * files that do not outlive the host's uptime, a dozen made and removed per job, best on a tmpfs such as
   * /run. Defaults to the state dir. Exit codes, logs, the database and work dirs stay in the state dir.
   */
  readonly runDir: string;
  /** Directory holding each job's writable work dir (`<jobsDir>/<id>/work`). */
  readonly jobsDir: string;
  readonly runtimePath: string;
  readonly conmonPath: string;
  /**
   * Output kept per job: beyond `maxJobBytes` (0 = no cap) the first `keepHeadBytes` and the newest rest are
   * kept; all logs together stay under `diskBudgetBytes` (0 = no budget).
   */
  readonly logs: { readonly maxJobBytes: number; readonly keepHeadBytes: number; readonly diskBudgetBytes: number };
  readonly grpc: { readonly maxRecvMsgSize: number; readonly maxSendMsgSize: number };
  readonly logging: { readonly level: string; readonly format: "json" | "text" };
  /**
   * The Prometheus endpoint; undefined = off. Plain HTTP only on loopback; with `tls` it serves HTTPS with
   * the server certificate and requires a client certificate from `caCert`.
   */
  readonly metrics: { readonly host: string; readonly port: number; readonly tls: boolean } | undefined;
}

/** Validates parsed YAML and normalises it. `file` is used in messages only. */
export function parseDaemonConfig(raw: unknown, file: string): DaemonConfig {
  const result = schema.safeParse(raw ?? {}, { reportInput: true });
  if (!result.success) throw configError(file, result.error.issues);
  const c = result.data;
  const stateDir = path.resolve(c.state.dir);
  return deepFreeze({
    file,
    server: { address: c.server.address, port: c.server.port },
    tls: { certPem: c.security.serverCert, keyPem: c.security.serverKey, caPem: c.security.caCert },
    auditLogFile: c.security.auditLog ?? path.join(stateDir, "audit.log"),
    seccomp: c.security.seccomp,
    idMapBase: c.security.userNamespace ? c.security.idMapBase : undefined,
    revokedSerials: c.security.revokedSerials.map(normalizeSerial),
    crlFile: c.security.crlFile,
    limits: {
      defaultCpuPercent: c.joblet.defaultCpuLimit,
      defaultMemoryMB: c.joblet.defaultMemoryLimit,
      defaultIoBps: c.joblet.defaultIoLimit,
      maxConcurrentJobs: c.joblet.maxConcurrentJobs,
      pidsLimit: c.joblet.pidsLimit,
      tmpSizeBytes: c.filesystem.tmpSizeMB * MIB,
      workSizeBytes: c.filesystem.workSizeMB * MIB,
    },
    uploads: { maxBytes: c.uploads.maxTotalMB * MIB, maxEntries: c.uploads.maxEntries },
    stopGraceMs: parseDurationMs("joblet.stopGracePeriod", c.joblet.stopGracePeriod),
    jobTimeoutMs: parseDurationMs("joblet.jobTimeout", c.joblet.jobTimeout),
    retention: {
      maxJobs: c.joblet.retention.maxJobs,
      maxAgeMs: parseDurationMs("joblet.retention.maxAge", c.joblet.retention.maxAge),
    },
    network: c.joblet.network,
    cgroupParent: c.cgroup.baseDir.slice("/sys/fs/cgroup".length).replace(/\/+$/, ""),
    stateDir,
    runDir: c.state.runDir ? path.resolve(c.state.runDir) : stateDir,
    jobsDir: c.filesystem.baseDir ? path.resolve(c.filesystem.baseDir) : path.join(stateDir, "jobs"),
    runtimePath: c.runtime.path,
    conmonPath: c.runtime.conmonPath,
    logs: {
      maxJobBytes: c.logs.maxJobLogMB * MIB,
      keepHeadBytes: c.logs.keepHeadMB * MIB,
      diskBudgetBytes: c.logs.diskBudgetMB * MIB,
    },
    grpc: { ...c.grpc },
    logging: { ...c.logging },
    metrics: c.metrics ? { ...splitHostPort(c.metrics.address)!, tls: c.metrics.tls } : undefined,
  });
}

/** Reads and validates the config at `file`, or the first that exists on the search path. */
export function loadDaemonConfig(file?: string): DaemonConfig {
  const candidates = file ? [file] : daemonConfigSearchPath();
  const found = candidates.find((f) => existsSync(f));
  if (!found) {
    throw new JobletError(
      "NOT_FOUND",
      file ? `config file ${file} does not exist` : `no config file found (looked in ${candidates.join(", ")})`,
      { hint: "create one with `joblet init --dir DIR`, then run `joblet --config DIR/joblet-config.yml`" },
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(found, "utf8"));
  } catch (err) {
    throw new JobletError("INVALID_ARGUMENT", `config ${found} is not valid YAML: ${(err as Error).message}`);
  }
  return parseDaemonConfig(raw, found);
}

/** A certificate serial as compared: lowercase hex, no "0x", colons or leading zeros. */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0x/, "").replace(/:/g, "").replace(/^0+(?=.)/, "");
}

/** Freezes an object graph so config cannot drift after start-up. */
export function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === "object" && !Object.isFrozen(obj)) {
    Object.freeze(obj);
    for (const v of Object.values(obj)) deepFreeze(v);
  }
  return obj;
}

/** Splits "host:port" or "[v6]:port" (port 1–65535); undefined when malformed. IPv6 hosts are returned bare. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535 || (m[1] !== undefined && isIP(host) !== 6)) return undefined;
  return { host, port };
}

/** True for names and literals that only reach this host: "localhost", 127.0.0.0/8 and ::1. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? "ipv4" : "ipv6");
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");
