// How a finished job becomes rnx run's exit code, the way a shell reports a child: its own code, 128+N for a
// signal, and an OOM kill said out loud (the daemon reads it from the cgroup; 137 alone cannot tell it from
// a job that ran `exit 137`).
import { constants } from "node:os";
import type { Job } from "../shared/proto/joblet.js";
import { formatDurationMs } from "../shared/units.js";
import { ExitCode } from "./exit-codes.js";

/** The exit code for `rnx run` and, when the code alone would mislead, a line for stderr. */
export interface JobOutcome {
  readonly exitCode: number;
  readonly note?: string;
}

/** Statuses after which a job never changes again. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(["COMPLETED", "FAILED", "STOPPED"]);

/** SIGKILL's number on every platform Node runs on. */
const SIGKILL = 9;

/** The signal number for a name such as "SIGKILL", "KILL" or "9"; undefined when unknown. */
export function signalNumber(signal: string): number | undefined {
  if (!signal) return undefined;
  if (/^\d+$/.test(signal)) return Number(signal);
  const name = (signal.toUpperCase().startsWith("SIG") ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`) as NodeJS.Signals;
  return constants.signals[name];
}

/** The outcome of a job as `rnx run` reports it. */
export function jobOutcome(
  job: Pick<Job, "id" | "status" | "exitCode" | "signal" | "oomKilled" | "reason" | "maxMemory" | "timeoutMs" | "timedOut">,
): JobOutcome {
  const reason = job.reason ? `: ${job.reason}` : "";
  if (job.timedOut) {
    // Checked first, as timeout(1) does: the job's own status is the consequence of the stop, not its cause.
    const why = job.reason || (job.timeoutMs > 0 ? `timed out after ${formatDurationMs(job.timeoutMs)}` : "timed out");
    const how = job.signal ? ` with ${job.signal}` : "";
    return { exitCode: ExitCode.TIMED_OUT, note: `job ${job.id} was stopped${how} because it ran past its timeout (${why}); exit code ${ExitCode.TIMED_OUT}` };
  }
  if (job.oomKilled) {
    const limit = job.maxMemory > 0 ? ` (${job.maxMemory} MB)` : "";
    return { exitCode: 128 + SIGKILL, note: `job ${job.id} was killed for exceeding its memory limit${limit}` };
  }
  const signum = signalNumber(job.signal);
  if (job.status === "STOPPED") {
    const code = signum !== undefined ? 128 + signum : job.exitCode !== 0 ? clamp(job.exitCode) : 128 + 15;
    return { exitCode: code, note: `job ${job.id} was stopped${job.signal ? ` (${job.signal})` : ""}${reason}` };
  }
  if (signum !== undefined) {
    return { exitCode: clamp(128 + signum), note: `job ${job.id} was killed by ${job.signal}${reason}` };
  }
  if (job.status === "FAILED" && job.exitCode === 0) {
    // Failed without an exit status of its own: it never started (bad command, runtime error).
    return { exitCode: 1, note: `job ${job.id} failed${reason || " without an exit code"}` };
  }
  if (!FINAL_STATUSES.has(job.status)) {
    return { exitCode: 1, note: `job ${job.id} is still ${job.status} but its output has ended` };
  }
  return { exitCode: clamp(job.exitCode) };
}

/** Exit statuses are 8 bits; anything outside 1..255 that is not success becomes 1 rather than wrapping to 0. */
function clamp(code: number): number {
  return code >= 0 && code <= 255 ? code : 1;
}
