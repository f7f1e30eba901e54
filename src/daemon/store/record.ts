// The record kept for every job: what was asked, how it ran, how it ended.

/** A job's lifecycle state. COMPLETED: exit 0; FAILED: non-zero exit, signal or start failure; STOPPED: by a user. */
export type JobStatus = "INITIALIZING" | "RUNNING" | "COMPLETED" | "FAILED" | "STOPPED";

/** True when a job in `status` will never change again (the state machine, jobs/state.ts, has no way out of it). */
export function isFinal(status: JobStatus): boolean {
  return status === "COMPLETED" || status === "FAILED" || status === "STOPPED";
}

/** Resource usage read from the job's cgroup. */
export interface JobUsage {
  cpuTimeNs: number;
  memoryPeakBytes: number;
  ioReadBytes: number;
  ioWriteBytes: number;
}

/** What a client uploaded into the job's /work before it started. */
export interface JobUpload {
  files: number;
  directories: number;
  symlinks: number;
  /** Total size of the files, bytes. */
  bytes: number;
  /** Top-level names created in /work, sorted, at most 100. */
  roots: string[];
}

/** The limits a job runs with, after config defaults were applied (0 = unlimited). */
export interface JobLimits {
  /** Percent of one CPU (150 = one and a half). */
  maxCpuPercent: number;
  /** cpuset CPU list, "" = any. */
  cpuCores: string;
  maxMemoryMB: number;
  maxIoBps: number;
}

/** Everything recorded about one job; lives in the store, survives daemon restarts. */
export interface JobRecord {
  id: string;
  command: string;
  args: string[];
  limits: JobLimits;
  status: JobStatus;
  /** RFC 3339 times; startTime when the process started, endTime once final. */
  createTime: string;
  startTime?: string;
  endTime?: string;
  exitCode?: number;
  /** Terminating signal name ("SIGKILL") when known. */
  signal?: string;
  oomKilled: boolean;
  /** Why it failed to start, was stopped, or ended abnormally. */
  reason?: string;
  /** A user asked to stop it: its end is STOPPED whatever its exit code. */
  stopRequested: boolean;
  usage?: JobUsage;
  /** Stopped this long after it started, ms; 0 = never. */
  timeoutMs: number;
  /** It was stopped because it ran past its timeout. */
  timedOut: boolean;
  /** Working directory relative to /work ("" = /work itself). */
  workdir: string;
  network: "host" | "none";
  /** Set once an upload into /work completed (RunJobWithUploads). */
  upload?: JobUpload;
}
