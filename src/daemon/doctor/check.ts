// The outcome of one doctor check: what was looked at, what was found, and what to do when it is not fine.
import { JobletError } from "../../shared/errors.js";

/** ok: fine; warn: jobs run with every limit, but something needs attention; fail: they cannot. */
export type CheckStatus = "ok" | "warn" | "fail";

/** One line of the doctor's report. */
export interface CheckResult {
  /** Stable identifier for scripts (`--json`): "runtime", "cgroup.memory", "io.throttle", ... */
  id: string;
  /** Short label for the text report. */
  title: string;
  status: CheckStatus;
  /** What was found, in one sentence. */
  found: string;
  /** What to do about it; set on every warn and fail. */
  hint?: string;
}

/** A passing check. */
export function ok(id: string, title: string, found: string): CheckResult {
  return { id, title, status: "ok", found };
}

/** A check that passes with a caveat. */
export function warn(id: string, title: string, found: string, hint: string): CheckResult {
  return { id, title, status: "warn", found, hint };
}

/** A failing check. */
export function fail(id: string, title: string, found: string, hint: string): CheckResult {
  return { id, title, status: "fail", found, hint };
}

/** A failing check from an error: a JobletError's message and hint, or any error's message and `hint`. */
export function failFrom(id: string, title: string, err: unknown, hint: string): CheckResult {
  if (err instanceof JobletError) return fail(id, title, err.message, err.hint ?? hint);
  return fail(id, title, (err as Error)?.message ?? String(err), hint);
}

/** "1.5 GiB", "320 MiB", "12 KiB": binary units, one decimal below 10. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 || v >= 10 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}
