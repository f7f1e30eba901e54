// A log chunk received in several buffers: decodeDataChunkParts (views, or the joined message when its layout
// is not the usual one) and followLogs writing such chunks, resuming inside them.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { JobletError } from "../shared/errors.js";
import { DataChunk, Stream } from "../shared/proto/joblet.js";
import { decodeDataChunkParts, encodeDataChunk, type DataChunkParts } from "../shared/wire-codec.js";
import { followLogs } from "./follow.js";

/** `bytes` cut into pieces of `size` bytes (views). */
function cut(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

test("decodeDataChunkParts: the payload as views of the parts, for every cut of encodeDataChunk's output", () => {
  const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));
  const wire = encodeDataChunk({ payload, stream: Stream.STDERR, offset: 5_000_000_000 });
  for (let size = 1; size <= wire.length; size++) {
    const got = decodeDataChunkParts(cut(wire, size));
    assert.equal(got.stream, Stream.STDERR, `parts of ${size}`);
    assert.equal(got.offset, 5_000_000_000, `parts of ${size}`);
    assert.deepEqual(Buffer.concat(got.payload), payload, `parts of ${size}`);
    assert.ok(got.payload.every((p) => p.length > 0), "no empty views");
  }
  const views = decodeDataChunkParts(cut(wire, 100));
  assert.ok(views.payload.every((p) => p.buffer === wire.buffer), "the header fits in the first part: no copy");
});

test("decodeDataChunkParts: another field after the payload, an empty chunk, a single part", () => {
  // The generated encoder writes the payload first: not the fast layout, decoded from the joined message.
  const generated = Buffer.from(DataChunk.encode({ payload: Buffer.from("hello world"), stream: Stream.STDOUT, offset: 7 }).finish());
  const a = decodeDataChunkParts(cut(generated, 4));
  assert.deepEqual([a.stream, a.offset, Buffer.concat(a.payload).toString()], [Stream.STDOUT, 7, "hello world"]);
  assert.deepEqual(decodeDataChunkParts([]), { stream: Stream.STREAM_UNSPECIFIED, offset: 0, payload: [] });
  const one = decodeDataChunkParts([encodeDataChunk({ payload: Buffer.from("x"), stream: Stream.STDOUT, offset: 0 })]);
  assert.deepEqual(Buffer.concat(one.payload).toString(), "x");
});

test("followLogs writes a chunk in several parts as its bytes in order, and resumes inside one", async () => {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (to: Buffer[]) =>
    new Writable({
      highWaterMark: 3,
      writev(chunks, cb) {
        for (const c of chunks) to.push(c.chunk as Buffer);
        setImmediate(cb);
      },
    });
  const parts = (text: string, offset: number, stream = Stream.STDOUT): DataChunkParts => ({ payload: cut(Buffer.from(text), 3), stream, offset });
  let calls = 0;
  const src = {
    async *logs(_id: string, from = 0) {
      calls++;
      if (calls === 1) {
        yield parts("abcdefgh", 0);
        yield parts("ERR", 8, Stream.STDERR);
        throw new JobletError("UNAVAILABLE", "lost");
      }
      assert.equal(from, 11);
      // The server restarts inside the last chunk written: the first 11 - 9 bytes are skipped.
      yield parts("RRxyz123", 9, Stream.STDERR);
      yield parts("tail", 17);
    },
  };
  const n = await followLogs(src, "j", { stdout: sink(out), stderr: sink(err), notes: sink([]) }, { retryDelaysMs: [1] });
  assert.equal(n, 8 + 3 + 6 + 4);
  assert.equal(Buffer.concat(out).toString(), "abcdefghtail");
  assert.equal(Buffer.concat(err).toString(), "ERRxyz123");
});

test("followLogs: output queued for stdout is flushed before stderr is written (2>&1 keeps the order)", async () => {
  const order: string[] = [];
  const sink = (name: string) =>
    new Writable({
      highWaterMark: 2,
      write(c: Buffer, _e, cb) {
        setTimeout(() => {
          // An empty write is how follow waits for a stream's writes in flight (io.ts, drained).
          if (c.length > 0) order.push(`${name}:${c.toString()}`);
          cb();
        }, 3);
      },
    });
  const chunk = (text: string, offset: number, stream: Stream): DataChunkParts => ({ payload: [Buffer.from(text)], stream, offset });
  const src = {
    async *logs() {
      yield chunk("o1", 0, Stream.STDOUT);
      yield chunk("o2", 2, Stream.STDOUT);
      yield chunk("e1", 4, Stream.STDERR);
      yield chunk("o3", 6, Stream.STDOUT);
    },
  };
  const out = sink("out");
  const err = sink("err");
  await followLogs(src, "j", { stdout: out, stderr: err, notes: sink("notes") });
  await Promise.all([new Promise((r) => out.end(r)), new Promise((r) => err.end(r))]);
  assert.deepEqual(order, ["out:o1", "out:o2", "err:e1", "out:o3"]);
});
