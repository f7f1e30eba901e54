// Job lifecycle against a real daemon: states and exit codes, stop of a process tree that ignores SIGTERM
// (TERM, grace, KILL, nothing left behind), a polite stop, and jobs outliving the daemon (SIGTERM and
// SIGKILL of the daemon, a job ending while it is down).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { RunJobReq, Stream, type DataChunk, type GetJobStatusRes, type Jobs, type JobletServiceClient, type RunJobRes, type StopJobRes } from "../../src/shared/proto/joblet.js";
import { ROOT, TestDaemon, unary } from "./harness.js";

const T = { timeout: 90_000 };
/** The daemon's stop grace period in this file, ms (config joblet.stopGracePeriod). */
const GRACE_MS = 3000;

let d: TestDaemon;
let c: JobletServiceClient;
before(async () => {
  d = await TestDaemon.start({ joblet: { stopGracePeriod: `${GRACE_MS / 1000}s` } });
  c = d.client();
});
after(async () => {
  c?.close();
  await d?.destroy();
});

const run = (command: string, ...args: string[]) => unary<RunJobRes>((cb) => c.runJob(RunJobReq.fromPartial({ command, args }), cb));
const getStatus = (id: string) => unary<GetJobStatusRes>((cb) => c.getJobStatus({ id }, cb));
const list = () => unary<Jobs>((cb) => c.listJobs({}, cb));

