// The Prometheus endpoint of a real daemon: counters and gauges after real jobs (one OOM-killed, one that
// cannot start, one refused by role, one running), per-running-job CPU, memory, log size and output dropped
// by retention, a well-formed exposition, and the TLS variant that requires a client certificate from the CA.
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LogCap } from "../../src/daemon/logs/retention.js";
import { loadRnxConfig, selectNode } from "../../src/shared/config/rnx.js";
import { freePort, ROOT, runCli, TestDaemon } from "./harness.js";

const daemons: TestDaemon[] = [];
after(async () => {
  for (const d of daemons) await d.destroy();
});

/** GETs `url`; rejects on a connection or TLS failure. */
function scrape(url: string, tls: { cert?: string; key?: string; ca?: string } = {}): Promise<{ status: number; type: string; body: string }> {
  const req = url.startsWith("https:") ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(url, { ...tls, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
    });
    r.on("error", reject);
    r.setTimeout(10_000, () => r.destroy(new Error(`timed out: ${url}`)));
    r.end();
  });
}

/** Parses the exposition strictly: every family announced by HELP then TYPE before its samples. */
function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  const types = new Map<string, string>();
  let help: string | undefined;
  assert.ok(text.endsWith("\n"), "ends with a newline");
  for (const line of text.slice(0, -1).split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line))) {
      help = m[1];
    } else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line))) {
      assert.equal(m[1], help, `TYPE of ${m[1]} follows its HELP`);
      assert.ok(!types.has(m[1]!), `${m[1]} announced once`);
      types.set(m[1]!, m[2]!);
    } else if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$/.exec(line))) {
      const family = types.has(m[1]!) ? m[1]! : m[1]!.replace(/_(bucket|sum|count)$/, "");
      assert.ok(types.has(family), `sample ${line} belongs to an announced family`);
      const value = m[3] === "+Inf" ? Infinity : Number(m[3]);
      assert.ok(!Number.isNaN(value), `numeric value in ${line}`);
      series.set(`${m[1]}${m[2] ?? ""}`, value);
    } else {
      assert.fail(`malformed exposition line: ${JSON.stringify(line)}`);
    }
  }
  for (const name of [
    "joblet_jobs",
    "joblet_job_starts_total",
    "joblet_job_start_failures_total",
    "joblet_job_oom_kills_total",
    "joblet_job_start_seconds",
    "joblet_grpc_calls_total",
    "joblet_job_cpu_seconds_total",
    "joblet_job_memory_bytes",
    "joblet_log_bytes",
    "joblet_log_dropped_bytes_total",
  ]) {
    assert.ok(types.has(name), `${name} is exported`);
  }
  assert.equal(types.get("joblet_job_start_seconds"), "histogram");
  return series;
}

