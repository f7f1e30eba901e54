// Validation of `rnx run`'s limit flags. Each value is checked before anything is sent: the reference client
// silently turned a bad value into 0 (= unlimited), which is the worst possible reading of a typo in a limit.
import { invalidArgument } from "../shared/errors.js";

/** The largest value a proto int32 field carries. */
const INT32_MAX = 2_147_483_647;

/** The limit fields of a RunJobReq, as the user gave them; 0 means "the server's default". */
export interface RunLimits {
  /** Percent of one CPU (150 = one and a half CPUs). */
  readonly maxCPU: number;
  /** Megabytes. */
  readonly maxMemory: number;
  /** Bytes per second, read and write each. */
  readonly maxIOBPS: number;
  /** A CPU list such as "0-3" or "1,3,5"; empty for any CPU. */
  readonly cpuCores: string;
}

/** The raw flag values as commander hands them over (undefined when the flag is absent). */
export interface RawRunFlags {
  readonly maxCpu?: string;
  readonly maxMemory?: string;
  readonly maxIobps?: string;
  readonly cpuCores?: string;
}

/** Checks every limit flag and returns the request fields; INVALID_ARGUMENT naming the first bad flag. */
export function parseRunLimits(raw: RawRunFlags): RunLimits {
  return {
    maxCPU: parseIntFlag("--max-cpu", "a whole percent of one CPU, 0 or more (100 = one CPU, 150 = one and a half)", raw.maxCpu),
    maxMemory: parseIntFlag("--max-memory", "a whole number of megabytes, 0 or more (512 = 512 MB)", raw.maxMemory),
    maxIOBPS: parseIntFlag("--max-iobps", "a whole number of bytes per second, 0 or more (10485760 = 10 MiB/s)", raw.maxIobps),
    cpuCores: raw.cpuCores === undefined ? "" : parseCpuList("--cpu-cores", raw.cpuCores),
  };
}

/** A non-negative decimal integer that fits an int32; absent means 0. */
export function parseIntFlag(flag: string, expected: string, text: string | undefined): number {
  if (text === undefined) return 0;
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) throw invalidArgument(flag, expected, text);
  const value = Number(trimmed);
  if (value > INT32_MAX) throw invalidArgument(flag, `${expected}, at most ${INT32_MAX}`, text);
  return value;
}

/**
 * A Linux CPU list ("2", "0-3", "1,3,5", "0-1,4-5"), normalised without spaces. Only the form is checked
 * here; whether those CPUs are online is for the server, which knows its own.
 */
export function parseCpuList(flag: string, text: string): string {
  const expected = 'a CPU list such as "2", "0-3", "1,3,5" or "0-1,4-5"';
  const compact = text.replace(/\s+/g, "");
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(compact)) throw invalidArgument(flag, expected, text);
  for (const part of compact.split(",")) {
    const [lo, hi] = part.split("-").map(Number) as [number, number | undefined];
    if (hi !== undefined && hi < lo) throw invalidArgument(flag, `${expected} (a range runs from low to high)`, text);
    if (Math.max(lo, hi ?? lo) > 4095) throw invalidArgument(flag, `${expected} (CPU numbers below 4096)`, text);
  }
  return compact;
}
