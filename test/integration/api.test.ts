// The gRPC API against a real daemon: what RunJob/GetJobStatus/ListJobs return, the exact status code and
// message of every refusal, ID prefixes, start failures, ID uniqueness across a restart, and that the daemon
// keeps serving after bad requests.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status, type ServiceError } from "@grpc/grpc-js";
import { RunJobReq, Stream, type DataChunk, type GetJobStatusRes, type Jobs, type JobletServiceClient, type RunJobRes, type StopJobRes } from "../../src/shared/proto/joblet.js";
import { TestDaemon, unary } from "./harness.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** RFC 3339 date-time with a zone (Z or ±hh:mm), optional fraction. */
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

let d: TestDaemon;
let c: JobletServiceClient;
before(async () => {
  d = await TestDaemon.start();
  c = d.client();
});
after(async () => {
  c?.close();
  await d?.destroy();
});

const run = (req: Partial<RunJobReq>, client = c) =>
  unary<RunJobRes>((cb) => client.runJob(RunJobReq.fromPartial(req), cb));
const getStatus = (id: string, client = c) => unary<GetJobStatusRes>((cb) => client.getJobStatus({ id }, cb));
const stop = (id: string, client = c) => unary<StopJobRes>((cb) => client.stopJob({ id }, cb));
const list = (client = c) => unary<Jobs>((cb) => client.listJobs({}, cb));

/** All chunks of GetJobLogs, or the stream's error; fails if the stream has no status within `timeoutMs`. */
function logs(id: string, fromOffset = 0, client = c, timeoutMs = 10_000): Promise<DataChunk[]> {
  return new Promise((resolve, reject) => {
    const chunks: DataChunk[] = [];
    const s = client.getJobLogs({ id, fromOffset });
    const timer = setTimeout(() => {
      s.cancel();
      reject(new Error(`GetJobLogs(${JSON.stringify(id)}) got no status within ${timeoutMs} ms (${chunks.length} chunks so far)`));
    }, timeoutMs);
    s.on("data", (ch: DataChunk) => chunks.push(ch));
    s.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on("end", () => {
      clearTimeout(timer);
      resolve(chunks);
    });
  });
}

const text = (chunks: DataChunk[], stream?: Stream) =>
  Buffer.concat(chunks.filter((ch) => stream === undefined || ch.stream === stream).map((ch) => ch.payload)).toString("utf8");

const T = { timeout: 60_000 };

/** Asserts that `p` fails with gRPC `code` and a message matching every pattern; returns the error. */
async function rejects(p: Promise<unknown>, code: status, ...patterns: RegExp[]): Promise<ServiceError> {
  const err = await p.then(
    (v) => assert.fail(`expected ${status[code]}, got success: ${JSON.stringify(v)}`),
    (e: unknown) => e as ServiceError,
  );
  assert.ok(typeof err.code === "number", `expected ${status[code]}, got ${String(err)}`);
  assert.equal(err.code, code, `expected ${status[code]}, got ${status[err.code]}: ${err.details}`);
  for (const re of patterns) assert.match(err.details, re);
  return err;
}

