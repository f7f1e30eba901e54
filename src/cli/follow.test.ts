import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { JobletError } from "../shared/errors.js";
import { Stream, type DataChunk } from "../shared/proto/joblet.js";
import { followLogs, type LogSource } from "./follow.js";
import { memoryIo } from "./test-support/memory-io.js";

const chunk = (text: string | Buffer, offset: number, stream = Stream.STDOUT): DataChunk => ({
  payload: Buffer.isBuffer(text) ? text : Buffer.from(text),
  stream,
  offset,
});

/** A source that plays `attempts[i]` on the i-th call; a JobletError entry is thrown at that point. */
function scripted(attempts: Array<Array<DataChunk | JobletError>>): LogSource & { offsets: number[] } {
  const offsets: number[] = [];
  return {
    offsets,
    async *logs(_id: string, fromOffset = 0) {
      offsets.push(fromOffset);
      const items = attempts.shift() ?? [];
      for (const item of items) {
        if (item instanceof JobletError) throw item;
        yield item;
      }
    },
  };
}

const sinks = () => {
  const io = memoryIo();
  return { io, sinks: { stdout: io.stdout, stderr: io.stderr, notes: io.stderr } };
};

test("stdout and stderr chunks go to their own stream, bytes unchanged", async () => {
  const bytes = (sink: Buffer[]) => new Writable({ write: (c: Buffer, _e, cb) => (sink.push(c), cb()) });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const binary = Buffer.from([0, 255, 10, 13, 0xc3]);
  const src = scripted([[chunk("a\n", 0), chunk("E1\n", 2, Stream.STDERR), chunk(binary, 5), chunk("b", 10)]]);
  const n = await followLogs(src, "j", { stdout: bytes(out), stderr: bytes(err), notes: bytes([]) });
  assert.equal(n, 11);
  assert.deepEqual(Buffer.concat(out), Buffer.concat([Buffer.from("a\n"), binary, Buffer.from("b")]));
  assert.deepEqual(Buffer.concat(err), Buffer.from("E1\n"));
});

test("a slow reader slows the source: no chunk is pulled while more than writeAheadBytes are queued", async () => {
  let pulled = 0;
  let maxAhead = 0;
  let written = 0;
  const slow = new Writable({
    highWaterMark: 4,
    write(c: Buffer, _e, cb) {
      setTimeout(() => {
        written += c.length;
        cb();
      }, 2);
    },
  });
  const src: LogSource = {
    async *logs() {
      for (let i = 0; i < 50; i++) {
        pulled += 8;
        maxAhead = Math.max(maxAhead, pulled - written);
        yield chunk("12345678", i * 8);
      }
    },
  };
  const { io } = sinks();
  await followLogs(src, "j", { stdout: slow, stderr: io.stderr, notes: io.stderr }, { writeAheadBytes: 24 });
  await new Promise((r) => slow.end(r));
  assert.equal(written, 400);
  // At most 24 queued, one chunk being written and the one just pulled.
  assert.ok(maxAhead <= 24 + 16, `ran ${maxAhead} bytes ahead of the reader`);
});

test("many outages in a row are survived while within the budget (a crash loop)", async () => {
  const { io, sinks: s } = sinks();
  const drop = () => new JobletError("UNAVAILABLE", "restarting");
  const src = scripted([[chunk("a", 0), drop()], [drop()], [drop()], [chunk("b", 1), drop()], [drop()], [drop()], [drop()], [chunk("c", 2)]]);
  await followLogs(src, "j", s, { retryDelaysMs: [1, 2], retryBudgetMs: 10_000 });
  assert.equal(io.out(), "abc");
  assert.deepEqual(src.offsets, [0, 1, 1, 1, 2, 2, 2, 2]);
});

test("after a dropped connection it resumes from the next offset and skips bytes already written", async () => {
  const { io, sinks: s } = sinks();
  const drop = new JobletError("UNAVAILABLE", "connection dropped");
  const src = scripted([
    [chunk("hello ", 0), drop],
    // The server restarts inside the first chunk: "lo " overlaps and must not be repeated.
    [chunk("lo world", 3), chunk("!\n", 11, Stream.STDERR)],
  ]);
  await followLogs(src, "j", s, { retryDelaysMs: [1] });
  assert.equal(io.out(), "hello world");
  assert.match(io.err(), /reconnecting/);
  assert.match(io.err(), /!\n$/);
  assert.deepEqual(src.offsets, [0, 6]);
});