test("metrics over plain HTTP on loopback count real jobs and read running jobs' cgroups and logs", async () => {
  const port = await freePort();
  const d = await TestDaemon.start({ metrics: { address: `127.0.0.1:${port}` } });
  daemons.push(d);
  const url = `http://127.0.0.1:${port}/metrics`;

  const first = await scrape(url);
  assert.equal(first.status, 200);
  assert.equal(first.type, "text/plain; version=0.0.4; charset=utf-8");
  let s = parseExposition(first.body);
  for (const state of ["INITIALIZING", "RUNNING", "COMPLETED", "FAILED", "STOPPED"]) assert.equal(s.get(`joblet_jobs{state="${state}"}`), 0, state);
  assert.equal(s.get("joblet_job_starts_total"), 0);

  assert.equal((await d.rnx(["run", "true"])).code, 0);
  const oom = await d.rnx(["run", "--max-memory", "32", "python3", "-c", "b = bytearray(100 << 20)"]);
  assert.equal(oom.code, 137, oom.stderr);
  const missing = await d.rnx(["run", "no-such-program-xyz"]);
  assert.notEqual(missing.code, 0);
  assert.equal((await d.rnx(["--node", "viewer", "run", "true"])).code, 4, "viewer may not run jobs");
  // A running job that burns some CPU, writes 330 000 bytes of output in 30 000 lines, then waits.
  const det = await d.rnx(["run", "--detach", "sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; yes 0123456789 | head -n 30000; echo END; sleep 60"]);
  assert.equal(det.code, 0, det.stderr);
  const id = det.stdout.trim();
  const logFile = path.join(d.dir, "state", "logs", `${id}.log`);

  // Wait until the job's output is all in its log.
  const deadline = Date.now() + 20_000;
  while (!(existsSync(logFile) && readFileSync(logFile, "latin1").endsWith(" stdout F END\n"))) {
    assert.ok(Date.now() < deadline, `the output of ${id} never reached its log`);
    await sleep(200);
  }
  const logBytes = statSync(logFile).size;
  s = parseExposition((await scrape(url)).body);
  assert.equal(s.get('joblet_jobs{state="RUNNING"}'), 1);
  assert.equal(s.get('joblet_jobs{state="COMPLETED"}'), 1);
  assert.equal(s.get('joblet_jobs{state="FAILED"}'), 2, "the OOM-killed job and the one that could not start");
  assert.equal(s.get("joblet_job_starts_total"), 3);
  assert.equal(s.get("joblet_job_start_failures_total"), 1);
  assert.equal(s.get("joblet_job_oom_kills_total"), 1);
  assert.equal(s.get("joblet_job_start_seconds_count"), 3);
  assert.equal(s.get('joblet_job_start_seconds_bucket{le="+Inf"}'), 3);
  const sum = s.get("joblet_job_start_seconds_sum")!;
  assert.ok(sum > 0 && sum < 30, `start seconds sum ${sum}`);
  assert.equal(s.get('joblet_grpc_calls_total{method="RunJob",code="OK"}'), 3);
  assert.equal(s.get('joblet_grpc_calls_total{method="RunJob",code="PERMISSION_DENIED"}'), 1);
  const failedRuns = [...s].filter(([k]) => k.startsWith('joblet_grpc_calls_total{method="RunJob"') && !/code="(OK|PERMISSION_DENIED)"/.test(k));
  assert.equal(failedRuns.reduce((n, [, v]) => n + v, 0), 1, `the start failure is counted under its code: ${JSON.stringify(failedRuns)}`);
  assert.ok((s.get('joblet_grpc_calls_total{method="GetJobLogs",code="OK"}') ?? 0) >= 1, "rnx run follows the log");
  const cpu = s.get(`joblet_job_cpu_seconds_total{job_id="${id}"}`);
  assert.ok(cpu !== undefined && cpu > 0, `cpu seconds of the running job: ${cpu}`);
  const mem = s.get(`joblet_job_memory_bytes{job_id="${id}"}`);
  assert.ok(mem !== undefined && mem > 0, `memory bytes of the running job: ${mem}`);
  assert.equal(s.get(`joblet_log_bytes{job_id="${id}"}`), logBytes);
  assert.ok(logBytes > 330_000, "output plus conmon's per-record prefix");
  assert.equal(s.get(`joblet_log_dropped_bytes_total{job_id="${id}"}`), 0);

  // Retention caps the running job's log (the daemon's own code, run here on the live file): the dropped
  // output shows in the metric, the log file keeps its size (the middle is punched, offsets stay valid).
  const cut = await new LogCap({ maxBytes: 128 << 10, headBytes: 16 << 10 }).enforce(logFile);
  assert.ok(cut.droppedOutputBytes > 100_000, `retention dropped ${cut.droppedOutputBytes} bytes`);
  s = parseExposition((await scrape(url)).body);
  assert.equal(s.get(`joblet_log_dropped_bytes_total{job_id="${id}"}`), cut.droppedOutputBytes);
  assert.equal(s.get(`joblet_log_bytes{job_id="${id}"}`), logBytes);
  const perJob = [...s.keys()].filter((k) => k.includes("job_id="));
  assert.ok(perJob.every((k) => k.includes(`job_id="${id}"`)), `per-job series only for the running job: ${perJob.join(", ")}`);

  assert.equal((await d.rnx(["stop", id])).code, 0);
  s = parseExposition((await scrape(url)).body);
  assert.equal(s.get('joblet_jobs{state="RUNNING"}'), 0);
  assert.equal(s.get('joblet_jobs{state="STOPPED"}'), 1);
  assert.ok(![...s.keys()].some((k) => k.includes("job_id=")), "no per-job series once nothing runs");
  assert.equal(s.get('joblet_grpc_calls_total{method="StopJob",code="OK"}'), 1);
  assert.equal((await scrape(`http://127.0.0.1:${port}/other`)).status, 404);
});

test("metrics with tls: true serve HTTPS and require a client certificate from the daemon's CA", async () => {
  const port = await freePort();
  const d = await TestDaemon.start({ metrics: { address: `127.0.0.1:${port}`, tls: true } });
  daemons.push(d);
  const viewer = selectNode(loadRnxConfig(d.rnxConfigFile), "viewer");
  const url = `https://localhost:${port}/metrics`;
  const ok = await scrape(url, { ca: viewer.caPem, cert: viewer.certPem, key: viewer.keyPem });
  assert.equal(ok.status, 200);
  assert.equal(parseExposition(ok.body).get("joblet_job_starts_total"), 0);
  await assert.rejects(scrape(url, { ca: viewer.caPem }), "no client certificate");
  await assert.rejects(scrape(`http://127.0.0.1:${port}/metrics`), "no plain HTTP");
});

test("a non-loopback plain-HTTP metrics address stops the daemon with a message naming the key", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-metrics-it-"));
  try {
    const joblet = path.join(ROOT, "bin", "joblet");
    assert.equal((await runCli([joblet, "init", "--dir", dir])).code, 0);
    const file = path.join(dir, "joblet-config.yml");
    appendFileSync(file, 'metrics:\n  address: "0.0.0.0:9464"\n');
    const r = await runCli([joblet, "--config", file]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /metrics\.address: expected a loopback address .*, got "0\.0\.0\.0:9464"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
