// Log capture and follow against a real daemon (conmon's k8s-file log, read with byte offsets): concurrent
// followers joining at different times each get the whole output exactly once, in order, tagged with its
// stream, in chunks of at most 256 KiB (less under a small grpc.maxSendMsgSize) with contiguous offsets; output is binary-safe; a resume from an
// offset returns exactly the suffix; a paused follower slows only itself; rnx log and rnx run deliver all.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { RunJobReq, Stream, type DataChunk, type GetJobStatusRes, type JobletServiceClient, type RunJobRes } from "../../src/shared/proto/joblet.js";
import { JOB_TRAILER, decodeJobTrailer } from "../../src/shared/job-trailer.js";
import { DATA_CHUNK_HEAD_BYTES } from "../../src/shared/wire-codec.js";
import { ROOT, TestDaemon, unary } from "./harness.js";

const T = { timeout: 120_000 };
const MAX_CHUNK_BYTES = 256 << 10;

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

const run = (command: string, ...args: string[]) => unary<RunJobRes>((cb) => c.runJob(RunJobReq.fromPartial({ command, args }), cb));
const getStatus = (id: string) => unary<GetJobStatusRes>((cb) => c.getJobStatus({ id }, cb));

async function waitFinal(id: string, timeoutMs = 60_000): Promise<GetJobStatusRes> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = await getStatus(id);
    if (["COMPLETED", "FAILED", "STOPPED"].includes(j.status)) return j;
    if (Date.now() > deadline) assert.fail(`job ${id} still ${j.status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** One GetJobLogs stream, recorded chunk by chunk with its arrival time. */
class Follower {
  readonly chunks: DataChunk[] = [];
  readonly startedAt = Date.now();
  endedAt = 0;
  readonly done: Promise<void>;
  readonly stream;

  constructor(id: string, fromOffset = 0, client = c) {
    this.stream = client.getJobLogs({ id, fromOffset });
    this.done = new Promise((resolve, reject) => {
      this.stream.on("data", (ch: DataChunk) => this.chunks.push(ch));
      this.stream.on("error", reject);
      this.stream.on("end", () => {
        this.endedAt = Date.now();
        resolve();
      });
    });
  }

  bytes(stream?: Stream): Buffer {
    return Buffer.concat(this.chunks.filter((ch) => stream === undefined || ch.stream === stream).map((ch) => ch.payload));
  }

  /** The output as runs of one stream (adjacent chunks of the same stream merged), independent of chunking. */
  runs(): { stream: Stream; data: Buffer }[] {
    const out: { stream: Stream; parts: Buffer[] }[] = [];
    for (const ch of this.chunks) {
      const last = out[out.length - 1];
      if (last && last.stream === ch.stream) last.parts.push(ch.payload);
      else out.push({ stream: ch.stream, parts: [ch.payload] });
    }
    return out.map((r) => ({ stream: r.stream, data: Buffer.concat(r.parts) }));
  }

  /** Asserts chunk sizes, stream tags and that each chunk starts where the previous ended (from `from`). */
  checkFraming(from = 0): void {
    let next = from;
    for (const [i, ch] of this.chunks.entries()) {
      assert.ok(ch.payload.length > 0, `chunk ${i} is empty`);
      assert.ok(ch.payload.length <= MAX_CHUNK_BYTES, `chunk ${i} has ${ch.payload.length} bytes (> 256 KiB)`);
      assert.ok(ch.stream === Stream.STDOUT || ch.stream === Stream.STDERR, `chunk ${i} has stream ${ch.stream}`);
      assert.equal(ch.offset, next, `chunk ${i} starts at ${ch.offset}, expected ${next} (sum of the previous payloads)`);
      next += ch.payload.length;
    }
  }
}

/** Seconds-long mixed output: numbered lines on stdout and stderr in bursts, then a fast 1.3 MB stdout tail. */
const MIXED_SCRIPT = `sleep 0.5; i=0; while [ $i -lt 2000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); if [ $((i % 200)) -eq 0 ]; then sleep 0.25; fi; done; seq 1 200000`;

function mixedExpected(): { stdout: string; stderr: string } {
  let stdout = "";
  let stderr = "";
  for (let i = 0; i < 2000; i++) {
    stdout += `out ${i}\n`;
    stderr += `err ${i}\n`;
  }
  for (let i = 1; i <= 200000; i++) stdout += `${i}\n`;
  return { stdout, stderr };
}

/** The finished mixed-output job of the first test, reused by the resume test. */
let mixed: { id: string; reference: Follower } | undefined;

test("5 concurrent followers joining before, during and after the output each get all of it exactly once", T, async () => {
  const job = await run("sh", "-c", MIXED_SCRIPT);
  const followers: Follower[] = [new Follower(job.id)];
  await sleep(700);
  followers.push(new Follower(job.id));
  await sleep(700);
  followers.push(new Follower(job.id));
  await sleep(700);
  followers.push(new Follower(job.id));
  const final = await waitFinal(job.id);
  assert.equal(final.status, "COMPLETED");
  followers.push(new Follower(job.id));
  await Promise.all(followers.map((f) => f.done));

  const want = mixedExpected();
  assert.ok(followers[0]!.startedAt < Date.parse(final.endTime) - 2000, "the first follower joined well before the end");
  const reference = followers[0]!.runs();
  // How finely the two streams interleave depends on how conmon's reads batch them; they do switch.
  assert.ok(reference.length >= 3, `stdout and stderr interleave (${reference.length} runs)`);
  for (const [i, f] of followers.entries()) {
    f.checkFraming();
    assert.equal(f.bytes(Stream.STDOUT).toString(), want.stdout, `follower ${i}: stdout complete, in order, once`);
    assert.equal(f.bytes(Stream.STDERR).toString(), want.stderr, `follower ${i}: stderr complete, in order, once`);
    assert.equal(f.bytes().length, want.stdout.length + want.stderr.length);
    // Every follower sees the same interleaving of the two streams, however its chunks were cut.
    assert.deepEqual(
      f.runs().map((r) => [r.stream, r.data.length]),
      reference.map((r) => [r.stream, r.data.length]),
      `follower ${i}: same stream interleaving as follower 0`,
    );
  }
  // Live followers got history in full chunks: a 1.3 MB burst is not sent as one chunk per line.
  assert.ok(followers[4]!.chunks.some((ch) => ch.payload.length > 4096), "history is sent in large chunks");
  mixed = { id: job.id, reference: followers[4]! };
});

test("GetJobLogs fromOffset=N returns exactly the output from byte N on, with the right streams", T, async () => {
  assert.ok(mixed, "needs the job of the previous test");
  const all = mixed.reference.bytes();
  const streamAt: Stream[] = [];
  for (const ch of mixed.reference.chunks) for (let i = 0; i < ch.payload.length; i++) streamAt.push(ch.stream);
  const boundary = mixed.reference.chunks[3]!.offset;
  for (const n of [0, 1, 7, boundary, boundary + 1, 65536, 65537, Math.floor(all.length / 2), all.length - 1, all.length]) {
    const f = new Follower(mixed.id, n);
    await f.done;
    f.checkFraming(n);
    assert.ok(f.bytes().equals(all.subarray(n)), `fromOffset ${n}: the suffix from byte ${n}`);
    let pos = n;
    for (const ch of f.chunks) {
      assert.equal(ch.stream, streamAt[pos], `fromOffset ${n}: chunk at ${pos} tagged with its stream`);
      assert.equal(ch.stream, streamAt[pos + ch.payload.length - 1]);
      pos += ch.payload.length;
    }
  }
  const beyond = new Follower(mixed.id, all.length + 1000);
  await beyond.done;
  assert.equal(beyond.chunks.length, 0, "an offset past the end of a finished job's output gives nothing");
});

test("a resume from an offset of a running job continues there and follows to the end", T, async () => {
  const job = await run("sh", "-c", "echo 0123456789; sleep 1; echo abc; echo def >&2");
  await sleep(300);
  const f = new Follower(job.id, 5);
  await f.done;
  f.checkFraming(5);
  assert.equal(f.bytes(Stream.STDOUT).toString(), "56789\nabc\n");
  assert.equal(f.bytes(Stream.STDERR).toString(), "def\n");
  assert.equal((await getStatus(job.id)).status, "COMPLETED", "the stream ended only after the job did");
});

test("output is binary-safe: rnx log gives the exact bytes the job wrote to a file", T, async () => {
  const job = await run(
    "sh",
    "-c",
    "head -c 1000000 /dev/urandom | tee /work/blob; head -c 300000 /dev/urandom | tee /work/blob2 >&2; printf '\\000\\r\\n\\377'",
  );
  await waitFinal(job.id);
  const work = path.join(d.dir, "state", "jobs", job.id, "work");
  const blob = readFileSync(path.join(work, "blob"));
  const blob2 = readFileSync(path.join(work, "blob2"));
  assert.equal(blob.length, 1_000_000);
  const wantStdout = Buffer.concat([blob, Buffer.from([0, 13, 10, 255])]);

  const r = await d.rnx(["log", job.id]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdoutBytes.length, wantStdout.length);
  assert.equal(sha(r.stdoutBytes), sha(wantStdout), "rnx log stdout is byte-identical to what the job wrote");

  const f = new Follower(job.id);
  await f.done;
  f.checkFraming();
  assert.ok(f.bytes(Stream.STDOUT).equals(wantStdout), "gRPC stdout bytes are exact");
  assert.ok(f.bytes(Stream.STDERR).equals(blob2), "gRPC stderr bytes are exact");
});

test("a paused follower does not hold up a fast one, and still gets everything", T, async () => {
  const total = 12_000_004;
  const job = await run("sh", "-c", "sleep 0.3; head -c 12000000 /dev/zero | tr '\\000' s; echo end");
  const slow = new Follower(job.id);
  const fast = new Follower(job.id);
  slow.stream.pause();
  const pausedAt = Date.now();
  // The slow follower stays paused until the fast one is done: if one held up the other, this would time out.
  const fastDone = await Promise.race([fast.done.then(() => true), sleep(60_000).then(() => false)]);
  assert.ok(fastDone, "the fast follower finished while the slow one was paused");
  assert.equal(fast.bytes().length, total);
  assert.ok(slow.bytes().length < total, `the paused follower was held back (${slow.bytes().length} bytes received)`);
  await sleep(Math.max(0, 2000 - (Date.now() - pausedAt)));
  slow.stream.resume();
  await slow.done;
  slow.checkFraming();
  fast.checkFraming();
  assert.ok(slow.bytes().equals(fast.bytes()), "the slow follower got exactly the same output");
  assert.ok(slow.endedAt - pausedAt >= 2000);
});

test("a log stream that ends with the job carries its final record in the trailers, as GetJobStatus returns it", T, async () => {
  /** Follows job `id`'s output to its end; resolves with the output and the record in the trailers. */
  const follow = (id: string) =>
    new Promise<{ out: string; trailer: GetJobStatusRes | undefined }>((resolve, reject) => {
      let out = "";
      const s = c.getJobLogs({ id, fromOffset: 0 });
      s.on("data", (chunk: DataChunk) => (out += Buffer.from(chunk.payload).toString()));
      s.on("status", (st: { code: number; metadata: { get(key: string): unknown[] } }) => {
        const value = st.metadata.get(JOB_TRAILER)[0] as Buffer | undefined;
        resolve({ out, trailer: value ? decodeJobTrailer(value.toString("base64")) : undefined });
      });
      s.on("error", reject);
    });
  // Followed live: the stream opens while the job runs and ends with it.
  const live = await run("sh", "-c", "sleep 0.5; echo done; exit 3");
  const followed = await follow(live.id);
  assert.equal(followed.out, "done\n");
  assert.ok(followed.trailer, "a trailer with the job's record");
  assert.equal(followed.trailer.status, "FAILED");
  assert.equal(followed.trailer.exitCode, 3);
  assert.deepEqual(followed.trailer, await getStatus(live.id));
  // Replayed: a job that ended before the stream opened, and one without output (a Trailers-Only response).
  for (const [args, code] of [[["-c", "echo x"], 0], [["-c", "exit 0"], 0]] as const) {
    const job = await run("sh", ...args);
    await waitFinal(job.id);
    const replayed = await follow(job.id);
    assert.equal(replayed.trailer?.exitCode, code);
    assert.deepEqual(replayed.trailer, await getStatus(job.id));
  }
});

test("rnx log of a finished job prints its full history and exits 0", T, async () => {
  const job = await run("sh", "-c", "seq 1 5000; echo warn >&2; exit 3");
  const final = await waitFinal(job.id);
  assert.equal(final.status, "FAILED");
  const r = await d.rnx(["log", job.id]);
  assert.equal(r.code, 0, `rnx log exits 0 whatever the job's exit code: ${r.stderr}`);
  assert.equal(r.stdout, seq(5000));
  assert.equal(r.stderr, "warn\n");
});