test("a jump forward in offsets (output dropped by the server's log cap) is announced and resume still works", async () => {
  const { io, sinks: s } = sinks();
  const drop = new JobletError("UNAVAILABLE", "connection dropped");
  const src = scripted([[chunk("head\n", 0), chunk("tail\n", 1000), drop], [chunk("more\n", 1005)]]);
  await followLogs(src, "j", s, { retryDelaysMs: [1] });
  assert.equal(io.out(), "head\ntail\nmore\n");
  assert.match(io.err(), /995 bytes of job j's output were dropped/);
  assert.deepEqual(src.offsets, [0, 1005], "resumes after the gap, offsets still trusted");
});

test("a server without offsets (all 0) still gets all its output written", async () => {
  const { io, sinks: s } = sinks();
  await followLogs(scripted([[chunk("a", 0), chunk("b", 0), chunk("c", 0)]]), "j", s);
  assert.equal(io.out(), "abc");
});

test("the first attempt failing is not retried unless the daemon was reached before", async () => {
  const down = new JobletError("UNAVAILABLE", "connection refused");
  await assert.rejects(followLogs(scripted([[down], []]), "j", sinks().sinks, { retryDelaysMs: [1] }), /connection refused/);
  const src = scripted([[down], [chunk("ok", 0)]]);
  const { io, sinks: s } = sinks();
  await followLogs(src, "j", s, { reachable: true, retryDelaysMs: [1] });
  assert.equal(io.out(), "ok");
});

test("retries are bounded by a time budget, and other errors are not retried", async () => {
  const drop = () => new JobletError("UNAVAILABLE", "gone");
  const outages = Array.from({ length: 50 }, () => [drop()]);
  const started = Date.now();
  await assert.rejects(followLogs(scripted([[chunk("x", 0), drop()], ...outages]), "j", sinks().sinks, { retryDelaysMs: [10], retryBudgetMs: 60 }), /gone/);
  assert.ok(Date.now() - started < 1000, "gives up once the budget is spent");
  const nf = new JobletError("NOT_FOUND", "no such job");
  await assert.rejects(followLogs(scripted([[chunk("x", 0), nf], [chunk("y", 1)]]), "j", sinks().sinks, { retryDelaysMs: [1] }), /no such job/);
});

test("a sink without writev (stdout redirected to a file) gets each multi-part chunk as one write, bytes unchanged", async () => {
  const writes: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push(Buffer.from(chunk));
      cb();
    },
  });
  const parts = [Buffer.from("ab"), Buffer.from("cde"), Buffer.from("f")];
  const src: LogSource = {
    async *logs() {
      yield { stream: Stream.STDOUT, offset: 0, payload: parts } as unknown as DataChunk;
    },
  };
  await followLogs(src, "j", { stdout: sink, stderr: sink, notes: sink });
  assert.deepEqual(writes.map(String), ["abcdef"]);
});

test("two streams into one destination keep the job's order: what one queued reaches it before the other's next write", async () => {
  // stdout completes its writes late, stderr at once: without waiting for stdout's write in flight, stderr's
  // next line would land first (as with `2>&1` into a pipe, where a write is in flight until the reader reads).
  const landed: string[] = [];
  const into = (delayMs: number) =>
    new Writable({
      write(c: Buffer, _e, cb) {
        setTimeout(() => {
          landed.push(c.toString());
          cb();
        }, delayMs);
      },
    });
  const items: DataChunk[] = [];
  for (let i = 0; i < 40; i++) items.push(chunk(`o${i}\n`, items.length * 4, Stream.STDOUT), chunk(`e${i}\n`, items.length * 4 + 4, Stream.STDERR));
  items.forEach((c, i) => (c.offset = i === 0 ? 0 : items[i - 1]!.offset + items[i - 1]!.payload.length));
  const out = into(5);
  const err = into(0);
  await followLogs(scripted([items]), "j", { stdout: out, stderr: err, notes: new Writable({ write: (_c, _e, cb) => cb() }) });
  await Promise.all([new Promise((r) => out.end(r)), new Promise((r) => err.end(r))]);
  assert.equal(landed.join(""), items.map((c) => Buffer.from(c.payload).toString()).join(""));
});

test("a turn's writes to a sink that can write several buffers at once leave together, and nothing stays held", async () => {
  let writevCalls = 0;
  const got: Buffer[] = [];
  // Writes complete at once, as into a pipe with room (Node's stream then writes each buffer by itself).
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      got.push(c);
      cb();
    },
    writev(cs: { chunk: Buffer }[], cb) {
      writevCalls++;
      for (const c of cs) got.push(c.chunk);
      cb();
    },
  });
  const items = Array.from({ length: 1000 }, (_, i) => chunk(`line ${i}\n`, 0));
  let offset = 0;
  for (const c of items) {
    c.offset = offset;
    offset += c.payload.length;
  }
  // One source read's worth of chunks, handed out without waiting (as rnx decodes them from one DATA frame).
  await followLogs(scripted([items]), "j", { stdout: sink, stderr: sink, notes: sink });
  assert.equal((sink as Writable & { writableCorked: number }).writableCorked, 0, "released when following ends");
  await new Promise((r) => sink.end(r));
  assert.equal(Buffer.concat(got).toString(), items.map((c) => Buffer.from(c.payload).toString()).join(""));
  assert.ok(writevCalls > 0 && writevCalls < 50, `1000 chunks in ${writevCalls} writev calls`);
});
