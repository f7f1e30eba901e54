// The `--json` shape of a job: the proto's field names, every field always present, in proto order. This is
// a documented interface (scripts parse it), so it is built field by field rather than dumped.
import type { Job, StopJobRes } from "../shared/proto/joblet.js";

/** Resource usage as printed; numbers, in the units the proto names. */
export interface UsageJson {
  cpuTimeNs: number;
  memoryPeakBytes: number;
  ioReadBytes: number;
  ioWriteBytes: number;
}

/** What was uploaded into the job's /work, as printed. */
export interface UploadJson {
  files: number;
  directories: number;
  symlinks: number;
  /** Total size of the files, bytes. */
  bytes: number;
  /** Top-level names created in /work, sorted (at most 100). */
  roots: string[];
}

/** A job as `rnx status --json` prints it and `rnx list --json` prints each element. */
export interface JobJson {
  id: string;
  command: string;
  args: string[];
  maxCPU: number;
  cpuCores: string;
  maxMemory: number;
  maxIOBPS: number;
  status: string;
  startTime: string;
  endTime: string;
  exitCode: number;
  signal: string;
  oomKilled: boolean;
  reason: string;
  /** null when the server reported none (an older server, or a job that never started). */
  usage: UsageJson | null;
  createTime: string;
  /** Milliseconds after its start at which the job is stopped; 0 = no timeout. */
  timeoutMs: number;
  /** True when the job was stopped because it ran past timeoutMs. */
  timedOut: boolean;
  /** Working directory relative to /work; "" = /work. */
  workdir: string;
  /** "host" or "none"; "" from a server that does not report it. */
  network: string;
  /** null when nothing was uploaded (or the server does not report uploads). */
  upload: UploadJson | null;
}

/** The JSON form of a job (a Job, RunJobRes or GetJobStatusRes). */
export function jobToJson(job: Job): JobJson {
  return {
    id: job.id,
    command: job.command,
    args: [...job.args],
    maxCPU: job.maxCPU,
    cpuCores: job.cpuCores,
    maxMemory: job.maxMemory,
    maxIOBPS: job.maxIOBPS,
    status: job.status,
    startTime: job.startTime,
    endTime: job.endTime,
    exitCode: job.exitCode,
    signal: job.signal,
    oomKilled: job.oomKilled,
    reason: job.reason,
    usage: job.usage
      ? {
          cpuTimeNs: job.usage.cpuTimeNs,
          memoryPeakBytes: job.usage.memoryPeakBytes,
          ioReadBytes: job.usage.ioReadBytes,
          ioWriteBytes: job.usage.ioWriteBytes,
        }
      : null,
    createTime: job.createTime,
    timeoutMs: job.timeoutMs,
    timedOut: job.timedOut,
    workdir: job.workdir,
    network: job.network,
    upload: job.upload
      ? {
          files: job.upload.files,
          directories: job.upload.directories,
          symlinks: job.upload.symlinks,
          bytes: job.upload.bytes,
          roots: [...job.upload.roots],
        }
      : null,
  };
}

/** The JSON form of StopJob's answer. */
export function stopResultToJson(res: StopJobRes): { id: string; status: string; endTime: string; exitCode: number } {
  return { id: res.id, status: res.status, endTime: res.endTime, exitCode: res.exitCode };
}
