import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import type { CgroupStats } from "../cgroups/manager.js";
import type { JobRecord, JobStatus } from "../store/record.js";
import { JobletMetrics, type MetricsSources } from "./collector.js";

const stateDir = mkdtempSync(path.join(os.tmpdir(), "joblet-metrics-"));
after(() => rmSync(stateDir, { recursive: true, force: true }));

function job(id: string, status: JobStatus, oomKilled = false): JobRecord {
  return {
    id,
    command: "true",
    args: [],
    limits: { maxCpuPercent: 0, cpuCores: "", maxMemoryMB: 0, maxIoBps: 0 },
    status,
    createTime: "2026-01-01T00:00:00Z",
    oomKilled,
    stopRequested: false,
    timeoutMs: 0,
    timedOut: false,
    workdir: "",
    network: "host",
  };
}

function stats(cpuTimeNs: number, memoryCurrentBytes: number): CgroupStats {
  return { cpuTimeNs, memoryCurrentBytes, memoryPeakBytes: 0, ioReadBytes: 0, ioWriteBytes: 0, oomKills: 0, pids: 1 };
}

function metrics(jobs: JobRecord[], cg: Record<string, CgroupStats>, extra: Partial<MetricsSources> = {}): JobletMetrics {
  return new JobletMetrics({
    listJobs: () => jobs,
    cgroups: { stats: (p) => cg[p] },
    cgroupParent: "/joblet",
    stateDir,
    ...extra,
  });
}

/** The value of the one line starting with `series` followed by a space. */
function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("jobs by state count every record, with every state present", () => {
  const text = metrics([job("a", "RUNNING"), job("b", "FAILED"), job("c", "FAILED"), job("d", "COMPLETED")], {}).render();
  assert.equal(value(text, 'joblet_jobs{state="RUNNING"}'), 1);
  assert.equal(value(text, 'joblet_jobs{state="FAILED"}'), 2);
  assert.equal(value(text, 'joblet_jobs{state="COMPLETED"}'), 1);
  assert.equal(value(text, 'joblet_jobs{state="STOPPED"}'), 0);
  assert.equal(value(text, 'joblet_jobs{state="INITIALIZING"}'), 0);
});

test("observer events feed starts, failures, OOM kills and the start histogram", () => {
  const m = metrics([], {});
  m.jobStarted(job("a", "RUNNING"), 40);
  m.jobStarted(job("b", "RUNNING"), 300);
  m.jobStartFailed();
  m.jobEnded(job("a", "FAILED", true));
  m.jobEnded(job("b", "COMPLETED"));
  const text = m.render();
  assert.equal(value(text, "joblet_job_starts_total"), 2);
  assert.equal(value(text, "joblet_job_start_failures_total"), 1);
  assert.equal(value(text, "joblet_job_oom_kills_total"), 1);
  assert.equal(value(text, 'joblet_job_start_seconds_bucket{le="0.05"}'), 1);
  assert.equal(value(text, 'joblet_job_start_seconds_bucket{le="0.25"}'), 1);
  assert.equal(value(text, 'joblet_job_start_seconds_bucket{le="0.5"}'), 2);
  assert.equal(value(text, 'joblet_job_start_seconds_bucket{le="+Inf"}'), 2);
  assert.ok(Math.abs(value(text, "joblet_job_start_seconds_sum")! - 0.34) < 1e-9);
  assert.equal(value(text, "joblet_job_start_seconds_count"), 2);
});

test("calls are counted by method and code", () => {
  const m = metrics([], {});
  m.callFinished({ rpc: "RunJob", code: "OK" });
  m.callFinished({ rpc: "RunJob", code: "OK" });
  m.callFinished({ rpc: "RunJob", code: "PERMISSION_DENIED" });
  m.callFinished({ rpc: "ListJobs", code: "OK" });
  const text = m.render();
  assert.equal(value(text, 'joblet_grpc_calls_total{method="RunJob",code="OK"}'), 2);
  assert.equal(value(text, 'joblet_grpc_calls_total{method="RunJob",code="PERMISSION_DENIED"}'), 1);
  assert.equal(value(text, 'joblet_grpc_calls_total{method="ListJobs",code="OK"}'), 1);
});

test("running jobs get CPU, memory and log size from their cgroup and log; others and vanished ones none", () => {
  mkdirSync(path.join(stateDir, "logs"), { recursive: true });
  writeFileSync(path.join(stateDir, "logs", "run1.log"), "x".repeat(1234));
  const m = metrics([job("run1", "RUNNING"), job("run2", "RUNNING"), job("done", "COMPLETED")], {
    "/joblet/run1": stats(2_500_000_000, 4096),
    "/joblet/done": stats(9, 9),
  });
  const text = m.render();
  assert.equal(value(text, 'joblet_job_cpu_seconds_total{job_id="run1"}'), 2.5);
  assert.equal(value(text, 'joblet_job_memory_bytes{job_id="run1"}'), 4096);
  assert.equal(value(text, 'joblet_log_bytes{job_id="run1"}'), 1234);
  // run2's cgroup and log are gone (it ended during the scrape); "done" is not running.
  assert.doesNotMatch(text, /job_id="run2"|job_id="done"/);
  assert.match(text, /^# TYPE joblet_job_cpu_seconds_total counter$/m);
  assert.match(text, /^# TYPE joblet_job_memory_bytes gauge$/m);
  assert.doesNotMatch(text, /joblet_log_dropped_bytes_total/, "not exported without a source");
});

test("dropped log bytes are exported per running job when a source is given", () => {
  const seen: string[] = [];
  const m = metrics([job("run1", "RUNNING")], {}, {
    droppedLogBytes: (file) => {
      seen.push(file);
      return 77;
    },
  });
  assert.equal(value(m.render(), 'joblet_log_dropped_bytes_total{job_id="run1"}'), 77);
  assert.deepEqual(seen, [path.join(stateDir, "logs", "run1.log")]);
});

test("an unreadable dropped-bytes record leaves that job's sample out instead of failing the scrape", () => {
  const m = metrics([job("run1", "RUNNING"), job("run2", "RUNNING")], {}, {
    droppedLogBytes: (file) => {
      if (file.includes("run1")) throw new Error("corrupt holes file");
      return 5;
    },
  });
  const text = m.render();
  assert.equal(value(text, 'joblet_log_dropped_bytes_total{job_id="run2"}'), 5);
  assert.doesNotMatch(text, /joblet_log_dropped_bytes_total\{job_id="run1"\}/);
});