async function waitFinal(id: string, timeoutMs = 15_000): Promise<GetJobStatusRes> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = await getStatus(id);
    if (["COMPLETED", "FAILED", "STOPPED"].includes(j.status)) return j;
    if (Date.now() > deadline) assert.fail(`job ${id} still ${j.status} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

function rfc3339(field: string, value: string): number {
  assert.match(value, RFC3339_RE, `${field} ${JSON.stringify(value)} is not RFC 3339`);
  const ms = Date.parse(value);
  assert.ok(Number.isFinite(ms), `${field} ${value} does not parse`);
  return ms;
}

test("RunJob returns a UUID, RUNNING, the limits as requested; status and list show the same; RFC 3339 times", T, async () => {
  const before = Date.now();
  const res = await run({ command: "sleep", args: ["30"], maxCPU: 50, maxMemory: 64, maxIOBPS: 1_000_000, cpuCores: "0" });
  try {
    assert.match(res.id, UUID_RE);
    assert.ok(res.id.length >= 8);
    assert.equal(res.status, "RUNNING");
    assert.equal(res.command, "sleep");
    assert.deepEqual(res.args, ["30"]);
    assert.equal(res.maxCPU, 50);
    assert.equal(res.maxMemory, 64);
    assert.equal(res.maxIOBPS, 1_000_000);
    assert.equal(res.cpuCores, "0", "cpuCores is echoed back (the reference leaves it empty)");
    assert.equal(res.endTime, "", "endTime is empty while running");
    const started = rfc3339("startTime", res.startTime);
    assert.ok(started >= before - 1000 && started <= Date.now() + 1000, `startTime ${res.startTime} is now`);
    rfc3339("createTime", res.createTime);

    const st = await getStatus(res.id);
    assert.equal(st.id, res.id);
    assert.equal(st.status, "RUNNING");
    assert.equal(st.endTime, "");
    assert.equal(st.startTime, res.startTime);
    assert.equal(st.cpuCores, "0");
    assert.deepEqual([st.maxCPU, st.maxMemory, st.maxIOBPS], [50, 64, 1_000_000]);

    const listed = (await list()).jobs.find((j) => j.id === res.id);
    assert.ok(listed, "ListJobs shows the job");
    assert.equal(listed.status, "RUNNING");
    assert.equal(listed.command, "sleep");
    assert.deepEqual(listed.args, ["30"]);
    assert.equal(listed.cpuCores, "0");
    assert.equal(listed.endTime, "");
  } finally {
    const s = await stop(res.id);
    assert.equal(s.status, "STOPPED");
    rfc3339("endTime", s.endTime);
  }
  const done = await getStatus(res.id);
  assert.ok(rfc3339("endTime", done.endTime) >= rfc3339("startTime", done.startTime));
});

const UNKNOWN_ID = "ffffffff-ffff-4fff-bfff-ffffffffffff";

test("unknown ID: NOT_FOUND from GetJobStatus and StopJob", T, async () => {
  await rejects(getStatus(UNKNOWN_ID), status.NOT_FOUND, /ffffffff-ffff-4fff-bfff-ffffffffffff/);
  await rejects(stop(UNKNOWN_ID), status.NOT_FOUND, /ffffffff/);
});

test("bad RunJob input: INVALID_ARGUMENT whose message names the field, the expectation and the value", T, async () => {
  await rejects(run({ command: "" }), status.INVALID_ARGUMENT, /^command: expected /);
  await rejects(run({ command: "true", maxCPU: -1 }), status.INVALID_ARGUMENT, /^maxCPU: expected .*non-negative.*got -1/);
  await rejects(run({ command: "true", maxMemory: -5 }), status.INVALID_ARGUMENT, /^maxMemory: expected .*got -5/);
  await rejects(run({ command: "true", maxIOBPS: -100 }), status.INVALID_ARGUMENT, /^maxIOBPS: expected .*got -100/);
  await rejects(run({ command: "true", cpuCores: "banana" }), status.INVALID_ARGUMENT, /cpuCores/, /banana/);
  await rejects(run({ command: "true", cpuCores: "0-999" }), status.INVALID_ARGUMENT, /cpuCores/, /0-999/);
  await rejects(run({ command: "echo", args: ["ok", "a\0b"] }), status.INVALID_ARGUMENT, /^args\[1\]: expected text without NUL/);
  await rejects(run({ command: "ec\0ho" }), status.INVALID_ARGUMENT, /^command: /);
  // None of the refusals left a record behind.
  const ids = (await list()).jobs.filter((j) => j.command === "" || j.command === "ec\0ho" || j.args.includes("a\0b"));
  assert.deepEqual(ids, []);
});

test("a non-hex ID is INVALID_ARGUMENT naming the field id, for status and stop", T, async () => {
  for (const p of [getStatus("not-a-job!"), stop("XYZ"), getStatus("../etc")]) {
    await rejects(p, status.INVALID_ARGUMENT, /^id: expected .*hex/);
  }
  await rejects(getStatus(""), status.INVALID_ARGUMENT, /^id: /);
});

test("a unique prefix works for status, stop and logs (gRPC with fewer than 8 chars, rnx with 8)", T, async () => {
  const a = await run({ command: "sh", args: ["-c", "echo prefix-ok; sleep 30"] });
  // Find the shortest prefix that is unique among all jobs so far.
  const others = (await list()).jobs.map((j) => j.id).filter((id) => id !== a.id);
  let n = 1;
  while (others.some((id) => id.startsWith(a.id.slice(0, n)))) n++;
  const short = a.id.slice(0, n);
  assert.ok(short.length < 8, `prefix ${short} should be short with few jobs`);

  assert.equal((await getStatus(short)).id, a.id);
  const st = await d.rnx(["status", a.id.slice(0, 8)]);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, new RegExp(a.id));
  assert.match(st.stdout, /RUNNING/);

  const stopped = await d.rnx(["stop", a.id.slice(0, 8)]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal((await getStatus(a.id)).status, "STOPPED");

  // stdout only: sh reports its child's death by SIGTERM ("Terminated") on stderr.
  assert.equal(text(await logs(short), Stream.STDOUT), "prefix-ok\n");
  const lg = await d.rnx(["log", a.id.slice(0, 8)]);
  assert.equal(lg.code, 0, lg.stderr);
  assert.equal(lg.stdout, "prefix-ok\n");

  // Stop via gRPC with the short prefix: the job has ended, so the prefix resolves and the stop is refused.
  await rejects(stop(short), status.FAILED_PRECONDITION, new RegExp(a.id));
});

/** An ID prefix shared by several jobs, found by the next test. */
let ambiguous: { prefix: string; matching: string[] } | undefined;

test("an ambiguous prefix is INVALID_ARGUMENT listing the matching jobs", T, async () => {
  const byFirst = new Map<string, string[]>();
  for (const j of (await list()).jobs) byFirst.set(j.id[0]!, [...(byFirst.get(j.id[0]!) ?? []), j.id]);
  // 17 jobs always contain two sharing a first hex digit; stop as soon as two do.
  for (let i = 0; i < 17 && ![...byFirst.values()].some((ids) => ids.length >= 2); i++) {
    const j = await run({ command: "true" });
    byFirst.set(j.id[0]!, [...(byFirst.get(j.id[0]!) ?? []), j.id]);
  }
  const [first, matching] = [...byFirst.entries()].find(([, ids]) => ids.length >= 2)!;
  for (const p of [getStatus(first), stop(first)]) {
    const err = await rejects(p, status.INVALID_ARGUMENT, /^id: /, /several jobs/);
    for (const id of matching.slice(0, 10)) assert.ok(err.details.includes(id), `${err.details} lists ${id}`);
  }
  ambiguous = { prefix: first, matching };
});

test("GetJobLogs refusals reach the client as a status: NOT_FOUND, INVALID_ARGUMENT (non-hex, ambiguous)", T, async () => {
  assert.ok(ambiguous, "needs the ambiguous prefix of the previous test");
  await rejects(logs(UNKNOWN_ID), status.NOT_FOUND, /ffffffff/);
  await rejects(logs("../etc"), status.INVALID_ARGUMENT, /^id: expected .*hex/);
  const err = await rejects(logs(ambiguous.prefix), status.INVALID_ARGUMENT, /^id: /, /several jobs/);
  for (const id of ambiguous.matching.slice(0, 10)) assert.ok(err.details.includes(id), `${err.details} lists ${id}`);
  const r = await d.rnx(["log", UNKNOWN_ID], { timeoutMs: 20_000 });
  assert.equal(r.code, 5, `rnx log of an unknown job exits 5 (not found): ${r.stderr}`);
});

test("stopping a finished job is FAILED_PRECONDITION with a message", T, async () => {
  const j = await run({ command: "true" });
  const done = await waitFinal(j.id);
  assert.equal(done.status, "COMPLETED");
  await rejects(stop(j.id), status.FAILED_PRECONDITION, new RegExp(`job ${j.id} has already ended \\(COMPLETED\\)`));
});

test("a command that does not exist: INVALID_ARGUMENT naming command; recorded as FAILED with a reason; nothing left", T, async () => {
  await rejects(run({ command: "no-such-program-xyz", args: ["a"] }), status.INVALID_ARGUMENT, /^command: expected /, /no-such-program-xyz/);
  const rec = (await list()).jobs.filter((j) => j.command === "no-such-program-xyz");
  assert.equal(rec.length, 1, "the refused start is accounted for in the job list");
  const job = rec[0]!;
  assert.equal(job.status, "FAILED");
  assert.notEqual(job.reason, "", "a FAILED start says why");
  assert.match(job.reason, /no-such-program-xyz|not found|no such file/i);
  rfc3339("endTime", job.endTime);
  assert.deepEqual(await getStatus(job.id).then((s) => s.status), "FAILED");
  assert.deepEqual(await logs(job.id), [], "a job that never started has empty output");
  assert.ok(!d.runtimeContainers().includes(job.id), "no container left");
  assert.ok(!d.leftoverCgroups().some((p) => p.endsWith(job.id)), `no cgroup left: ${d.leftoverCgroups().join(", ")}`);
  assert.ok(!existsSync(path.join(d.bundlesDir(), job.id)), "no bundle left");
  await rejects(stop(job.id), status.FAILED_PRECONDITION, /already ended \(FAILED\)/);
});

test("the daemon keeps serving after bad requests", T, async () => {
  await Promise.allSettled([run({ command: "" }), run({ command: "x", maxCPU: -1 }), getStatus("zz"), logs("??"), stop("0000")]);
  const r = await d.rnx(["run", "echo", "still-serving"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "still-serving\n");
});

test("job IDs are never reused after a restart; old jobs keep their status and logs", T, async () => {
  const before = new Map<string, { status: string; out: string }>();
  for (let i = 0; i < 3; i++) {
    const j = await run({ command: "sh", args: ["-c", `echo before-${i}; exit ${i}`] });
    const done = await waitFinal(j.id);
    before.set(j.id, { status: done.status, out: `before-${i}\n` });
  }
  const allBefore = (await list()).jobs;
  c.close();
  assert.equal(await d.stopProcess(), 0, "the daemon exits 0 on SIGTERM");
  // launch() waits for "joblet serving" in d.log, which still holds the first start's line.
  d.log = "";
  await d.launch();
  c = d.client();

  const after: string[] = [];
  for (let i = 0; i < 3; i++) after.push((await run({ command: "echo", args: [`after-${i}`] })).id);
  const listed = (await list()).jobs;
  const ids = listed.map((j) => j.id);
  assert.equal(new Set(ids).size, ids.length, "all IDs distinct");
  for (const id of after) assert.ok(!allBefore.some((j) => j.id === id), `${id} is new`);
  for (const old of allBefore) {
    const now = listed.find((j) => j.id === old.id);
    assert.ok(now, `old job ${old.id} still listed`);
    if (["COMPLETED", "FAILED", "STOPPED"].includes(old.status)) assert.equal(now.status, old.status);
  }
  for (const [id, want] of before) {
    const st = await getStatus(id);
    assert.equal(st.status, want.status);
    assert.equal(text(await logs(id)), want.out);
  }
  assert.deepEqual([...before.values()].map((b) => b.status), ["COMPLETED", "FAILED", "FAILED"]);
});
