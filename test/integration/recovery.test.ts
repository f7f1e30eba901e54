// Recovery, in the spirit of Nomad's e2e/clientstate: four jobs print numbered lines while the daemon is
// SIGKILLed four times (mid-output, while a job ends, during its own recovery, right after it serves) and
// relaunched on the same state dir. Afterwards every byte of every job's output is recorded once and in
// order on its own stream, exit codes are the jobs' own (one ended while the daemon was down), no job ran
// twice, IDs and start times are unchanged, no container, cgroup, conmon, bundle or exit file is left, and
// resuming followers attached before the first crash got exactly the recorded output. Also: SIGTERM leaves
// jobs running and reattachable, and a start interrupted by SIGKILL (held in `runc create` by a wrapper
// runtime) is cleaned up, FAILED with a reason, and never runs.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { RunJobReq, Stream, type DataChunk, type Job, type JobletServiceClient } from "../../src/shared/proto/joblet.js";
import { ROOT, TestDaemon, unary } from "./harness.js";

const RNX = path.join(ROOT, "bin", "rnx");
const FINAL = ["COMPLETED", "FAILED", "STOPPED"];

const daemons: TestDaemon[] = [];
const tempDirs: string[] = [];
after(async () => {
  for (const d of daemons) await d.destroy();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

async function startDaemon(patch: Record<string, unknown> = {}): Promise<TestDaemon> {
  const d = await TestDaemon.start(patch);
  daemons.push(d);
  return d;
}

/** Runs a unary call on a fresh client (a channel that saw the daemon die backs off; a new one does not). */
async function call<Res>(d: TestDaemon, fn: (c: JobletServiceClient, cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  const c = d.client();
  try {
    return await unary<Res>((cb) => fn(c, cb));
  } finally {
    c.close();
  }
}

const runJob = (d: TestDaemon, req: Partial<RunJobReq>) => call<Job>(d, (c, cb) => c.runJob(RunJobReq.fromPartial(req), cb));
const getStatus = (d: TestDaemon, id: string) => call<Job>(d, (c, cb) => c.getJobStatus({ id }, cb));
const listJobs = (d: TestDaemon) => call<{ jobs: Job[] }>(d, (c, cb) => c.listJobs({}, cb)).then((r) => r.jobs);

async function waitFinal(d: TestDaemon, id: string, timeoutMs = 30_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = await getStatus(d, id);
    if (FINAL.includes(j.status)) return j;
    if (Date.now() > deadline) assert.fail(`job ${id} still ${j.status} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** A job's whole output as recorded, per stream, checking that chunk offsets are contiguous from 0. */
async function fullLog(d: TestDaemon, id: string): Promise<{ stdout: string; stderr: string }> {
  const chunks = await call<DataChunk[]>(d, (c, cb) => {
    const got: DataChunk[] = [];
    const s = c.getJobLogs({ id, fromOffset: 0 });
    s.on("data", (ch: DataChunk) => got.push(ch));
    s.on("error", (err: ServiceError) => cb(err));
    s.on("end", () => cb(null, got));
  });
  let next = 0;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  for (const ch of chunks) {
    assert.equal(ch.offset, next, `job ${id}: chunk offset ${ch.offset}, expected ${next} (gap or overlap)`);
    next += ch.payload.length;
    assert.ok(ch.stream === Stream.STDOUT || ch.stream === Stream.STDERR, `job ${id}: chunk stream ${ch.stream}`);
    (ch.stream === Stream.STDERR ? err : out).push(Buffer.from(ch.payload));
  }
  return { stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
}

/** What a resuming follower got. */
interface Followed {
  stdout: string;
  stderr: string;
  /** How many times the stream broke with UNAVAILABLE and was resumed. */
  reconnects: number;
}

/**
 * Follows a job over gRPC the way a resuming client must: on UNAVAILABLE it reconnects (a new channel) and
 * asks for the output from the byte after the last one received; every chunk must start exactly there.
 */
function grpcFollower(d: TestDaemon, id: string, deadlineMs = 90_000): { done: Promise<Followed>; received: () => number } {
  let next = 0;
  const done = (async () => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let reconnects = 0;
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const c = d.client();
      try {
        await new Promise<void>((resolve, reject) => {
          const s = c.getJobLogs({ id, fromOffset: next });
          s.on("data", (ch: DataChunk) => {
            if (ch.offset !== next) {
              s.cancel();
              reject(new Error(`follower of ${id}: chunk at offset ${ch.offset}, expected ${next}`));
              return;
            }
            next += ch.payload.length;
            (ch.stream === Stream.STDERR ? err : out).push(Buffer.from(ch.payload));
          });
          s.on("error", reject);
          s.on("end", resolve);
        });
        return { stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), reconnects };
      } catch (e) {
        if ((e as ServiceError).code !== grpcStatus.UNAVAILABLE || Date.now() > deadline) throw e;
        reconnects++;
        await sleep(200);
      } finally {
        c.close();
      }
    }
  })();
  return { done, received: () => next };
}

/** What a child rnx printed, how it ended, and when it said something of its own ("rnx: …"), in epoch ms. */
interface RnxResult {
  code: number | null;
  stdout: string;
  stderr: string;
  notes: { atMs: number; text: string }[];
}

/** A child rnx process whose output is collected. */
function rnxChild(d: TestDaemon, args: string[]): { stdoutBytes: () => number; done: Promise<RnxResult> } {
  const proc = spawn(process.execPath, [RNX, "--config", d.rnxConfigFile, ...args], { env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const notes: RnxResult["notes"] = [];
  let outBytes = 0;
  proc.stdout!.on("data", (b: Buffer) => {
    out.push(b);
    outBytes += b.length;
  });
  proc.stderr!.on("data", (b: Buffer) => {
    err.push(b);
    for (const m of b.toString("utf8").matchAll(/^rnx: .*$/gm)) notes.push({ atMs: Date.now(), text: m[0] });
  });
  const done = new Promise<RnxResult>((resolve) => {
    proc.once("close", (code) => resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), notes }));
  });
  return { stdoutBytes: () => outBytes, done };
}

/** Lines `${prefix}${i}` for i in [from, to), newline-terminated. */
function seq(prefix: string, from: number, to: number, keep: (i: number) => boolean = () => true): string {
  let s = "";
  for (let i = from; i < to; i++) if (keep(i)) s += `${prefix}${i}\n`;
  return s;
}

/** The lines of rnx's stderr that are not rnx's own notes (the job's stderr). */
function jobStderr(stderr: string): string {
  return stderr
    .split(/(?<=\n)/)
    .filter((l) => !l.startsWith("rnx: "))
    .join("");
}

function workFile(d: TestDaemon, id: string, name: string): string {
  return path.join(d.dir, "state", "jobs", id, "work", name);
}

function exitFile(d: TestDaemon, id: string): string {
  return path.join(d.dir, "state", "exits", id);
}

/** conmon processes whose command line names job `id`. */
function conmonsOf(id: string): string[] {
  const r = spawnSync("pgrep", ["-af", "conmon"], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => l.includes(id) && !l.includes("pgrep"));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** No container, cgroup, conmon, bundle or unconsumed exit file is left for `ids`. */
function assertNothingLeft(d: TestDaemon, ids: string[]): void {
  assert.deepEqual(d.runtimeContainers(), [], "no container is left");
  assert.deepEqual(d.leftoverCgroups(), [], "no job cgroup is left");
  for (const id of ids) {
    assert.deepEqual(conmonsOf(id), [], `no conmon is left for job ${id}`);
    assert.equal(existsSync(path.join(d.bundlesDir(), id)), false, `job ${id}'s bundle dir is removed`);
    assert.equal(existsSync(exitFile(d, id)), false, `job ${id}'s exit file is consumed`);
  }
}

/** Bytes of job `id`'s log file on the host (conmon's record, written with or without the daemon). */
function logBytes(d: TestDaemon, id: string): number {
  try {
    return statSync(path.join(d.dir, "state", "logs", `${id}.log`)).size;
  } catch {
    return 0;
  }
}

/**
 * Checks that `text` is exactly the lines `${prefix}${i}${suffix}` for i = 0…n-1 (those `keep` accepts),
 * then `${trailer}${n}`. With `countFrom`, n is read from the trailer ending `countFrom` instead and `text`
 * has no trailer (a job's other stream). Returns n.
 */
function assertNumbered(what: string, text: string, o: { prefix: string; suffix?: string; keep?: (i: number) => boolean; trailer: string; countFrom?: string }): number {
  const source = o.countFrom ?? text;
  const m = new RegExp(`(?:^|\\n)${o.trailer}(\\d+)\\n$`).exec(source);
  assert.ok(m, `${what}: the output ends with the trailer "${o.trailer}N" (${JSON.stringify(source.slice(-80))})`);
  const n = Number(m[1]);
  let exp = "";
  for (let i = 0; i < n; i++) if (!o.keep || o.keep(i)) exp += `${o.prefix}${i}${o.suffix ?? ""}\n`;
  if (o.countFrom === undefined) exp += `${o.trailer}${n}\n`;
  assert.ok(text === exp, `${what} is every numbered line once, in order (${diffHint(text, exp)})`);
  return n;
}

// Scripts. Each appends "started" to /work/starts first (to prove it ran once), then prints numbered lines
// steadily (~50 ms pause every 10 lines) until the test creates /work/stop in its work dir, then prints a
// trailer with the count. The pace keeps every crash in the middle of the output whatever the machine's load.
const PAD = "x".repeat(100);
const loop = (body: string, trailer: string, code: number) =>
  `echo started >> /work/starts; i=0; while [ ! -e /work/stop ]; do ${body}; i=$((i+1)); [ $((i % 10)) -eq 0 ] && sleep 0.05; done; ${trailer}; exit ${code}`;
// A runs under a foreground `rnx run`; its code is not one rnx uses for itself (3 = connection failure).
const A_CODE = 7;
const SCRIPT_A = loop(`echo "a $i"; [ $((i % 4)) -eq 0 ] && echo "a-err $i" >&2`, `echo "a end $i"`, A_CODE);
const SCRIPT_B = loop(`echo "b $i"; [ $((i % 3)) -eq 0 ] && echo "b-err $i" >&2`, `echo "b end $i"`, 0);
const SCRIPT_D = loop(`echo "d $i ${PAD}" >&2`, `echo "d end $i" >&2`, 3);
// C prints a fixed first half, waits for /work/go, prints a second half and exits 5 at once: the test
// creates /work/go while the daemon is down, so C ends during an outage.
const SCRIPT_C =
  `echo started >> /work/starts; i=0; while [ $i -lt 300 ]; do echo "c $i"; echo "c-err $i" >&2; i=$((i+1)); done; ` +
  `while [ ! -e /work/go ]; do sleep 0.05; done; while [ $i -lt 600 ]; do echo "c $i"; i=$((i+1)); done; echo "c-err done" >&2; exit 5`;

/** Relaunches the daemon and waits until this process (not an earlier one) serves. */
async function relaunch(d: TestDaemon): Promise<void> {
  const from = d.log.length;
  await d.launch();
  // launch() looks for "joblet serving" in the whole log kept across restarts, so it returns as soon as the
  // new process logs anything (a "reattached" line comes before it serves); wait for its own line.
  await waitFor("the relaunched daemon to serve", () => d.log.slice(from).includes('"joblet serving"'), 30_000);
}

type JobKey = "a" | "b" | "c" | "d";

/** Everything the crash loop produced, for the tests to check. */
interface CrashLoop {
  d: TestDaemon;
  jobs: Record<JobKey, Job>;
  finals: Map<string, Job>;
  followed: Record<JobKey, Followed>;
  rnxRun: RnxResult;
  rnxLog: RnxResult;
  /** What happened when (epoch ms), for messages. */
  timeline: { atMs: number; what: string }[];
  t0: number;
  crashes: number;
}

let crashLoopRun: Promise<CrashLoop> | undefined;
/** Runs the crash loop once; both tests that check it share the run. */
const crashLoop = () => (crashLoopRun ??= runCrashLoop());

/**
 * Four jobs print while the daemon is SIGKILLed four times: mid-output, while job C ends, during the
 * daemon's own recovery (and once more after it), and right after it serves again. Followers (one resuming
 * gRPC stream per job, `rnx run` for A and `rnx log` for B) attach before the first crash.
 */
async function runCrashLoop(): Promise<CrashLoop> {
  const t0 = Date.now();
  wrappedDaemon().catch(() => undefined);
  const d = await startDaemon();
  const run = rnxChild(d, ["run", "sh", "-c", SCRIPT_A]);
  const [b, c, dj] = await Promise.all([SCRIPT_B, SCRIPT_C, SCRIPT_D].map((script) => runJob(d, { command: "sh", args: ["-c", script] })));
  await waitFor("rnx run to print job A's output", () => run.stdoutBytes() > 0, 20_000);
  const a = (await listJobs(d)).find((j) => j.args[1] === SCRIPT_A);
  assert.ok(a, "the job rnx run started is listed");
  const jobs: Record<JobKey, Job> = { a, b: b!, c: c!, d: dj! };
  for (const j of Object.values(jobs)) assert.equal(j.status, "RUNNING");
  const log = rnxChild(d, ["log", b!.id]);
  const followers = { a: grpcFollower(d, a.id), b: grpcFollower(d, b!.id), c: grpcFollower(d, c!.id), d: grpcFollower(d, dj!.id) };
  await waitFor("every follower to receive output", () => Object.values(followers).every((f) => f.received() > 0) && log.stdoutBytes() > 0, 20_000);

  const timeline: CrashLoop["timeline"] = [{ atMs: Date.now(), what: "followers attached" }];
  const mark = (what: string) => timeline.push({ atMs: Date.now(), what });
  let crashes = 0;
  const kill = async () => {
    await d.stopProcess("SIGKILL");
    crashes++;
    mark("SIGKILL");
  };
  const restart = async () => {
    await relaunch(d);
    mark("serving");
  };

  // Crash 1: mid-output. While the daemon is down, conmon keeps recording: A's and D's logs grow.
  await sleep(1000);
  await kill();
  const sizes = [logBytes(d, a.id), logBytes(d, dj!.id)];
  await waitFor("A's and D's logs to grow with the daemon down", () => logBytes(d, a.id) > sizes[0]! && logBytes(d, dj!.id) > sizes[1]!, 10_000);
  mark("A's and D's logs grew while the daemon was down");
  await restart();

  // Crash 2: C ends while the daemon is down; conmon records its exit code.
  await sleep(1500);
  await kill();
  assert.equal(existsSync(exitFile(d, c!.id)), false, "C had not ended before the outage");
  writeFileSync(workFile(d, c!.id, "go"), "");
  await waitFor("conmon to record C's exit with the daemon down", () => existsSync(exitFile(d, c!.id)) && readFileSync(exitFile(d, c!.id), "utf8").trim() !== "", 10_000);
  assert.equal(readFileSync(exitFile(d, c!.id), "utf8").trim(), "5");
  mark("C ended while the daemon was down");
  await restart();

  // Crash 3: during the daemon's own recovery, right after it reattached a first job.
  await sleep(1500);
  await kill();
  const from = d.log.length;
  const launching = d.launch().catch(() => undefined);
  await waitFor("the restarting daemon to reattach a job", () => /reattached|"joblet serving"/.test(d.log.slice(from)), 30_000);
  const midRecovery = !d.log.slice(from).includes('"joblet serving"');
  await kill();
  await launching;
  mark(midRecovery ? "(that kill hit the recovery)" : "(that kill came after the daemon served: recovery was too quick to hit)");
  await restart();

  // Crash 4: right after the daemon serves again, while the followers reconnect.
  await sleep(200);
  await kill();
  await sleep(700);
  await restart();

  // The jobs print a while longer with the daemon up, then end.
  await sleep(1000);
  for (const k of ["a", "b", "d"] as const) writeFileSync(workFile(d, jobs[k].id, "stop"), "");
  const [fa, fb, fc, fd] = await Promise.all([followers.a.done, followers.b.done, followers.c.done, followers.d.done]);
  mark("the gRPC followers are done");
  const finals = new Map((await Promise.all(Object.values(jobs).map((j) => waitFinal(d, j.id)))).map((j) => [j.id, j]));
  const [rnxRun, rnxLog] = await Promise.all([run.done, log.done]);
  return { d, jobs, finals, followed: { a: fa, b: fb, c: fc, d: fd }, rnxRun, rnxLog, timeline, t0, crashes };
}

/** A job's recorded output, checked line by line against what its script prints. */
async function checkedLog(d: TestDaemon, k: JobKey, id: string): Promise<{ stdout: string; stderr: string; n: number }> {
  const log = await fullLog(d, id);
  switch (k) {
    case "a": {
      const n = assertNumbered("A's stdout", log.stdout, { prefix: "a ", trailer: "a end " });
      assertNumbered("A's stderr", log.stderr, { prefix: "a-err ", keep: (i) => i % 4 === 0, trailer: "a end ", countFrom: log.stdout });
      return { ...log, n };
    }
    case "b": {
      const n = assertNumbered("B's stdout", log.stdout, { prefix: "b ", trailer: "b end " });
      assertNumbered("B's stderr", log.stderr, { prefix: "b-err ", keep: (i) => i % 3 === 0, trailer: "b end ", countFrom: log.stdout });
      return { ...log, n };
    }
    case "c":
      assert.equal(log.stdout, seq("c ", 0, 600), "C's stdout, both halves");
      assert.equal(log.stderr, seq("c-err ", 0, 300) + "c-err done\n", "C's stderr");
      return { ...log, n: 600 };
    case "d": {
      assert.equal(log.stdout, "", "D's stdout is empty");
      const n = assertNumbered("D's stderr", log.stderr, { prefix: "d ", suffix: ` ${PAD}`, trailer: "d end " });
      return { ...log, n };
    }
  }
}

test("SIGKILL of the daemon 4 times (once mid-recovery) while jobs print: every byte once and in order, true exit codes, nothing ran twice, nothing left over", async () => {
  const { d, jobs, finals, followed, timeline, t0, crashes } = await crashLoop();

  // Exit codes and statuses are the jobs' own, including C's, which ended during an outage.
  const expected: Record<JobKey, [string, number]> = { a: ["FAILED", A_CODE], b: ["COMPLETED", 0], c: ["FAILED", 5], d: ["FAILED", 3] };
  for (const [k, [st, code]] of Object.entries(expected)) {
    const j = finals.get(jobs[k as JobKey].id)!;
    assert.equal(j.status, st, `job ${k} status (reason: ${j.reason})`);
    assert.equal(j.exitCode, code, `job ${k} exit code`);
    assert.ok(Date.parse(j.endTime) >= Date.parse(j.startTime), `job ${k} ended after it started`);
  }

  // The same jobs with the same IDs and start times: nothing added, lost or started again.
  const listed = await listJobs(d);
  assert.deepEqual(listed.map((j) => j.id).sort(), Object.values(jobs).map((j) => j.id).sort(), "the same jobs, same IDs");
  for (const j of Object.values(jobs)) assert.equal(finals.get(j.id)!.startTime, j.startTime, `job ${j.id}: start time unchanged`);
  for (const [k, j] of Object.entries(jobs)) {
    assert.equal(readFileSync(workFile(d, j.id, "starts"), "utf8"), "started\n", `job ${k}'s command ran exactly once`);
  }

  // Every job's recorded output: each numbered line once, in order, on its own stream; and the resuming
  // followers, attached before the first crash, got exactly that.
  const counts: string[] = [];
  for (const k of ["a", "b", "c", "d"] as const) {
    const log = await checkedLog(d, k, jobs[k].id);
    assert.ok(log.n >= 200, `job ${k} printed ${log.n} lines across the crashes`);
    counts.push(`${k} ${log.n}`);
    const f = followed[k];
    assert.ok(f.stdout === log.stdout, `follower of ${k}: stdout (${diffHint(f.stdout, log.stdout)})`);
    assert.ok(f.stderr === log.stderr, `follower of ${k}: stderr (${diffHint(f.stderr, log.stderr)})`);
    assert.ok(f.reconnects > 0, `follower of ${k} had to resume`);
  }

  assertNothingLeft(d, Object.values(jobs).map((j) => j.id));
  assert.equal(crashes, 5, "four outages, one of them with a second kill during recovery");
  console.log(`# ${describeTimeline(t0, timeline)}. Lines: ${counts.join(", ")}`);
});

test("rnx run and rnx log, following before the first of those crashes, reconnect and print every line once; rnx run exits with the job's code", async () => {
  const { d, jobs, rnxRun, rnxLog, timeline, t0 } = await crashLoop();
  const when = (r: RnxResult, who: string) => describeTimeline(t0, [...timeline, ...r.notes.map((n) => ({ atMs: n.atMs, what: `${who}: ${n.text}` }))]);
  const logA = await fullLog(d, jobs.a.id);
  const logB = await fullLog(d, jobs.b.id);
  assert.equal(rnxRun.code, A_CODE, `rnx run exits with the job's code. What happened: ${when(rnxRun, "rnx run")}`);
  assert.ok(rnxRun.stdout === logA.stdout, `rnx run's stdout is A's stdout (${diffHint(rnxRun.stdout, logA.stdout)})`);
  assert.ok(jobStderr(rnxRun.stderr) === logA.stderr, `rnx run's stderr, without its own notes, is A's stderr (${diffHint(jobStderr(rnxRun.stderr), logA.stderr)})`);
  assert.match(rnxRun.stderr, /reconnecting/, "rnx run says it reconnects");
  assert.equal(rnxLog.code, 0, `rnx log exits 0. What happened: ${when(rnxLog, "rnx log")}`);
  assert.ok(rnxLog.stdout === logB.stdout, `rnx log's stdout is B's stdout (${diffHint(rnxLog.stdout, logB.stdout)})`);
  assert.ok(jobStderr(rnxLog.stderr) === logB.stderr, `rnx log's stderr, without its own notes, is B's stderr (${diffHint(jobStderr(rnxLog.stderr), logB.stderr)})`);
  assert.match(rnxLog.stderr, /reconnecting/, "rnx log says it reconnects");
});

/**
 * The slow-create runtime: its path, the flag file that turns the delay on, the file it writes when it starts
 * holding `runc create` back, and the one it writes after.
 */
interface SlowRuntime {
  path: string;
  flag: string;
  holding: string;
  resumed: string;
}

/**
 * A runtime wrapper that, while the file `flag` exists, sleeps before `runc create` as many seconds as `flag`
 * holds (touching `holding` when it begins) and then touches `resumed`; otherwise (and for every other
 * command) it is runc itself.
 */
function slowCreateRuntime(dir: string): SlowRuntime {
  const runc = spawnSync("sh", ["-c", "command -v runc"], { encoding: "utf8" }).stdout.trim();
  assert.ok(runc, "runc is on PATH");
  const w = {
    path: path.join(dir, "slow-runc.sh"),
    flag: path.join(dir, "slow-create"),
    holding: path.join(dir, "create-holding"),
    resumed: path.join(dir, "create-resumed"),
  };
  writeFileSync(
    w.path,
    `#!/bin/sh\nif [ -e ${w.flag} ]; then for a in "$@"; do [ "$a" = create ] && s="$(cat ${w.flag})" && touch ${w.holding} && sleep "$s" && touch ${w.resumed} && break; done; fi\nexec ${runc} "$@"\n`,
  );
  chmodSync(w.path, 0o755);
  return w;
}

let wrapped: Promise<{ d: TestDaemon; w: SlowRuntime }> | undefined;
/**
 * One daemon, shared by the tests below, whose runtime is the slow-create wrapper (runc itself unless the
 * flag is set). Started once, early: it boots while the crash loop runs.
 */
function wrappedDaemon(): Promise<{ d: TestDaemon; w: SlowRuntime }> {
  wrapped ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-slow-runc-"));
    tempDirs.push(dir);
    const w = slowCreateRuntime(dir);
    return { d: await startDaemon({ runtime: { path: w.path }, joblet: { stopGracePeriod: "1s" } }), w };
  })();
  return wrapped;
}

/** What the SIGTERM restart produced, for the tests to check. */
interface SigtermRestart {
  d: TestDaemon;
  /** A job that prints a numbered line every 100 ms and exits 0 on SIGTERM. */
  printer: Job;
  /** A `sleep` job (PID 1 without a TERM handler: the stop needs SIGKILL after the grace period). */
  sleeper: Job;
  /** `rnx log` of the printer, started before the SIGTERM. */
  followed: RnxResult;
}

let sigtermRun: Promise<SigtermRestart> | undefined;
/** Runs the SIGTERM restart once; the tests that check it share the run. */
const sigtermRestart = () => (sigtermRun ??= runSigtermRestart());

/**
 * Two jobs run and an `rnx log` follows one of them; the daemon is stopped with SIGTERM; with it down the
 * jobs keep running (same processes, conmon alive, output still recorded); it is relaunched; both jobs are
 * RUNNING and are stopped with `rnx stop`.
 */
async function runSigtermRestart(): Promise<SigtermRestart> {
  const { d } = await wrappedDaemon();
  const script = `echo started >> /work/starts; i=0; trap 'echo "t end $i"; exit 0' TERM; while :; do echo "t $i"; i=$((i+1)); sleep 0.1; done`;
  const printer = await runJob(d, { command: "sh", args: ["-c", script] });
  const sleeper = await runJob(d, { command: "sleep", args: ["300"] });
  const pids = new Map<string, number>();
  for (const j of [printer, sleeper]) {
    const st = d.runtimeState(j.id);
    assert.equal(st?.status, "running");
    pids.set(j.id, st!.pid);
  }
  const follower = rnxChild(d, ["log", printer.id]);
  await waitFor("rnx log to print output", () => follower.stdoutBytes() > 0, 20_000);

  assert.equal(await d.stopProcess("SIGTERM"), 0, "the daemon exits 0 on SIGTERM");
  const size = logBytes(d, printer.id);
  await waitFor("the job's log to grow with the daemon stopped", () => logBytes(d, printer.id) > size, 10_000);
  for (const j of [printer, sleeper]) {
    assert.equal(d.runtimeState(j.id)?.status, "running", `job ${j.id} still runs with the daemon stopped`);
    assert.ok(pidAlive(pids.get(j.id)!), `job ${j.id}'s process ${pids.get(j.id)} is alive`);
    assert.equal(conmonsOf(j.id).length, 1, `job ${j.id}'s conmon is alive`);
  }

  await relaunch(d);
  for (const j of [printer, sleeper]) {
    const st = await getStatus(d, j.id);
    assert.equal(st.status, "RUNNING", `job ${j.id} is RUNNING after the restart`);
    assert.equal(st.startTime, j.startTime);
    assert.equal(d.runtimeState(j.id)?.pid, pids.get(j.id), "the same process, not a new one");
  }
  await sleep(500);
  for (const j of [printer, sleeper]) {
    const r = await d.rnx(["stop", j.id]);
    assert.equal(r.code, 0, r.stderr);
  }
  return { d, printer, sleeper, followed: await follower.done };
}

test("SIGTERM stops the daemon but not the jobs: they keep running and printing, are RUNNING after the restart, and rnx stop stops them", async () => {
  const { d, printer, sleeper } = await sigtermRestart();
  for (const j of [printer, sleeper]) {
    const st = await getStatus(d, j.id);
    assert.equal(st.status, "STOPPED");
    assert.match(st.reason, /stopped by/);
  }
  assertNumbered("the printer's output", (await fullLog(d, printer.id)).stdout, { prefix: "t ", trailer: "t end " });
  assert.equal(readFileSync(workFile(d, printer.id, "starts"), "utf8"), "started\n");
  assertNothingLeft(d, [printer.id, sleeper.id]);
});

test("rnx log, following a job when the daemon is stopped with SIGTERM, reconnects after the restart and prints every line once", async () => {
  const { d, printer, followed } = await sigtermRestart();
  const recorded = await fullLog(d, printer.id);
  assert.equal(followed.code, 0, `rnx log exits 0 once the job ended; its stderr: ${followed.stderr}`);
  assert.ok(followed.stdout === recorded.stdout, `rnx log printed the job's whole output once (${diffHint(followed.stdout, recorded.stdout)})`);
  assert.match(followed.stderr, /reconnecting/, "rnx log said it reconnects");
});

/**
 * Starts a job whose `runc create` takes `createS` seconds, SIGKILLs the daemon while the job is
 * INITIALIZING, and relaunches it once `beforeRelaunch` returns. Returns the job's ID.
 */
async function interruptedStart(createS: number, beforeRelaunch: (d: TestDaemon, id: string) => Promise<void>): Promise<{ d: TestDaemon; w: SlowRuntime; id: string }> {
  const { d, w } = await wrappedDaemon();
  rmSync(w.resumed, { force: true });
  rmSync(w.holding, { force: true });
  writeFileSync(w.flag, String(createS));
  const marker = `interrupted-${Date.now()}`;
  const pending = runJob(d, { command: "sh", args: ["-c", `echo started >> /work/starts; echo ${marker}; sleep 300`] }).catch((e: ServiceError) => e);
  let id: string | undefined;
  for (let i = 0; i < 100 && !id; i++) {
    id = (await listJobs(d)).find((j) => j.args[1]?.includes(marker))?.id;
    if (!id) await sleep(20);
  }
  assert.ok(id, "the job was accepted");
  assert.equal((await getStatus(d, id)).status, "INITIALIZING", "the start is in progress (the runtime sleeps in create)");
  // The job is recorded before conmon is launched: kill only once the wrapper holds create back, or the kill
  // could land before conmon (or before the wrapper read the flag) and the create would never be held.
  await waitFor("the runtime to hold create back", () => existsSync(w.holding), 10_000);
  await d.stopProcess("SIGKILL");
  rmSync(w.flag);
  assert.ok((await pending) instanceof Error, "the RunJob call failed with the daemon gone");
  await beforeRelaunch(d, id);
  await relaunch(d);
  return { d, w, id };
}

test("a start interrupted by SIGKILL after the container was created is cleaned up, FAILED with a reason, and never runs", async () => {
  const { d, id } = await interruptedStart(2, async (d, jobId) => {
    // The slow create finishes with the daemon down: the container exists (created, not started).
    await waitFor("the container to be created", () => d.runtimeState(jobId)?.status === "created", 15_000);
  });
  const st = await getStatus(d, id);
  assert.equal(st.status, "FAILED");
  assert.match(st.reason, /starting/, `reason: ${st.reason}`);
  assert.equal(existsSync(workFile(d, id, "starts")), false, "the job's command never ran");
  assertNothingLeft(d, [id]);
  assert.deepEqual(await fullLog(d, id), { stdout: "", stderr: "" }, "no output");
});

test("a start interrupted by SIGKILL before the container exists, cleaned up before the create goes on, leaves nothing behind after it", async () => {
  const { d, w, id } = await interruptedStart(10, async () => undefined);
  assert.equal(existsSync(w.resumed), false, "the daemon recovered while runc create was still held back");
  const st = await getStatus(d, id);
  assert.equal(st.status, "FAILED");
  assert.match(st.reason, /starting/, `reason: ${st.reason}`);
  // The create goes on after the daemon cleaned up: whatever conmon and runc do then must not leave a
  // container, a cgroup or a conmon behind, and the command must not run.
  await waitFor("the held-back create to go on", () => existsSync(w.resumed), 20_000);
  await waitFor("conmon to end", () => conmonsOf(id).length === 0, 10_000);
  await sleep(200);
  assert.equal(existsSync(workFile(d, id, "starts")), false, "the job's command never ran");
  assertNothingLeft(d, [id]);
  assert.equal((await getStatus(d, id)).status, "FAILED");
});

/** The timeline in ms from `t0`, one event after the other. */
function describeTimeline(t0: number, events: { atMs: number; what: string }[]): string {
  return [...events]
    .sort((x, y) => x.atMs - y.atMs)
    .map((e) => `${e.atMs - t0} ms ${e.what}`)
    .join("; ");
}

/** Where two long strings first differ, for assertion messages. */
function diffHint(got: string, exp: string): string {
  if (got === exp) return "equal";
  let i = 0;
  while (i < got.length && i < exp.length && got[i] === exp[i]) i++;
  const lineStart = got.lastIndexOf("\n", i - 1) + 1;
  return `length ${got.length} vs expected ${exp.length}; first difference at byte ${i}: got ${JSON.stringify(got.slice(lineStart, i + 40))}, expected ${JSON.stringify(exp.slice(lineStart, i + 40))}`;
}