test("rnx log of a running job follows it until it ends", T, async () => {
  const job = await run("sh", "-c", "echo first; sleep 2; echo second; sleep 1; echo third >&2");
  await sleep(300);
  const t0 = Date.now();
  const r = await d.rnx(["log", job.id]);
  const tookMs = Date.now() - t0;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "first\nsecond\n");
  assert.equal(r.stderr, "third\n");
  assert.ok(tookMs >= 2000, `rnx log returned after ${tookMs} ms, before the job ended`);
  assert.equal((await getStatus(job.id)).status, "COMPLETED");
});

test("rnx run delivers all of a 50 MB output", T, async () => {
  const total = 50_000_000;
  const r = await d.rnx(["run", "sh", "-c", `head -c ${total} /dev/zero | tr '\\000' x`], { timeoutMs: 100_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdoutBytes.length, total);
  assert.equal(sha(r.stdoutBytes), sha(Buffer.alloc(total, "x")));
});

function sha(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

function seq(n: number): string {
  let s = "";
  for (let i = 1; i <= n; i++) s += `${i}\n`;
  return s;
}

/** A job writing `n` lines alternately to stdout (`o1`…) and stderr (`e1`…); its expected output per stream. */
function alternating(n: number): { script: string; stdout: string; stderr: string } {
  let stdout = "";
  let stderr = "";
  for (let i = 1; i <= n; i++) {
    stdout += `o${i}\n`;
    stderr += `e${i}\n`;
  }
  return { script: `i=1; while [ $i -le ${n} ]; do echo o$i; echo e$i >&2; i=$((i+1)); done`, stdout, stderr };
}

test("output alternating between stdout and stderr line by line arrives as separate chunks, each stream exact", T, async () => {
  // Thousands of one-line chunks: the daemon sends many per write (DataChunkBatch); a standard gRPC client
  // (grpc-js here) and rnx must still see each as its own message with the right stream and offset.
  const want = alternating(3000);
  const job = await run("sh", "-c", want.script);
  await waitFinal(job.id);
  const f = new Follower(job.id);
  await f.done;
  f.checkFraming();
  assert.equal(f.bytes(Stream.STDOUT).toString(), want.stdout);
  assert.equal(f.bytes(Stream.STDERR).toString(), want.stderr);
  assert.ok(f.runs().length >= 100, `stdout and stderr interleave in the log (${f.runs().length} runs)`);
  const r = await d.rnx(["log", job.id]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, want.stdout);
  assert.equal(r.stderr, want.stderr);
});

/** Runs `rnx ARGS 2>&1` through sh (one pipe for both streams, as a user's shell would); resolves with that output. */
function rnxMerged(args: string[]): Promise<Buffer> {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, path.join(ROOT, "bin", "rnx"), "--config", d.rnxConfigFile, ...args].map(q).join(" ");
  return new Promise((resolve, reject) => {
    const p = spawn("sh", ["-c", `${cmd} 2>&1`], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, NO_COLOR: "1" } });
    const out: Buffer[] = [];
    p.stdout.on("data", (b: Buffer) => out.push(b));
    p.once("error", reject);
    p.once("close", (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`rnx ${args.join(" ")} 2>&1: exit ${code}`))));
  });
}

