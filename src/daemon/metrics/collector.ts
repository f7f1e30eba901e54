// What the daemon exports to Prometheus. Event counters (starts, failures, OOM kills, calls) are kept in
// memory since the daemon started, as Prometheus counters are: a restart resets them and Prometheus's rate()
// handles the reset. Everything that is state (jobs by state, per-job CPU, memory and log size) is read from
// the store, the cgroups and the log files at scrape time, so it is right after a restart too.
import { statSync } from "node:fs";
import path from "node:path";
import type { CallRecord } from "../api/server.js";
import type { CgroupManager } from "../cgroups/manager.js";
import type { JobObserver } from "../jobs/service.js";
import { jobLogPath } from "../runtime/conmon.js";
import type { JobRecord, JobStatus } from "../store/record.js";
import { renderExposition, type MetricFamily, type Sample } from "./exposition.js";
import { Histogram } from "./histogram.js";

/** Upper bounds of the start-latency histogram, seconds. A start is runc create + start under conmon: ~30–60 ms here. */
export const START_SECONDS_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** Every job state, so each `joblet_jobs{state}` series exists from the first scrape (0 until used). */
const STATES: readonly JobStatus[] = ["INITIALIZING", "RUNNING", "COMPLETED", "FAILED", "STOPPED"];

/** Where scrape-time values come from. */
export interface MetricsSources {
  /** Every job record (the store), read once per scrape. */
  listJobs(): readonly JobRecord[];
  cgroups: Pick<CgroupManager, "stats">;
  /** Parent of the job cgroups, as in DaemonConfig.cgroupParent ("/joblet"). */
  cgroupParent: string;
  /** The daemon's state dir; job logs are `<stateDir>/logs/<id>.log`. */
  stateDir: string;
  /** Output bytes dropped from a job's log file (retention); absent = not exported. */
  droppedLogBytes?: (logFile: string) => number;
}

/** Counts job and API events and renders every Joblet metric; is the job service's observer. */
export class JobletMetrics implements JobObserver {
  private starts = 0;
  private startFailures = 0;
  private oomKills = 0;
  private readonly startSeconds = new Histogram(START_SECONDS_BUCKETS);
  /** Finished calls by "method\0code". */
  private readonly calls = new Map<string, number>();

  constructor(private readonly sources: MetricsSources) {}

  jobStarted(_job: JobRecord, startMs: number): void {
    this.starts++;
    this.startSeconds.observe(startMs / 1000);
  }

  jobStartFailed(): void {
    this.startFailures++;
  }

  jobEnded(job: JobRecord): void {
    if (job.oomKilled) this.oomKills++;
  }

  /** Counts one finished RPC; give it every CallRecord (allowed or denied). */
  callFinished(call: Pick<CallRecord, "rpc" | "code">): void {
    const key = `${call.rpc}\0${call.code}`;
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
  }

  /** Every family, with scrape-time values read now. */
  families(): MetricFamily[] {
    const jobs = this.sources.listJobs();
    const byState = new Map<JobStatus, number>(STATES.map((s) => [s, 0]));
    for (const j of jobs) byState.set(j.status, (byState.get(j.status) ?? 0) + 1);
    const running = jobs.filter((j) => j.status === "RUNNING");

    const cpu: Sample[] = [];
    const memory: Sample[] = [];
    const logBytes: Sample[] = [];
    const dropped: Sample[] = [];
    for (const j of running) {
      const labels = { job_id: j.id };
      // The job may end between the listing and this read: its cgroup or log is then gone, and it is left out.
      const stats = this.sources.cgroups.stats(path.posix.join(this.sources.cgroupParent, j.id));
      if (stats) {
        cpu.push({ labels, value: stats.cpuTimeNs / 1e9 });
        memory.push({ labels, value: stats.memoryCurrentBytes });
      }
      const logFile = jobLogPath(this.sources.stateDir, j.id);
      const size = fileSize(logFile);
      if (size !== undefined) logBytes.push({ labels, value: size });
      const droppedBytes = this.readDropped(logFile);
      if (droppedBytes !== undefined) dropped.push({ labels, value: droppedBytes });
    }

    const families: MetricFamily[] = [
      {
        name: "joblet_jobs",
        help: "Jobs in the store by state.",
        type: "gauge",
        samples: [...byState].map(([state, value]) => ({ labels: { state }, value })),
      },
      { name: "joblet_job_starts_total", help: "Jobs whose process started, since the daemon started.", type: "counter", samples: [{ value: this.starts }] },
      {
        name: "joblet_job_start_failures_total",
        help: "Jobs that failed to start (runtime, monitor or limit errors), since the daemon started.",
        type: "counter",
        samples: [{ value: this.startFailures }],
      },
      {
        name: "joblet_job_oom_kills_total",
        help: "Jobs that ended OOM-killed by their memory limit, since the daemon started.",
        type: "counter",
        samples: [{ value: this.oomKills }],
      },
      {
        name: "joblet_job_start_seconds",
        help: "Time from accepting a run request to the job's process running, seconds.",
        type: "histogram",
        samples: this.startSeconds.samples(),
      },
      {
        name: "joblet_grpc_calls_total",
        help: "Finished API calls by method and gRPC status code, denied ones included.",
        type: "counter",
        samples: [...this.calls].sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => {
          const [method, code] = key.split("\0") as [string, string];
          return { labels: { method, code }, value };
        }),
      },
      { name: "joblet_job_cpu_seconds_total", help: "CPU time used by a running job's cgroup, seconds.", type: "counter", samples: cpu },
      {
        name: "joblet_job_memory_bytes",
        help: "Memory charged to a running job's cgroup now (page cache included), bytes.",
        type: "gauge",
        samples: memory,
      },
      { name: "joblet_log_bytes", help: "Size of a running job's log file (output written so far, with record framing), bytes.", type: "gauge", samples: logBytes },
    ];
    if (this.sources.droppedLogBytes) {
      families.push({
        name: "joblet_log_dropped_bytes_total",
        help: "Output bytes of a running job dropped from its log by retention, bytes.",
        type: "counter",
        samples: dropped,
      });
    }
    return families;
  }

  /** Dropped bytes of one log; undefined without a source, or when its record is unreadable (one job must not fail the scrape). */
  private readDropped(logFile: string): number | undefined {
    try {
      return this.sources.droppedLogBytes?.(logFile);
    } catch {
      return undefined;
    }
  }

  /** The exposition text of every family. */
  render(): string {
    return renderExposition(this.families());
  }
}

function fileSize(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}