async function waitFinal(id: string, timeoutMs = 30_000): Promise<GetJobStatusRes> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = await getStatus(id);
    if (["COMPLETED", "FAILED", "STOPPED"].includes(j.status)) return j;
    if (Date.now() > deadline) assert.fail(`job ${id} still ${j.status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** The whole output of a job (following it to its end), by stream. */
function output(id: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const s = c.getJobLogs({ id, fromOffset: 0 });
    s.on("data", (ch: DataChunk) => (ch.stream === Stream.STDERR ? err : out).push(ch.payload));
    s.on("error", reject);
    s.on("end", () => resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

/** Host PIDs of the job's processes, as the runtime sees them. */
function jobPids(id: string): number[] {
  const r = spawnSync("runc", ["--root", d.runtimeRoot(), "ps", "--format", "json", id], { encoding: "utf8" });
  assert.equal(r.status, 0, `runc ps ${id}: ${r.stderr}`);
  return JSON.parse(r.stdout) as number[];
}

/** Waits until the job has at least `n` processes; returns their host PIDs. */
async function waitPids(id: string, n: number): Promise<number[]> {
  for (let i = 0; i < 100; i++) {
    const pids = jobPids(id);
    if (pids.length >= n) return pids;
    await sleep(50);
  }
  assert.fail(`job ${id} never had ${n} processes`);
}

/** `rnx log ID` as a child process, so the test can wait until it has printed something. */
function followWithRnx(id: string): { firstOutput: Promise<void>; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const proc = spawn(process.execPath, [path.join(ROOT, "bin", "rnx"), "--config", d.rnxConfigFile, "log", id], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const firstOutput = new Promise<void>((resolve, reject) => {
    proc.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
      resolve();
    });
    proc.once("exit", () => reject(new Error(`rnx log ended before any output: ${stderr}`)));
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    proc.once("close", (code) => resolve({ code, stdout, stderr }));
  });
  return { firstOutput, done };
}

function assertNothingLeft(id: string, pids: number[]): void {
  const alive = pids.filter((pid) => existsSync(`/proc/${pid}`));
  assert.deepEqual(alive, [], `processes of job ${id} still alive: ${alive.join(", ")}`);
  assert.ok(!d.runtimeContainers().includes(id), `container ${id} still known to the runtime`);
  const cgroups = d.leftoverCgroups().filter((p) => p.includes(id));
  assert.deepEqual(cgroups, [], "no cgroup of the job left");
  assert.ok(!existsSync(path.join(d.bundlesDir(), id)), "no bundle left");
}

test("states: INITIALIZING → RUNNING → COMPLETED; FAILED with the exit code; STOPPED; endTime set", T, async () => {
  // Watch the job list while jobs start: each job's states only ever move forward.
  const seen = new Map<string, string[]>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const j of (await list()).jobs) {
        const states = seen.get(j.id) ?? [];
        if (states[states.length - 1] !== j.status) states.push(j.status);
        seen.set(j.id, states);
      }
    }
  })();
  const ok = run("sh", "-c", "sleep 0.5; exit 0");
  const bad = run("sh", "-c", "sleep 0.5; exit 3");
  const long = run("sleep", "100");
  const [okJob, badJob, longJob] = await Promise.all([ok, bad, long]);
  for (const j of [okJob, badJob, longJob]) assert.equal(j.status, "RUNNING");
  const stopped = await unary<StopJobRes>((cb) => c.stopJob({ id: longJob.id }, cb));
  assert.equal(stopped.status, "STOPPED");
  const okFinal = await waitFinal(okJob.id);
  const badFinal = await waitFinal(badJob.id);
  await sleep(100);
  watching = false;
  await watcher;

  assert.equal(okFinal.status, "COMPLETED");
  assert.equal(okFinal.exitCode, 0);
  assert.equal(badFinal.status, "FAILED");
  assert.equal(badFinal.exitCode, 3);
  assert.equal(badFinal.signal, "");
  const longFinal = await getStatus(longJob.id);
  assert.equal(longFinal.status, "STOPPED");
  for (const j of [okFinal, badFinal, longFinal]) {
    assert.ok(Date.parse(j.endTime) >= Date.parse(j.startTime), `${j.id}: endTime ${j.endTime} after startTime ${j.startTime}`);
  }
  const order = ["INITIALIZING", "RUNNING", "COMPLETED", "FAILED", "STOPPED"];
  for (const [id, want] of [
    [okJob.id, "COMPLETED"],
    [badJob.id, "FAILED"],
    [longJob.id, "STOPPED"],
  ] as const) {
    const states = seen.get(id) ?? [];
    assert.equal(states[states.length - 1], want, `${id}: ${states.join(" → ")}`);
    const ranks = states.map((s) => Math.min(order.indexOf(s), 2));
    assert.deepEqual(ranks, [...ranks].sort(), `${id}: states move forward only: ${states.join(" → ")}`);
  }
  assert.ok(
    [okJob, badJob, longJob].some((j) => seen.get(j.id)?.[0] === "INITIALIZING"),
    `INITIALIZING was observed: ${[...seen.values()].map((s) => s.join("→")).join(", ")}`,
  );

  const cli = await d.rnx(["run", "sh", "-c", "exit 3"]);
  assert.equal(cli.code, 3, "rnx run exits with the job's exit code");
});

test("stop of a tree that ignores SIGTERM: SIGKILL after the grace period, STOPPED, nothing left", T, async () => {
  // Ignored signals stay ignored across fork and exec: every process of this tree ignores SIGTERM, one
  // of them in a subshell that sets its own trap too.
  const job = await run("sh", "-c", `trap "" TERM; sleep 1000 & (trap "" TERM; sleep 1000; true) & sleep 1000 & wait`);
  const pids = await waitPids(job.id, 5);
  const t0 = Date.now();
  const r = await d.rnx(["stop", job.id]);
  const tookMs = Date.now() - t0;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(tookMs >= GRACE_MS, `stop returned after ${tookMs} ms, before the grace period of ${GRACE_MS} ms`);
  // rnx's own start-up and TLS handshake are in this time (over a second on a loaded 2-core machine).
  assert.ok(tookMs < GRACE_MS + 6000, `stop took ${tookMs} ms, far beyond the grace period`);
  const st = await getStatus(job.id);
  assert.equal(st.status, "STOPPED");
  assert.equal(st.signal, "SIGKILL");
  assert.equal(st.exitCode, 137);
  assert.notEqual(st.endTime, "");
  assert.match(st.reason, /stopped by/);
  assertNothingLeft(job.id, pids);
});

test("polite stop: a job that handles SIGTERM prints bye, exits 0, and the stop returns before the grace period", T, async () => {
  const job = await run("sh", "-c", `trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done`);
  const pids = await waitPids(job.id, 2);
  // Timed over gRPC: rnx's own start-up would blur the comparison with the grace period.
  const t0 = Date.now();
  const res = await unary<StopJobRes>((cb) => c.stopJob({ id: job.id }, cb));
  const tookMs = Date.now() - t0;
  assert.ok(tookMs < GRACE_MS / 2, `a polite stop took ${tookMs} ms (grace ${GRACE_MS} ms)`);
  assert.equal(res.status, "STOPPED");
  assert.equal(res.exitCode, 0);
  assert.notEqual(res.endTime, "");
  const st = await getStatus(job.id);
  assert.equal(st.status, "STOPPED");
  assert.equal(st.exitCode, 0);
  assert.equal(st.signal, "");
  const out = await output(job.id);
  assert.equal(out.stdout, "ready\nbye\n");
  assertNothingLeft(job.id, pids);
});

test("a daemon SIGTERM leaves a running job running; after a restart it is followed to its end and COMPLETED", T, async () => {
  const ticks = Array.from({ length: 20 }, (_, i) => i + 1);
  const job = await run("sh", "-c", `for i in ${ticks.join(" ")}; do echo tick $i; sleep 0.5; done`);
  const pids = await waitPids(job.id, 2);
  c.close();
  assert.equal(await d.stopProcess("SIGTERM"), 0);
  assert.ok(existsSync(`/proc/${pids[0]}`), "the job's PID 1 survives the daemon");
  await sleep(700);
  assert.ok(existsSync(`/proc/${pids[0]}`), "the job keeps running while the daemon is down");
  d.log = ""; // launch() waits for "joblet serving" in d.log, which still holds the first start's line
  await d.launch();
  c = d.client();
  assert.equal((await getStatus(job.id)).status, "RUNNING", "reattached after the restart");
  const out = await output(job.id);
  assert.equal(out.stdout, ticks.map((i) => `tick ${i}\n`).join(""));
  const st = await waitFinal(job.id);
  assert.equal(st.status, "COMPLETED");
  assert.equal(st.exitCode, 0);
  assertNothingLeft(job.id, pids);
});

test("rnx log following a job across a daemon SIGTERM and restart reconnects and gets all output once", T, async () => {
  const ticks = Array.from({ length: 16 }, (_, i) => i + 1);
  const job = await run("sh", "-c", `for i in ${ticks.join(" ")}; do echo tick $i; sleep 0.5; done; exit 4`);
  const follower = followWithRnx(job.id);
  await follower.firstOutput;
  c.close();
  assert.equal(await d.stopProcess("SIGTERM"), 0);
  await sleep(500);
  d.log = "";
  await d.launch();
  c = d.client();
  const f = await follower.done;
  assert.equal(f.code, 0, f.stderr);
  assert.equal(f.stdout, ticks.map((i) => `tick ${i}\n`).join(""), "all output, once, in order");
  assert.match(f.stderr, /reconnecting/);
  const st = await waitFinal(job.id);
  assert.equal(st.status, "FAILED");
  assert.equal(st.exitCode, 4);
});

test("a job that ends while the daemon is down (SIGKILL) gets its true exit code and full output after a restart", T, async () => {
  const job = await run("sh", "-c", "echo started; sleep 2; echo finishing; echo oops >&2; exit 5");
  const pids = await waitPids(job.id, 2);
  const follower = followWithRnx(job.id);
  await follower.firstOutput;
  c.close();
  await d.stopProcess("SIGKILL");
  await sleep(3000);
  assert.ok(!existsSync(`/proc/${pids[0]}`), "the job ended while the daemon was down");
  d.log = "";
  await d.launch();
  c = d.client();
  const st = await waitFinal(job.id, 10_000);
  assert.equal(st.status, "FAILED");
  assert.equal(st.exitCode, 5);
  assert.notEqual(st.endTime, "");
  const out = await output(job.id);
  assert.equal(out.stdout, "started\nfinishing\n");
  assert.equal(out.stderr, "oops\n");
  const f = await follower.done;
  assert.equal(f.code, 0, f.stderr);
  assert.equal(f.stdout, out.stdout, "the follower from before the daemon was killed got all output once");
  assert.match(f.stderr, /reconnecting/);
  assert.match(f.stderr, /oops\n/);
  assertNothingLeft(job.id, pids);
});
