// Limits on a job's life and on what the daemon keeps, against the real daemon: per-job timeouts (from the
// request or joblet.jobTimeout, surviving a daemon crash), DeleteJob (finished jobs only, admin only, record
// and files gone), and retention of finished jobs by count and by age (running jobs never pruned).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status, type ServiceError } from "@grpc/grpc-js";
import { RunJobReq, type DataChunk, type Job, type JobletServiceClient } from "../../src/shared/proto/joblet.js";
import { TestDaemon } from "./harness.js";

const FINAL = ["COMPLETED", "FAILED", "STOPPED"];
/** A job that ends at once on SIGTERM (its shell has a handler), so a timeout's stop is prompt. */
const TERM_ENDS = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"] as const;
/** Slack for the daemon and the machine on top of a timing under test, milliseconds. */
const SLACK_MS = 2500;

/** Grace period of the timeout daemon: `sleep` as PID 1 ignores SIGTERM, so its stop ends with SIGKILL. */
const GRACE_MS = 500;
let timeouts: TestDaemon; // joblet.jobTimeout 1s; timeouts and DeleteJob
let byCount: TestDaemon; // retention.maxJobs 3
let byAge: TestDaemon; // retention.maxAge 2s
before(async () => {
  [timeouts, byCount, byAge] = await Promise.all([
    TestDaemon.start({ joblet: { jobTimeout: "1s", stopGracePeriod: `${GRACE_MS}ms` } }),
    TestDaemon.start({ joblet: { retention: { maxJobs: 3 }, stopGracePeriod: "500ms" } }),
    TestDaemon.start({ joblet: { retention: { maxAge: "2s", maxJobs: 1000 }, stopGracePeriod: "500ms" } }),
  ]);
});
after(async () => {
  await Promise.all([timeouts, byCount, byAge].map((d) => d?.destroy()));
});

