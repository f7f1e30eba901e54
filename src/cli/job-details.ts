// The `rnx status` view: every field of a job, one per line, with units spelled out and zero limits shown as
// "unlimited" (0 means "no limit" on the wire).
import type { Job, UploadSummary } from "../shared/proto/joblet.js";
import { formatDurationMs as exactDuration } from "../shared/units.js";
import { formatBytes, formatDurationMs, formatTime, jobDurationMs, oneLine, paintStatus, shellJoin } from "./format.js";

/** How many of the upload's top-level names `rnx status` lists before "+N more". */
const UPLOAD_ROOTS_SHOWN = 5;

/** Options for `renderJobDetails`. */
export interface JobDetailsOptions {
  readonly color: boolean;
  /** "Now" for the duration of a running job, milliseconds since the epoch. */
  readonly nowMs: number;
}

/** The job as aligned "Label: value" lines, ending in a newline. */
export function renderJobDetails(job: Job, opts: JobDetailsOptions): string {
  const ms = jobDurationMs(job.startTime, job.endTime, opts.nowMs);
  const lines: Array<[string, string]> = [
    ["ID", job.id],
    ["Command", shellJoin([job.command, ...job.args])],
    ["Status", opts.color ? paintStatus(job.status) : job.status],
    ["Created", withRaw(job.createTime)],
    ["Started", withRaw(job.startTime)],
    ["Ended", withRaw(job.endTime)],
    ["Duration", ms === undefined ? "-" : `${formatDurationMs(ms)}${job.endTime ? "" : " (running)"}`],
    ["Exit code", job.endTime ? String(job.exitCode) : "-"],
    ["Signal", job.signal || "-"],
    ["OOM killed", job.oomKilled ? "yes (exceeded its memory limit)" : "no"],
    ["Reason", job.reason || "-"],
    ["Max CPU", job.maxCPU > 0 ? `${job.maxCPU}% of one CPU` : "unlimited"],
    ["CPU cores", job.cpuCores || "any"],
    ["Max memory", job.maxMemory > 0 ? `${job.maxMemory} MB` : "unlimited"],
    ["Max IO", job.maxIOBPS > 0 ? `${job.maxIOBPS} bytes/s (${formatBytes(job.maxIOBPS)}/s)` : "unlimited"],
    ["Timeout", job.timeoutMs > 0 ? exactDuration(job.timeoutMs) : "none"],
    ["Timed out", job.timedOut ? "yes (stopped because it ran past its timeout)" : "no"],
    // The workdir is relative to /work on the wire; an older server sends "" for both fields.
    ["Workdir", job.workdir ? `/work/${job.workdir}` : "/work"],
    ["Network", job.network || "-"],
    ["Uploaded", job.upload ? formatUploadSummary(job.upload) : "-"],
  ];
  if (job.usage) {
    lines.push(
      ["CPU time", formatDurationMs(job.usage.cpuTimeNs / 1e6)],
      ["Memory peak", job.usage.memoryPeakBytes > 0 ? formatBytes(job.usage.memoryPeakBytes) : "not reported"],
      ["IO read", formatBytes(job.usage.ioReadBytes)],
      ["IO written", formatBytes(job.usage.ioWriteBytes)],
    );
  } else {
    lines.push(["Usage", "not reported"]);
  }
  const width = Math.max(...lines.map(([label]) => label.length)) + 1;
  return lines.map(([label, value]) => `${`${label}:`.padEnd(width)} ${value}`).join("\n") + "\n";
}

/** "12 files, 3 dirs, 1 symlink, 4.2 KiB: script.py, tests"; no dirs or symlinks are left out. */
export function formatUploadSummary(upload: UploadSummary): string {
  const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const parts = [count(upload.files, "file", "files")];
  if (upload.directories > 0) parts.push(count(upload.directories, "dir", "dirs"));
  if (upload.symlinks > 0) parts.push(count(upload.symlinks, "symlink", "symlinks"));
  parts.push(formatBytes(upload.bytes));
  // Names come from the uploader's disk: control characters must not reach the terminal.
  const shown = upload.roots.slice(0, UPLOAD_ROOTS_SHOWN).map(oneLine);
  const more = upload.roots.length - shown.length;
  const names = shown.length ? `: ${shown.join(", ")}${more > 0 ? `, +${more} more` : ""}` : "";
  return `${parts.join(", ")}${names}`;
}

/** Local time with the server's RFC 3339 text after it, or "-". */
function withRaw(rfc3339: string): string {
  return rfc3339 ? `${formatTime(rfc3339)} (${rfc3339})` : "-";
}