test("with 2>&1 rnx prints a job's stdout and stderr in the order of its log, following live and replaying", T, async () => {
  const want = alternating(20_000);
  const live = await rnxMerged(["run", "sh", "-c", want.script]);
  const id = JSON.parse((await d.rnx(["list", "--json"])).stdout).at(-1).id as string;
  const f = new Follower(id);
  await f.done;
  const logOrder = f.bytes();
  assert.ok(f.runs().length >= 100, `stdout and stderr interleave in the log (${f.runs().length} runs)`);
  assert.ok(live.equals(logOrder), "rnx run … 2>&1 prints the log's order");
  for (let i = 0; i < 3; i++) assert.ok((await rnxMerged(["log", id])).equals(logOrder), `rnx log … 2>&1, run ${i + 1}: the log's order`);
});

test("under a small grpc.maxSendMsgSize the output comes in chunks that fit it, all of it, and rnx log prints it", T, async () => {
  // The smallest limit the config accepts: a 256 KiB chunk would fail the stream with RESOURCE_EXHAUSTED.
  const small = await TestDaemon.start({ grpc: { maxSendMsgSize: 1024 } });
  const sc = small.client();
  try {
    const alt = alternating(500);
    const job = await unary<RunJobRes>((cb) => sc.runJob(RunJobReq.fromPartial({ command: "sh", args: ["-c", `seq 1 30000; echo warn >&2; ${alt.script}`] }), cb));
    const f = new Follower(job.id, 0, sc);
    await f.done;
    f.checkFraming();
    assert.equal(f.bytes(Stream.STDOUT).toString(), seq(30000) + alt.stdout);
    assert.equal(f.bytes(Stream.STDERR).toString(), "warn\n" + alt.stderr);
    for (const ch of f.chunks) assert.ok(ch.payload.length <= 1024 - DATA_CHUNK_HEAD_BYTES, `a chunk of ${ch.payload.length} bytes under a 1024-byte message limit`);
    const r = await small.rnx(["log", job.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, seq(30000) + alt.stdout);
    assert.equal(r.stderr, "warn\n" + alt.stderr);
  } finally {
    sc.close();
    await small.destroy();
  }
});
