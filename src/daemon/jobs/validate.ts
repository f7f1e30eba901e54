// Validation of a run request. Field names are the API's (RunJobReq), so an error tells a client of any
// language which field to fix. Sizes are capped so no request can make the daemon or a spec file absurd.
import { invalidArgument } from "../../shared/errors.js";

/** A request to run a job, as received (0 / "" = use the daemon's default). */
export interface RunRequest {
  command: string;
  args: string[];
  maxCpuPercent: number;
  cpuCores: string;
  maxMemoryMB: number;
  maxIoBps: number;
  /** 0 = the daemon's default timeout. */
  timeoutMs: number;
  /** KEY=VALUE entries. */
  env: string[];
  /** Relative to /work; "" = /work. */
  workdir: string;
  /** "" = the daemon's default. */
  network: string;
}

/** Longest command, single argument, and all of them together, in bytes (Linux's MAX_ARG_STRLEN is 128 KiB). */
export const MAX_COMMAND_BYTES = 4096;
export const MAX_ARG_BYTES = 128 * 1024;
export const MAX_ARGS = 4096;
export const MAX_TOTAL_ARG_BYTES = 1024 * 1024;
/** Environment entries and their total size, bytes. */
export const MAX_ENV = 1024;
export const MAX_TOTAL_ENV_BYTES = 256 * 1024;
/** Longest timeout: the longest timer Node can arm (about 24.8 days), ms. */
export const MAX_TIMEOUT_MS = 2_147_483_647;
/** Longest file name the kernel accepts (NAME_MAX), bytes. */
const NAME_MAX_BYTES = 255;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks every field; throws INVALID_ARGUMENT naming the first bad one. Returns the request unchanged. */
export function validateRunRequest(req: RunRequest): RunRequest {
  text("command", req.command, MAX_COMMAND_BYTES);
  if (req.command.length === 0) throw invalidArgument("command", "a program name or path", req.command);
  if (!Array.isArray(req.args) || req.args.length > MAX_ARGS) {
    throw invalidArgument("args", `at most ${MAX_ARGS} arguments`, `${req.args?.length} arguments`);
  }
  let total = Buffer.byteLength(req.command);
  req.args.forEach((a, i) => {
    text(`args[${i}]`, a, MAX_ARG_BYTES);
    total += Buffer.byteLength(a);
  });
  if (total > MAX_TOTAL_ARG_BYTES) throw invalidArgument("args", `at most ${MAX_TOTAL_ARG_BYTES} bytes in all`, `${total} bytes`);
  nonNegative("maxCPU", req.maxCpuPercent, "percent of one CPU (100 = one CPU)");
  nonNegative("maxMemory", req.maxMemoryMB, "megabytes");
  nonNegative("maxIOBPS", req.maxIoBps, "bytes per second");
  if (req.maxMemoryMB > 0 && req.maxMemoryMB < 4) {
    throw invalidArgument("maxMemory", "0 (default) or at least 4 MB (a job cannot start in less)", req.maxMemoryMB);
  }
  text("cpuCores", req.cpuCores, 256);
  if (!Number.isSafeInteger(req.timeoutMs) || req.timeoutMs < 0 || req.timeoutMs > MAX_TIMEOUT_MS) {
    throw invalidArgument("timeoutMs", `milliseconds from 0 (the server's default) to ${MAX_TIMEOUT_MS} (about 24.8 days)`, req.timeoutMs);
  }
  validateEnv(req.env);
  validateWorkdir(req.workdir);
  if (!["", "host", "none"].includes(req.network)) {
    throw invalidArgument("network", '"host", "none", or "" for the server\'s default', req.network);
  }
  return req;
}

function validateEnv(env: unknown): void {
  if (!Array.isArray(env) || env.length > MAX_ENV) throw invalidArgument("env", `at most ${MAX_ENV} KEY=VALUE entries`, `${(env as unknown[])?.length} entries`);
  let total = 0;
  env.forEach((entry: unknown, i) => {
    const field = `env[${i}]`;
    text(field, entry, MAX_ARG_BYTES);
    const e = entry as string;
    const eq = e.indexOf("=");
    if (eq < 1 || !ENV_KEY_RE.test(e.slice(0, eq))) {
      throw invalidArgument(field, "KEY=VALUE with KEY made of letters, digits and _ (not starting with a digit)", e);
    }
    total += Buffer.byteLength(e);
  });
  if (total > MAX_TOTAL_ENV_BYTES) throw invalidArgument("env", `at most ${MAX_TOTAL_ENV_BYTES} bytes in all`, `${total} bytes`);
}

/** A working directory relative to /work: no absolute path, no "..", no "." or empty segments. */
function validateWorkdir(dir: unknown): void {
  text("workdir", dir, 1024);
  const d = dir as string;
  if (d === "") return;
  const segments = d.replace(/\/+$/, "").split("/");
  if (segments.some((s) => Buffer.byteLength(s) > NAME_MAX_BYTES)) {
    throw invalidArgument("workdir", `directory names of at most ${NAME_MAX_BYTES} bytes each (the kernel's NAME_MAX)`, d);
  }
  if (d.startsWith("/") || segments.some((s) => s === "" || s === "." || s === "..")) {
    throw invalidArgument("workdir", 'a directory relative to /work such as "src/app" (no leading "/", no "." or ".." parts)', d);
  }
}

function text(field: string, value: unknown, maxBytes: number): void {
  if (typeof value !== "string") throw invalidArgument(field, "a string", value);
  if (value.includes("\0")) throw invalidArgument(field, "text without NUL bytes", value);
  if (value.includes("\ufffd")) throw invalidArgument(field, "valid UTF-8 text", value);
  if (Buffer.byteLength(value) > maxBytes) throw invalidArgument(field, `at most ${maxBytes} bytes`, `${Buffer.byteLength(value)} bytes`);
}

function nonNegative(field: string, value: unknown, unit: string): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw invalidArgument(field, `a non-negative integer (${unit}; 0 = the server's default)`, value);
  }
}
