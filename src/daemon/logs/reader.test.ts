import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { isJobletError } from "../../shared/errors.js";
import { encodeK8sOutput, encodeK8sRecord, MAX_LINE_BYTES, type LogStream } from "./k8sfile.js";
import { clearIndexCache, indexFor } from "./offset-index.js";
import { readLog, releaseChunk, totalOutputBytes, type LogChunk, type ReadLogOptions } from "./reader.js";

const dir = mkdtempSync(path.join(tmpdir(), "joblet-logs-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileSeq = 0;
const newPath = (): string => path.join(dir, `job-${++fileSeq}.log`);

/** A job's output as written: the bytes in order and the stream of each byte ("o" or "e"). */
interface Output {
  bytes: Buffer;
  streams: Buffer;
}

const streamLetter = (s: LogStream): number => (s === "stdout" ? 0x6f : 0x65);

/** Random writes to both streams, encoded as conmon would, with the expected decoded output. */
function randomLog(writes: number, maxWriteBytes: number): { file: Buffer; expected: Output } {
  const lines: Buffer[] = [];
  const bytes: Buffer[] = [];
  const streams: Buffer[] = [];
  for (let i = 0; i < writes; i++) {
    const stream: LogStream = Math.random() < 0.5 ? "stdout" : "stderr";
    const data = randomBytes(Math.floor(Math.random() * maxWriteBytes));
    for (let j = 0; j < data.length; j++) if (Math.random() < 0.05) data[j] = 0x0a;
    lines.push(encodeK8sOutput(stream, data, 1 + Math.floor(Math.random() * 100)));
    bytes.push(data);
    streams.push(Buffer.alloc(data.length, streamLetter(stream)));
  }
  return { file: Buffer.concat(lines), expected: { bytes: Buffer.concat(bytes), streams: Buffer.concat(streams) } };
}

async function collect(gen: AsyncGenerator<LogChunk>): Promise<LogChunk[]> {
  const chunks: LogChunk[] = [];
  for await (const c of gen) chunks.push(c);
  return chunks;
}

/** Asserts chunks are contiguous from `from`, within the size cap, and equal `expected` from `from` on. */
function assertChunks(chunks: LogChunk[], expected: Output, from: number, maxChunkBytes = 65536): void {
  let offset = from;
  for (const c of chunks) {
    assert.equal(c.offset, offset, "chunks are contiguous");
    assert.ok(c.data.length > 0 && c.data.length <= maxChunkBytes, `chunk of ${c.data.length} bytes`);
    const other = expected.streams.subarray(offset, offset + c.data.length).indexOf(streamLetter(c.stream === "stdout" ? "stderr" : "stdout"));
    if (other >= 0) assert.fail(`byte ${offset + other}: chunk of ${c.stream} holds a byte of the other stream`);
    offset += c.data.length;
  }
  const got = Buffer.concat(chunks.map((c) => c.data));
  assert.ok(got.equals(expected.bytes.subarray(from)), `output from ${from}: ${got.length} bytes, expected ${expected.bytes.length - from}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("readLog without follow", () => {
  it("reads the whole output byte-exact with streams, and resumes from every offset", async () => {
    const { file, expected } = randomLog(30, 150);
    const p = newPath();
    writeFileSync(p, file);
    assertChunks(await collect(readLog(p, 0)), expected, 0);
    for (let from = 0; from <= expected.bytes.length; from++) {
      const maxChunkBytes = from % 10 === 0 ? 7 : 65536;
      assertChunks(await collect(readLog(p, from, { maxChunkBytes })), expected, from, maxChunkBytes);
    }
    assert.equal(await totalOutputBytes(p), expected.bytes.length);
    // Beyond the end: nothing, not an error.
    assert.deepEqual(await collect(readLog(p, expected.bytes.length + 10)), []);
  });

  it("caps chunk size and never mixes streams", async () => {
    const p = newPath();
    const out = Buffer.alloc(300_000, "o");
    const err = Buffer.alloc(1000, "e");
    writeFileSync(p, Buffer.concat([encodeK8sOutput("stdout", out), encodeK8sOutput("stderr", err), encodeK8sOutput("stdout", out)]));
    const chunks = await collect(readLog(p, 0, { maxChunkBytes: 65536 }));
    assert.deepEqual(
      chunks.map((c) => `${c.stream}:${c.data.length}`),
      ["stdout:65536", "stdout:65536", "stdout:65536", "stdout:65536", "stdout:37856", "stderr:1000",
        "stdout:65536", "stdout:65536", "stdout:65536", "stdout:65536", "stdout:37856"],
    );
    for (const c of chunks) assert.ok(c.data.every((b) => b === (c.stream === "stdout" ? 0x6f : 0x65)));
  });

  it("merges tiny records into large chunks", async () => {
    const p = newPath();
    const lines: Buffer[] = [];
    for (let i = 0; i < 100_000; i++) lines.push(encodeK8sRecord("stdout", Buffer.from([0x61 + (i % 26)]), i % 2 === 0));
    writeFileSync(p, Buffer.concat(lines));
    const chunks = await collect(readLog(p, 0, { maxChunkBytes: 65536 }));
    // 100_000 records: 50_000 partial of 1 byte, 50_000 full of 2 bytes = 150_000 output bytes.
    assert.deepEqual(chunks.map((c) => c.data.length), [65536, 65536, 150_000 - 2 * 65536]);
  });

  it("does not consume a partial trailing record until it is completed", async () => {
    const p = newPath();
    const rec1 = encodeK8sRecord("stdout", Buffer.from("first"), false);
    const rec2 = encodeK8sRecord("stderr", Buffer.from("second"), false);
    writeFileSync(p, Buffer.concat([rec1, rec2.subarray(0, 20)]));
    const first = await collect(readLog(p, 0));
    assert.deepEqual(first.map((c) => [c.stream, c.offset, c.data.toString()]), [["stdout", 0, "first\n"]]);
    assert.equal(await totalOutputBytes(p), 6);
    appendFileSync(p, rec2.subarray(20, rec2.length - 1)); // all but the newline: still incomplete
    assert.deepEqual(await collect(readLog(p, 6)), []);
    appendFileSync(p, rec2.subarray(rec2.length - 1));
    const second = await collect(readLog(p, 6));
    assert.deepEqual(second.map((c) => [c.stream, c.offset, c.data.toString()]), [["stderr", 6, "second\n"]]);
    assert.equal(await totalOutputBytes(p), 13);
  });

  it("skips malformed and over-long lines and reports them", async () => {
    const p = newPath();
    writeFileSync(
      p,
      Buffer.concat([
        encodeK8sRecord("stdout", Buffer.from("a"), false),
        Buffer.from("this line is corrupt\n"),
        // Well-formed but longer than any conmon record: dropped while reading, never buffered whole.
        encodeK8sRecord("stdout", Buffer.alloc(MAX_LINE_BYTES + 3 * 1024 * 1024, "x"), false),
        encodeK8sRecord("stderr", Buffer.from("b"), false),
      ]),
    );
    let malformed = 0;
    const chunks = await collect(readLog(p, 0, { onMalformedLines: (n) => (malformed += n) }));
    assert.deepEqual(chunks.map((c) => [c.stream, c.offset, c.data.toString()]), [["stdout", 0, "a\n"], ["stderr", 2, "b\n"]]);
    assert.equal(malformed, 2);
    assert.deepEqual((await collect(readLog(p, 3))).map((c) => c.data.toString()), ["\n"]);
  });

  it("decodes valid lines longer than a read block, read whole or appended in pieces", async () => {
    // 3 MiB lines need the read buffer to grow past its 1 MiB block while the line is completed.
    const long = Buffer.alloc(3 * 1024 * 1024 + 17, "L");
    const parts = [
      encodeK8sRecord("stdout", Buffer.from("head"), false),
      encodeK8sRecord("stderr", long, true),
      encodeK8sRecord("stdout", Buffer.from("mid"), false),
      encodeK8sRecord("stderr", long, false),
      encodeK8sRecord("stdout", Buffer.from("tail"), false),
    ];
    const expected = Buffer.concat([Buffer.from("head\n"), long, Buffer.from("mid\n"), long, Buffer.from("\ntail\n")]);
    const whole = newPath();
    writeFileSync(whole, Buffer.concat(parts));
    for (const from of [0, 5, 5 + long.length - 1, expected.length - 3]) {
      const got = await collect(readLog(whole, from, { maxChunkBytes: 1 << 20 }));
      assert.ok(got.length > 0 && got[0]!.offset === from, `from ${from}`);
      assert.ok(Buffer.concat(got.map((c) => c.data)).equals(expected.subarray(from)), `from ${from}`);
    }
    assert.equal(await totalOutputBytes(whole), expected.length);

    // The same file written while a follower reads, in pieces that end mid-line.
    const grown = newPath();
    writeFileSync(grown, "");
    const file = Buffer.concat(parts);
    let done = false;
    const follower = collect(readLog(grown, 0, { follow: true, pollMs: 5, isDone: () => done }));
    for (let pos = 0; pos < file.length; pos += 700_001) {
      appendFileSync(grown, file.subarray(pos, pos + 700_001));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    done = true;
    const followed = await follower;
    assert.ok(Buffer.concat(followed.map((c) => c.data)).equals(expected));
    let offset = 0;
    for (const c of followed) {
      assert.equal(c.offset, offset, "chunks are contiguous");
      offset += c.data.length;
    }
  });

  it("throws NOT_FOUND for a missing file and INVALID_ARGUMENT for bad options", async () => {
    await assert.rejects(collect(readLog(path.join(dir, "missing.log"), 0)), (e) => isJobletError(e, "NOT_FOUND"));
    assert.equal(await totalOutputBytes(path.join(dir, "missing.log")), 0);
    const p = newPath();
    writeFileSync(p, "");
    await assert.rejects(collect(readLog(p, -1)), (e) => isJobletError(e, "INVALID_ARGUMENT") && /fromOffset/.test(e.message));
    await assert.rejects(collect(readLog(p, 0, { maxChunkBytes: 0 })), (e) => isJobletError(e, "INVALID_ARGUMENT"));
  });

  it("locates offsets in a multi-MiB log through the sparse index, cold and warm", async () => {
    const { file, expected } = randomLog(3000, 4000); // ~6 MiB of output
    const p = newPath();
    writeFileSync(p, file);
    clearIndexCache();
    const picks = [0, 1, 1_000_003, expected.bytes.length - 5, Math.floor(expected.bytes.length / 2)];
    for (const from of picks) {
      // Read only a few chunks: resuming must be right whether or not the index already covers `from`.
      const chunks: LogChunk[] = [];
      for await (const c of readLog(p, from, { maxChunkBytes: 4096 })) {
        chunks.push(c);
        if (chunks.length === 3) break;
      }
      const got = Buffer.concat(chunks.map((c) => c.data));
      assert.equal(chunks[0]!.offset, from);
      assert.ok(got.equals(expected.bytes.subarray(from, from + got.length)), `from ${from}`);
    }
    assertChunks(await collect(readLog(p, 0)), expected, 0);
    const { statSync } = await import("node:fs");
    const st = statSync(p);
    const index = indexFor(p, st.dev, st.ino, st.size);
    assert.ok(index.size >= Math.floor(file.length / (1 << 20)), `index has ${index.size} points for ${file.length} bytes`);
    assert.equal(index.frontier.filePos, file.length);
    assert.equal(index.frontier.offset, expected.bytes.length);
    for (let i = 0; i < 20; i++) {
      const from = Math.floor(Math.random() * expected.bytes.length);
      assertChunks(await collect(readLog(p, from)), expected, from);
    }
  });
});

/** Appends `file` to `p` in random pieces (cutting records anywhere) on a timer, then marks the job done. */
function slowWriter(p: string, file: Buffer, opts: { pieces: number; everyMs: number; create?: boolean }): { done: () => boolean; finished: Promise<void> } {
  let done = false;
  const cuts = new Set<number>();
  while (cuts.size < opts.pieces - 1) cuts.add(1 + Math.floor(Math.random() * (file.length - 1)));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), file.length];
  const finished = (async () => {
    if (opts.create !== false) writeFileSync(p, "");
    for (let i = 0; i + 1 < bounds.length; i++) {
      await sleep(opts.everyMs);
      appendFileSync(p, file.subarray(bounds[i], bounds[i + 1]));
    }
    done = true;
  })();
  return { done: () => done, finished };
}

describe("readLog with follow", () => {
  it("follows a growing file (records written in pieces) and ends only after isDone", async () => {
    const { file, expected } = randomLog(80, 300);
    const p = newPath();
    writeFileSync(p, "");
    const writer = slowWriter(p, file, { pieces: 30, everyMs: 10, create: false });
    let isDoneCalls = 0;
    const chunks: LogChunk[] = [];
    for await (const c of readLog(p, 0, { follow: true, isDone: () => (isDoneCalls++, writer.done()), pollMs: 50 })) {
      chunks.push(c);
    }
    await writer.finished;
    assert.ok(isDoneCalls > 1, "waited on isDone more than once");
    assertChunks(chunks, expected, 0);
  });

  it("keeps following across a pause while the job is not done, and sees a record finished in a second write", async () => {
    const p = newPath();
    const rec = encodeK8sRecord("stderr", Buffer.from("half and half"), false);
    writeFileSync(p, encodeK8sRecord("stdout", Buffer.from("start"), false));
    let done = false;
    const seen: string[] = [];
    const reading = (async () => {
      for await (const c of readLog(p, 0, { follow: true, isDone: () => done, pollMs: 50 })) seen.push(`${c.stream}:${c.offset}:${c.data.toString()}`);
    })();
    await sleep(150);
    appendFileSync(p, rec.subarray(0, 30));
    await sleep(300);
    assert.deepEqual(seen, ["stdout:0:start\n"], "nothing of the incomplete record");
    appendFileSync(p, rec.subarray(30));
    await sleep(150);
    assert.deepEqual(seen, ["stdout:0:start\n", "stderr:6:half and half\n"]);
    // Written right before the job is marked done: must still be delivered.
    appendFileSync(p, encodeK8sRecord("stdout", Buffer.from("last"), false));
    done = true;
    await reading;
    assert.deepEqual(seen, ["stdout:0:start\n", "stderr:6:half and half\n", "stdout:20:last\n"]);
  });

  it("delivers output written between its last read and isDone returning true", async () => {
    const p = newPath();
    writeFileSync(p, encodeK8sRecord("stdout", Buffer.from("early"), false));
    let calls = 0;
    // The race the ordering guards against: the job writes its last output and exits while the follower,
    // having found nothing new, is asking whether the job is done.
    const isDone = async (): Promise<boolean> => {
      calls++;
      if (calls < 3) return false;
      appendFileSync(p, encodeK8sRecord("stderr", Buffer.from("final words"), false));
      return true;
    };
    const chunks = await collect(readLog(p, 0, { follow: true, isDone, pollMs: 10 }));
    assert.deepEqual(chunks.map((c) => `${c.stream}:${c.offset}:${c.data.toString()}`), ["stdout:0:early\n", "stderr:6:final words\n"]);
    assert.equal(calls, 3);
  });

  it("finds a file whose directory does not exist yet, by polling", async () => {
    const sub = path.join(dir, `later-${++fileSeq}`);
    const p = path.join(sub, "job.log");
    let done = false;
    const reading = collect(readLog(p, 0, { follow: true, isDone: () => done, pollMs: 30 }));
    await sleep(100);
    mkdirSync(sub);
    writeFileSync(p, encodeK8sRecord("stdout", Buffer.from("hello"), false));
    await sleep(200);
    done = true;
    assert.deepEqual((await reading).map((c) => c.data.toString()), ["hello\n"]);
  });

  it("ends as soon as it is told the job ended, without waiting for the poll interval (a job that wrote nothing)", async () => {
    const p = newPath();
    writeFileSync(p, encodeK8sRecord("stdout", Buffer.from("last"), false));
    let done = false;
    let wake: (() => void) | undefined;
    let subscribed = 0;
    const reading = collect(
      readLog(p, 0, {
        follow: true,
        isDone: () => done,
        pollMs: 60_000,
        subscribeDone: (w) => {
          subscribed++;
          wake = w;
          return () => (wake = undefined);
        },
      }),
    );
    await sleep(50); // at the end of the file, waiting
    done = true;
    wake!();
    const outcome = await Promise.race([reading, sleep(5_000).then(() => "still following after 5 s")]);
    assert.notEqual(outcome, "still following after 5 s");
    assert.deepEqual((outcome as LogChunk[]).map((c) => c.data.toString()), ["last\n"]);
    assert.equal(subscribed, 1);
    assert.equal(wake, undefined, "unsubscribed at the end");
  });

  it("wakes on file change notifications without waiting for the poll interval", async () => {
    const p = newPath();
    writeFileSync(p, "");
    const ac = new AbortController();
    const seenAt: number[] = [];
    const reading = (async () => {
      for await (const c of readLog(p, 0, { follow: true, signal: ac.signal, pollMs: 60_000 })) {
        void c;
        seenAt.push(Date.now());
      }
    })();
    await sleep(50);
    const writtenAt = Date.now();
    appendFileSync(p, encodeK8sRecord("stdout", Buffer.from("ping"), false));
    await sleep(300);
    ac.abort();
    await reading;
    assert.equal(seenAt.length, 1);
    assert.ok(seenAt[0]! - writtenAt < 250, `seen ${seenAt[0]! - writtenAt} ms after the write`);
  });

  it("watches again after falling behind: a write after it caught up wakes it without the poll interval", async () => {
    // 3 MiB at once: the follower's first reads fill their buffers (it is behind, so it pauses its watch).
    const { file, expected } = randomLog(400, 16_000);
    assert.ok(file.length > 3 << 20, `${file.length} bytes`);
    const p = newPath();
    writeFileSync(p, file);
    const ac = new AbortController();
    const chunks: LogChunk[] = [];
    let caughtUp: () => void = () => {};
    const atEnd = new Promise<void>((r) => (caughtUp = r));
    const late = encodeK8sRecord("stdout", Buffer.from("late"), false);
    const reading = (async () => {
      for await (const c of readLog(p, 0, { follow: true, signal: ac.signal, pollMs: 60_000 })) {
        chunks.push(c);
        if (c.offset + c.data.length === expected.bytes.length) caughtUp();
        if (c.data.toString() === "late\n") ac.abort();
      }
    })();
    await atEnd;
    await sleep(50); // waiting again, at the end of the file
    appendFileSync(p, late);
    const outcome = await Promise.race([reading, sleep(5_000).then(() => "still waiting 5 s after the write")]);
    ac.abort();
    assert.notEqual(outcome, "still waiting 5 s after the write");
    assertChunks(chunks, { bytes: Buffer.concat([expected.bytes, Buffer.from("late\n")]), streams: Buffer.concat([expected.streams, Buffer.from("ooooo")]) }, 0, 256 << 10);
  });

  it("marks a chunk `more` only when another follows before it waits: the last chunk before each wait has none", async () => {
    // Interleaved streams: a chunk per stream switch. A consumer holding chunks with `more` (api/log-stream.ts)
    // must never be left holding one while the reader waits for the job.
    const p = newPath();
    const first = randomLog(300, 200);
    writeFileSync(p, first.file);
    const ac = new AbortController();
    const seen: LogChunk[] = [];
    let caughtUp: () => void = () => {};
    let atEnd = new Promise<void>((r) => (caughtUp = r));
    let endOffset = first.expected.bytes.length;
    const reading = (async () => {
      for await (const c of readLog(p, 0, { follow: true, signal: ac.signal, pollMs: 60_000 })) {
        seen.push(c);
        if (c.offset + c.data.length === endOffset) caughtUp();
      }
    })();
    await atEnd;
    assert.equal(seen.at(-1)!.more, false, "the last chunk before the wait");
    assert.ok(seen.some((c) => c.more), "chunks in between have more");
    const second = randomLog(50, 200);
    atEnd = new Promise<void>((r) => (caughtUp = r));
    endOffset += second.expected.bytes.length;
    const before = seen.length;
    appendFileSync(p, second.file);
    await atEnd;
    ac.abort();
    await reading;
    assert.equal(seen.at(-1)!.more, false, "the last chunk before the second wait");
    assert.ok(seen.length > before);
  });

  it("never marks the last chunk of a read `more`, and every chunk marked `more` is followed by another", async () => {
    // Output ending exactly at a chunk boundary: the last chunk is completed inside the read, nothing pending.
    const exact = newPath();
    writeFileSync(exact, Buffer.concat(Array.from({ length: 20 }, () => encodeK8sRecord("stdout", Buffer.alloc(99, 0x78), false))));
    const two = await collect(readLog(exact, 0, { maxChunkBytes: 1000 }));
    assert.deepEqual(two.map((c) => [c.data.length, c.more]), [[1000, true], [1000, false]]);
    for (let round = 0; round < 20; round++) {
      const { file } = randomLog(200, 3000);
      const p = newPath();
      writeFileSync(p, file);
      const chunks = await collect(readLog(p, 0, { maxChunkBytes: 1000 + round * 500 }));
      assert.ok(chunks.length > 0);
      assert.equal(chunks.at(-1)!.more, false, `round ${round}: the last chunk`);
    }
  });

  it("gives many concurrent followers identical complete output", async () => {
    const { file, expected } = randomLog(200, 2000);
    const p = newPath();
    const writer = slowWriter(p, file, { pieces: 40, everyMs: 5 });
    await sleep(1);
    const followers = Array.from({ length: 25 }, (_, i) =>
      collect(readLog(p, 0, { follow: true, isDone: writer.done, pollMs: 30 + i, maxChunkBytes: 1000 + i * 100 })),
    );
    const results = await Promise.all(followers);
    results.forEach((chunks, i) => assertChunks(chunks, expected, 0, 1000 + i * 100));
  });

  it("waits for a missing file to appear", async () => {
    const p = newPath();
    const { file, expected } = randomLog(20, 100);
    let writer: ReturnType<typeof slowWriter> | null = null;
    const reading = collect(readLog(p, 0, { follow: true, isDone: () => writer?.done() ?? false, pollMs: 40 }));
    await sleep(200);
    writer = slowWriter(p, file, { pieces: 5, everyMs: 10 });
    assertChunks(await reading, expected, 0);
  });

  it("ends when the job is done and the file never appeared", async () => {
    const chunks = await collect(readLog(path.join(dir, "never.log"), 0, { follow: true, isDone: () => true }));
    assert.deepEqual(chunks, []);
  });

  it("ends promptly on abort and releases the file and watcher", async () => {
    const p = newPath();
    writeFileSync(p, encodeK8sRecord("stdout", Buffer.from("x"), false));
    const fdsBefore = readdirSync("/proc/self/fd").length;
    const ac = new AbortController();
    const opts: ReadLogOptions = { follow: true, signal: ac.signal, pollMs: 10_000 };
    const seen: LogChunk[] = [];
    const reading = (async () => {
      for await (const c of readLog(p, 0, opts)) seen.push(c);
    })();
    await sleep(100);
    assert.equal(seen.length, 1);
    const t0 = Date.now();
    ac.abort();
    await reading;
    assert.ok(Date.now() - t0 < 100, `ended ${Date.now() - t0} ms after abort`);
    await sleep(10);
    assert.equal(readdirSync("/proc/self/fd").length, fdsBefore, "file descriptors released");
  });

  it("releases the file when the consumer stops early", async () => {
    const p = newPath();
    writeFileSync(p, Buffer.concat([encodeK8sRecord("stdout", Buffer.from("x"), false), encodeK8sRecord("stderr", Buffer.from("y"), false)]));
    const fdsBefore = readdirSync("/proc/self/fd").length;
    for await (const c of readLog(p, 0, { follow: true })) {
      assert.equal(c.data.toString(), "x\n");
      break;
    }
    await sleep(10);
    assert.equal(readdirSync("/proc/self/fd").length, fdsBefore);
  });
});

describe("readLog: released chunks", () => {
  it("yields the same output when every chunk's buffer is handed back and reused by the next ones", async () => {
    const { file, expected } = randomLog(400, 20_000);
    const p = newPath();
    writeFileSync(p, file);
    const bytes: Buffer[] = [];
    const streams: Buffer[] = [];
    let offset = 0;
    const seen = new Set<ArrayBufferLike>();
    let reused = 0;
    for await (const c of readLog(p, 0, { maxChunkBytes: 65536 })) {
      assert.equal(c.offset, offset);
      if (seen.has(c.data.buffer)) reused++;
      seen.add(c.data.buffer);
      bytes.push(Buffer.from(c.data));
      streams.push(Buffer.alloc(c.data.length, streamLetter(c.stream)));
      offset += c.data.length;
      // Scribbled over, as a reused buffer will be: nothing yielded later may depend on these bytes.
      c.data.fill(0x21);
      releaseChunk(c);
    }
    assert.ok(Buffer.concat(bytes).equals(expected.bytes));
    assert.ok(Buffer.concat(streams).equals(expected.streams));
    assert.ok(reused > 0, "released buffers were reused");
  });
});
