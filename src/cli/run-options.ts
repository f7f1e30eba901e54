// Validation of `rnx run`'s job options beyond the limits: --timeout, -e/--env, --workdir, --network. Each is
// checked before the config is read or anything is sent, and a refusal names the flag, the expected form and
// the value given. The daemon checks the same rules again (src/daemon/jobs/validate.ts); the CLI repeats
// them so a typo is reported in the words the user typed (`--workdir`, not `workdir`).
import { invalidArgument } from "../shared/errors.js";
import type { RunJobReq } from "../shared/proto/joblet.js";
import { parseDurationMs } from "../shared/units.js";
import { parseRunLimits, type RawRunFlags } from "./flags.js";

/** Longest timeout the daemon accepts, milliseconds: the longest timer Node can arm (2^31-1 ms, about 24.8 days). */
export const MAX_TIMEOUT_MS = 2_147_483_647;
/** Most environment entries, and their total size in bytes, the daemon accepts (its MAX_ENV, MAX_TOTAL_ENV_BYTES). */
export const MAX_ENV_ENTRIES = 1024;
export const MAX_TOTAL_ENV_BYTES = 256 * 1024;
/** Longest working directory the daemon accepts, and longest name in it (the kernel's NAME_MAX), bytes. */
export const MAX_WORKDIR_BYTES = 1024;
export const MAX_NAME_BYTES = 255;
/** The networks a job may have: the host's, or only its own loopback. */
export const NETWORK_MODES = ["host", "none"] as const;

const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TIMEOUT_EXPECTED = 'a duration such as "30s", "5m", "1h", "500ms" or "2d", or a whole number of seconds';

/** The raw values of every `rnx run` job option, as commander hands them over (undefined when absent). */
export interface RawRunOptions extends RawRunFlags {
  readonly timeout?: string;
  /** Each -e/--env value in order: "KEY=VALUE", or "KEY" to copy rnx's own $KEY. */
  readonly env?: readonly string[];
  readonly workdir?: string;
  readonly network?: string;
}

/** Every RunJobReq field except the command and its arguments. */
export type RunOptions = Omit<RunJobReq, "command" | "args">;

/** Checks every job option and returns the request fields; `hostEnv` is rnx's own environment for `-e KEY`. */
export function parseRunOptions(raw: RawRunOptions, hostEnv: NodeJS.ProcessEnv): RunOptions {
  return {
    ...parseRunLimits(raw),
    timeoutMs: raw.timeout === undefined ? 0 : parseTimeoutMs("--timeout", raw.timeout),
    env: parseEnvFlags("--env", raw.env ?? [], hostEnv),
    workdir: raw.workdir === undefined ? "" : parseWorkdir("--workdir", raw.workdir),
    network: raw.network === undefined ? "" : parseNetwork("--network", raw.network),
  };
}

/**
 * A timeout in milliseconds: a duration with a unit ("500ms", "30s", "1.5m", "1h", "2d") or a bare whole
 * number of seconds, as `timeout(1)` takes. 0 asks for the server's default (joblet.jobTimeout).
 */
export function parseTimeoutMs(flag: string, text: string): number {
  const trimmed = text.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    try {
      ms = parseDurationMs(flag, trimmed);
    } catch {
      throw invalidArgument(flag, TIMEOUT_EXPECTED, text);
    }
  }
  if (ms === 0 && /[1-9]/.test(trimmed)) throw invalidArgument(flag, `${TIMEOUT_EXPECTED}, at least 1ms`, text);
  if (ms > MAX_TIMEOUT_MS) throw invalidArgument(flag, `${TIMEOUT_EXPECTED}, at most ${MAX_TIMEOUT_MS}ms (about 24.8 days)`, text);
  return ms;
}

/**
 * The job's extra environment as "KEY=VALUE" entries. "KEY" alone copies rnx's own $KEY and, like
 * `docker run -e KEY`, is left out when rnx's environment has no KEY. A later entry for a KEY wins (the
 * daemon keeps the last one).
 */
export function parseEnvFlags(flag: string, values: readonly string[], hostEnv: NodeJS.ProcessEnv): string[] {
  const expected = "KEY=VALUE (or KEY to pass on rnx's own $KEY), KEY made of letters, digits and _, not starting with a digit";
  const entries: string[] = [];
  let totalBytes = 0;
  for (const value of values) {
    const eq = value.indexOf("=");
    const key = eq < 0 ? value : value.slice(0, eq);
    if (!ENV_KEY_RE.test(key)) throw invalidArgument(flag, expected, value);
    if (value.includes("\0")) throw invalidArgument(flag, `${expected}, without NUL bytes`, value);
    let entry = value;
    if (eq < 0) {
      const inherited = hostEnv[key];
      if (inherited === undefined) continue;
      entry = `${key}=${inherited}`;
    }
    entries.push(entry);
    totalBytes += Buffer.byteLength(entry);
  }
  if (entries.length > MAX_ENV_ENTRIES) throw invalidArgument(flag, `at most ${MAX_ENV_ENTRIES} variables`, `${entries.length} variables`);
  if (totalBytes > MAX_TOTAL_ENV_BYTES) throw invalidArgument(flag, `at most ${MAX_TOTAL_ENV_BYTES} bytes of KEY=VALUE in all`, `${totalBytes} bytes`);
  return entries;
}

/**
 * The working directory relative to /work, as the request carries it ("" = /work itself). An absolute path
 * under /work ("/work/src") is accepted and made relative; trailing slashes are dropped. Refused: other
 * absolute paths, and "." or ".." or empty parts (the job may not leave /work).
 */
export function parseWorkdir(flag: string, text: string): string {
  const expected = 'a directory relative to /work such as "src/app" (or "/work/src/app"), without "." or ".." parts';
  if (text.includes("\0")) throw invalidArgument(flag, `${expected}, without NUL bytes`, text);
  const trimmed = text.replace(/\/+$/, "");
  if (text !== "" && trimmed === "") throw invalidArgument(flag, expected, text); // "/" is outside /work
  if (trimmed === "" || trimmed === "/work") return "";
  const dir = trimmed.startsWith("/work/") ? trimmed.slice("/work/".length) : trimmed;
  if (dir.startsWith("/") || dir.split("/").some((part) => part === "" || part === "." || part === "..")) {
    throw invalidArgument(flag, expected, text);
  }
  if (Buffer.byteLength(dir) > MAX_WORKDIR_BYTES) throw invalidArgument(flag, `${expected}, at most ${MAX_WORKDIR_BYTES} bytes`, text);
  if (dir.split("/").some((part) => Buffer.byteLength(part) > MAX_NAME_BYTES)) {
    throw invalidArgument(flag, `${expected}, each directory name at most ${MAX_NAME_BYTES} bytes (the kernel's NAME_MAX)`, text);
  }
  return dir;
}

/** "host" (the host's network) or "none" (loopback only), any case. */
export function parseNetwork(flag: string, text: string): string {
  const mode = text.trim().toLowerCase();
  if (!(NETWORK_MODES as readonly string[]).includes(mode)) {
    throw invalidArgument(flag, '"host" (the host\'s network) or "none" (loopback only)', text);
  }
  return mode;
}