/** Runs a unary call on a fresh client (a channel that saw the daemon die backs off; a new one does not). */
async function call<Res>(d: TestDaemon, fn: (c: JobletServiceClient, cb: (err: ServiceError | null, res?: Res) => void) => unknown, node = "default"): Promise<Res> {
  const c = d.client(node);
  try {
    return await new Promise<Res>((resolve, reject) => {
      fn(c, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  } finally {
    c.close();
  }
}

const runJob = (d: TestDaemon, command: readonly string[], req: Partial<RunJobReq> = {}) =>
  call<Job>(d, (c, cb) => c.runJob(RunJobReq.fromPartial({ command: command[0], args: command.slice(1), ...req }), cb));
const getStatus = (d: TestDaemon, id: string) => call<Job>(d, (c, cb) => c.getJobStatus({ id }, cb));
const stopJob = (d: TestDaemon, id: string) => call<{ status: string }>(d, (c, cb) => c.stopJob({ id }, cb));
const deleteJob = (d: TestDaemon, id: string, node = "default") => call<{ id: string }>(d, (c, cb) => c.deleteJob({ id }, cb), node);
const listJobs = async (d: TestDaemon) => (await call<{ jobs: Job[] }>(d, (c, cb) => c.listJobs({}, cb))).jobs;
const listIds = async (d: TestDaemon) => (await listJobs(d)).map((j) => j.id);

/** A job's whole output as text (a finished job's stream must end, or fail, within 10 s). */
function output(d: TestDaemon, id: string): Promise<string> {
  return call<string>(d, (c, cb) => {
    const chunks: Buffer[] = [];
    const s = c.getJobLogs({ id, fromOffset: 0 }, { deadline: Date.now() + 10_000 });
    s.on("data", (ch: DataChunk) => chunks.push(Buffer.from(ch.payload)));
    s.on("error", (err: ServiceError) => cb(err));
    s.on("end", () => cb(null, Buffer.concat(chunks).toString("utf8")));
  });
}

async function waitFinal(d: TestDaemon, id: string, timeoutMs = 30_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = await getStatus(d, id);
    if (FINAL.includes(j.status)) return j;
    if (Date.now() > deadline) assert.fail(`job ${id} still ${j.status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Asserts that `p` fails with gRPC `code` and a message matching `re`. */
async function rejects(p: Promise<unknown>, code: status, re: RegExp): Promise<void> {
  const err = await p.then(
    (v) => assert.fail(`expected ${status[code]}, got success: ${JSON.stringify(v)}`),
    (e: unknown) => e as ServiceError,
  );
  assert.equal(err.code, code, `expected ${status[code]}, got ${status[err.code]}: ${err.details}`);
  assert.match(err.details, re);
}

/** The files the daemon keeps for a job: its log and its work dir. */
function files(d: TestDaemon, id: string): { log: string; jobDir: string } {
  return { log: path.join(d.dir, "state", "logs", `${id}.log`), jobDir: path.join(d.dir, "state", "jobs", id) };
}

function assertFilesKept(d: TestDaemon, id: string): void {
  const f = files(d, id);
  assert.ok(existsSync(f.log), `job ${id}'s log file is kept`);
  assert.ok(existsSync(f.jobDir), `job ${id}'s work dir is kept`);
}

/**
 * Waits until job `id`'s log and work dir are gone, at most `waitMs` (pruning removes files in the
 * background; DeleteJob answers only once they are gone, so it is checked with 0).
 */
async function assertFilesGone(d: TestDaemon, id: string, waitMs = 5000): Promise<void> {
  const f = files(d, id);
  const deadline = Date.now() + waitMs;
  while (existsSync(f.log) || existsSync(f.jobDir)) {
    if (Date.now() >= deadline) {
      assert.equal(existsSync(f.log), false, `job ${id}'s log file is removed`);
      assert.equal(existsSync(f.jobDir), false, `job ${id}'s work dir is removed`);
    }
    await sleep(50);
  }
}

/** Whether job `id`'s container exists and conmon has not recorded an exit (its PID 1 still runs). */
function stillRunningOnHost(d: TestDaemon, id: string): boolean {
  return d.runtimeContainers().includes(id) && !existsSync(path.join(d.dir, "state", "exits", id));
}

/** Milliseconds the job ran, from its record. */
const ranMs = (j: Job) => Date.parse(j.endTime) - Date.parse(j.startTime);

/** Relaunches the daemon and waits until this process (not an earlier one) serves. */
async function relaunch(d: TestDaemon): Promise<void> {
  const from = d.log.length;
  await d.launch();
  // launch() looks for "joblet serving" in the whole log kept across restarts; wait for the new process's line.
  const deadline = Date.now() + 30_000;
  while (!d.log.slice(from).includes('"joblet serving"')) {
    if (Date.now() > deadline) assert.fail(`the relaunched daemon did not serve:\n${d.log.slice(from)}`);
    await sleep(20);
  }
}

test("timeout: a job past RunJobReq.timeoutMs is stopped like a user stop; STOPPED, timedOut, reason says it timed out", async () => {
  const j = await runJob(timeouts, ["sleep", "30"], { timeoutMs: 1500 });
  assert.equal(j.timeoutMs, 1500, "the request's timeout is recorded");
  const done = await waitFinal(timeouts, j.id);
  assert.equal(done.status, "STOPPED");
  assert.equal(done.timedOut, true);
  assert.match(done.reason, /timed out after (1500ms|1\.5s)/);
  // `sleep` as PID 1 ignores SIGTERM: it ends by SIGKILL after the grace period, like a user stop would.
  assert.equal(done.signal, "SIGKILL");
  const ms = ranMs(done);
  assert.ok(ms >= 1500 && ms <= 1500 + GRACE_MS + SLACK_MS, `ran ${ms} ms: 1500 ms, then the ${GRACE_MS} ms grace period`);
});

test("timeout: joblet.jobTimeout applies when the request gives 0; a job that ends in time is COMPLETED, not timed out", async () => {
  const j = await runJob(timeouts, TERM_ENDS);
  assert.equal(j.timeoutMs, 1000, "the config's 1s is recorded on the job");
  const done = await waitFinal(timeouts, j.id);
  assert.equal(done.status, "STOPPED");
  assert.equal(done.timedOut, true);
  assert.match(done.reason, /timed out after (1000ms|1s)/);
  const ms = ranMs(done);
  assert.ok(ms >= 1000 && ms <= 1000 + SLACK_MS, `ran ${ms} ms for a 1 s timeout`);

  const quick = await runJob(timeouts, ["true"], { timeoutMs: 60_000 });
  const q = await waitFinal(timeouts, quick.id);
  assert.equal(q.status, "COMPLETED");
  assert.equal(q.timedOut, false);
  assert.equal(q.reason, "");
});

test("timeout survives a daemon SIGKILL: one that fell due while it was down fires at restart, one due later fires on time", async () => {
  const d = timeouts;
  const overdue = await runJob(d, TERM_ENDS, { timeoutMs: 2000 });
  const later = await runJob(d, TERM_ENDS, { timeoutMs: 10_000 });
  await d.stopProcess("SIGKILL");
  // Stay down until the first job is past its time.
  await sleep(Math.max(0, Date.parse(overdue.startTime) + 2500 - Date.now()));
  assert.ok(stillRunningOnHost(d, overdue.id), "the job runs on past its time while the daemon is down");
  await relaunch(d);
  const servedAt = Date.now();
  assert.ok(servedAt < Date.parse(later.startTime) + 10_000 - 1000, "the daemon serves again before the second job's deadline (else the machine is too slow for this test)");

  const o = await waitFinal(d, overdue.id);
  assert.equal(o.status, "STOPPED");
  assert.equal(o.timedOut, true);
  assert.match(o.reason, /timed out after (2000ms|2s)/);
  assert.ok(Date.parse(o.endTime) <= servedAt + SLACK_MS, `the overdue job is stopped right after the restart (ended ${Date.parse(o.endTime) - servedAt} ms after it served)`);

  const l = await waitFinal(d, later.id, 20_000);
  assert.equal(l.status, "STOPPED");
  assert.equal(l.timedOut, true);
  const ms = ranMs(l);
  assert.ok(ms >= 10_000 && ms <= 10_000 + SLACK_MS, `the later job ran ${ms} ms for its 10 s timeout, across the crash`);
});

test("DeleteJob: a finished job's record, log and work dir are gone; running is FAILED_PRECONDITION; unknown NOT_FOUND; viewer PERMISSION_DENIED", async () => {
  const d = timeouts;
  const fin = await runJob(d, ["sh", "-c", "echo kept > /work/file; echo out"]);
  assert.equal((await waitFinal(d, fin.id)).status, "COMPLETED");
  assert.equal(await output(d, fin.id), "out\n");
  assertFilesKept(d, fin.id);

  const running = await runJob(d, TERM_ENDS, { timeoutMs: 60_000 });
  await rejects(deleteJob(d, running.id), status.FAILED_PRECONDITION, new RegExp(`job ${running.id} is RUNNING`));
  assert.ok((await listIds(d)).includes(running.id), "the running job is still there");
  assertFilesKept(d, running.id);

  await rejects(deleteJob(d, fin.id, "viewer"), status.PERMISSION_DENIED, /./);
  assert.ok((await listIds(d)).includes(fin.id), "a refused delete leaves the job");
  await rejects(deleteJob(d, "ffffffff-ffff-4fff-bfff-ffffffffffff"), status.NOT_FOUND, /ffffffff-ffff-4fff-bfff-ffffffffffff/);

  assert.deepEqual(await deleteJob(d, fin.id), { id: fin.id });
  assert.ok(!(await listIds(d)).includes(fin.id), "gone from ListJobs");
  await rejects(getStatus(d, fin.id), status.NOT_FOUND, new RegExp(fin.id));
  await assertFilesGone(d, fin.id, 0);
  await rejects(deleteJob(d, fin.id), status.NOT_FOUND, new RegExp(fin.id));

  await stopJob(d, running.id);
  assert.deepEqual(await deleteJob(d, running.id.slice(0, 8)), { id: running.id }, "a unique prefix works and the full ID comes back");
  await assertFilesGone(d, running.id, 0);
});

test("GetJobLogs of a deleted job (or of any unknown ID) fails with NOT_FOUND instead of never ending", async () => {
  const d = timeouts;
  const j = await runJob(d, ["echo", "bye"]);
  await waitFinal(d, j.id);
  assert.equal(await output(d, j.id), "bye\n");
  await deleteJob(d, j.id);
  await rejects(output(d, j.id), status.NOT_FOUND, new RegExp(`no job with ID ${j.id}`));
  await rejects(output(d, "ffffffff-ffff-4fff-bfff-ffffffffffff"), status.NOT_FOUND, /no job with ID ffffffff/);
});

test("retention by count (maxJobs 3): after 6 jobs only the newest 3 finished remain, with their files; a running job is never pruned", async () => {
  const d = byCount;
  const long = await runJob(d, TERM_ENDS);
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) {
    const j = await runJob(d, ["sh", "-c", `echo job ${i} > /work/file; echo job ${i}`]);
    assert.equal((await waitFinal(d, j.id)).status, "COMPLETED");
    ids.push(j.id);
  }
  const listed = await listIds(d);
  assert.deepEqual(listed.sort(), [long.id, ...ids.slice(3)].sort(), "the running job and the newest 3 finished");
  assert.equal((await getStatus(d, long.id)).status, "RUNNING");
  for (const id of ids.slice(0, 3)) {
    await rejects(getStatus(d, id), status.NOT_FOUND, new RegExp(id));
    await assertFilesGone(d, id);
  }
  for (const [i, id] of ids.slice(3).entries()) {
    assert.equal(await output(d, id), `job ${i + 3}\n`);
    assertFilesKept(d, id);
  }
  assertFilesKept(d, long.id);
});

test("retention by count: stopping a long job that started before the kept ones answers STOPPED and keeps it (the newest to finish)", async () => {
  const d = byCount;
  const long = await runJob(d, TERM_ENDS);
  for (let i = 0; i < 3; i++) await waitFinal(d, (await runJob(d, ["true"])).id);
  const stopped = await stopJob(d, long.id);
  assert.equal(stopped.status, "STOPPED", "StopJob reports the job it stopped");
  const st = await getStatus(d, long.id);
  assert.equal(st.status, "STOPPED", "the job just stopped can still be looked at");
  assertFilesKept(d, long.id);
  const finished = (await listJobs(d)).filter((j) => FINAL.includes(j.status));
  assert.equal(finished.length, 3, "still 3 finished jobs");
});

test("retention by age (maxAge 2s): a finished job is pruned, with its files, once it is older and another job ends; a running job is not", async () => {
  const d = byAge;
  const long = await runJob(d, TERM_ENDS);
  const old = await runJob(d, ["sh", "-c", "echo old > /work/file; echo old"]);
  const oldDone = await waitFinal(d, old.id);
  assertFilesKept(d, old.id);
  const young = await runJob(d, ["true"]);
  await waitFinal(d, young.id);
  assert.ok((await listIds(d)).includes(old.id), "a job younger than 2 s stays");

  await sleep(Math.max(0, Date.parse(oldDone.endTime) + 2300 - Date.now()));
  const trigger = await runJob(d, ["true"]);
  await waitFinal(d, trigger.id);
  const listed = await listIds(d);
  assert.ok(!listed.includes(old.id), "the job that ended more than 2 s ago is pruned when another ends");
  await assertFilesGone(d, old.id);
  assert.ok(listed.includes(trigger.id), "the job that just ended stays");
  assert.ok(listed.includes(long.id), "the running job (started more than 2 s ago) stays");
  assert.equal((await getStatus(d, long.id)).status, "RUNNING");
  assertFilesKept(d, long.id);
});

test("retention by age: jobs that aged past maxAge while no job ended are pruned when the daemon starts", async () => {
  const d = byAge;
  const j = await runJob(d, ["sh", "-c", "echo aged"]);
  const done = await waitFinal(d, j.id);
  const running = await runJob(d, TERM_ENDS);
  await sleep(Math.max(0, Date.parse(done.endTime) + 2300 - Date.now()));
  assert.ok((await listIds(d)).includes(j.id), "nothing pruned it yet (no job ended since)");
  await d.stopProcess("SIGTERM");
  await relaunch(d);
  const listed = await listIds(d);
  assert.ok(!listed.includes(j.id), "pruned at start");
  await assertFilesGone(d, j.id);
  assert.ok(listed.includes(running.id), "the running job survives the restart and the pruning");
  assert.equal((await stopJob(d, running.id)).status, "STOPPED");
});
