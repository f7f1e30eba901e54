// The daemon's config file (joblet-config.yml): schema, defaults and loading. A superset of the reference
// implementation's v3.0 format; every accepted key has an effect, unknown keys are refused.
import { existsSync, readFileSync } from "node:fs";
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
        seccomp: z
          .string()
          .regex(/^(default|unconfined|\/.+)$/, 'expected "default", "unconfined" or the absolute path of an OCI seccomp profile (JSON)')
          .default("default"),
        revokedSerials: z
          .array(z.string().regex(/^(0x)?[0-9a-fA-F:]{1,128}$/, "expected a certificate serial number in hex"))
          .default([]),
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
      })
      .strict()
      .prefault({}),
    state: z
      .object({ dir: z.string().startsWith("/", "expected an absolute path").default("/var/lib/joblet") })
      .strict()
      .prefault({}),
    runtime: z
      .object({
        path: z.string().min(1).default("runc"),
        conmonPath: z.string().min(1).default("conmon"),
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
  })
  .strict();

/** The file as written, after defaults. */
export type DaemonConfigFile = z.infer<typeof schema>;

/** The daemon's settings, normalised to units and absolute paths; frozen. */
export interface DaemonConfig {
  readonly file: string;
  readonly server: { readonly address: string; readonly port: number };
  readonly tls: { readonly certPem: string; readonly keyPem: string; readonly caPem: string };
  /** "default" (the built-in profile), "unconfined", or the path of an OCI seccomp profile (JSON). */
  readonly seccomp: string;
  /** Append-only JSON-lines record of every API call. */
  readonly auditLogFile: string;
  /** Client certificate serials refused, lowercase hex without separators or leading zeros. */
  readonly revokedSerials: readonly string[];
  readonly limits: {
    readonly defaultCpuPercent: number;
    readonly defaultMemoryMB: number;
    readonly defaultIoBps: number;
    readonly maxConcurrentJobs: number;
    readonly pidsLimit: number;
    readonly tmpSizeBytes: number;
  };
  readonly stopGraceMs: number;
  /** Default job timeout, ms; 0 = none. */
  readonly jobTimeoutMs: number;
  /** Finished jobs kept: at most `maxJobs`, none whose end is older than `maxAgeMs` (0 = no age limit). */
  readonly retention: { readonly maxJobs: number; readonly maxAgeMs: number };
  readonly network: "host" | "none";
  /** cgroup path of the parent of every job's cgroup, relative to the cgroup mount, e.g. "/joblet". */
  readonly cgroupParent: string;
  readonly stateDir: string;
  /** Directory holding each job's writable work dir (`<jobsDir>/<id>/work`). */
  readonly jobsDir: string;
  readonly runtimePath: string;
  readonly conmonPath: string;
  readonly grpc: { readonly maxRecvMsgSize: number; readonly maxSendMsgSize: number };
  readonly logging: { readonly level: string; readonly format: "json" | "text" };
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
    revokedSerials: c.security.revokedSerials.map(normalizeSerial),
    limits: {
      defaultCpuPercent: c.joblet.defaultCpuLimit,
      defaultMemoryMB: c.joblet.defaultMemoryLimit,
      defaultIoBps: c.joblet.defaultIoLimit,
      maxConcurrentJobs: c.joblet.maxConcurrentJobs,
      pidsLimit: c.joblet.pidsLimit,
      tmpSizeBytes: c.filesystem.tmpSizeMB * 1024 * 1024,
    },
    stopGraceMs: parseDurationMs("joblet.stopGracePeriod", c.joblet.stopGracePeriod),
    jobTimeoutMs: parseDurationMs("joblet.jobTimeout", c.joblet.jobTimeout),
    retention: {
      maxJobs: c.joblet.retention.maxJobs,
      maxAgeMs: parseDurationMs("joblet.retention.maxAge", c.joblet.retention.maxAge),
    },
    network: c.joblet.network,
    cgroupParent: c.cgroup.baseDir.slice("/sys/fs/cgroup".length).replace(/\/+$/, ""),
    stateDir,
    jobsDir: c.filesystem.baseDir ? path.resolve(c.filesystem.baseDir) : path.join(stateDir, "jobs"),
    runtimePath: c.runtime.path,
    conmonPath: c.runtime.conmonPath,
    grpc: { ...c.grpc },
    logging: { ...c.logging },
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
