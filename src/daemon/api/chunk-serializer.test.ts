import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { DataChunk, Stream } from "../../shared/proto/joblet.js";
import { encodeDataChunk } from "../../shared/wire-codec.js";
import { DataChunkBatch, dataChunkSerializer } from "./chunk-serializer.js";
import { FRAME_BYTES, FRAME_INTO } from "./frame-reuse.js";

const cases: DataChunk[] = [
  { payload: Buffer.from("hello\n"), stream: Stream.STDOUT, offset: 0 },
  { payload: Buffer.from("err"), stream: Stream.STDERR, offset: 127 },
  { payload: randomBytes(65536), stream: Stream.STDOUT, offset: 2 ** 32 + 5 },
  { payload: randomBytes(300_000), stream: Stream.STDERR, offset: 1 },
  { payload: Buffer.alloc(0), stream: Stream.STREAM_UNSPECIFIED, offset: Number.MAX_SAFE_INTEGER },
  { payload: Buffer.alloc(0), stream: Stream.STREAM_UNSPECIFIED, offset: 0 },
  { payload: Buffer.from("x"), stream: Stream.UNRECOGNIZED, offset: 3 },
];

test("dataChunkSerializer: the same bytes as encodeDataChunk, which the generated decoder reads back", () => {
  const ser = dataChunkSerializer();
  for (const msg of cases) {
    const bytes = Buffer.from(ser(msg)); // a copy: the result is only valid until the next call
    assert.ok(bytes.equals(encodeDataChunk(msg)), `payload ${msg.payload.length}, offset ${msg.offset}`);
    const back = DataChunk.decode(bytes);
    assert.ok(Buffer.from(back.payload).equals(msg.payload));
    assert.equal(back.offset, msg.offset);
  }
});

test("dataChunkSerializer: plain results reuse one buffer (valid until the next call)", () => {
  const ser = dataChunkSerializer();
  const a = ser(cases[0]!);
  const b = ser(cases[1]!);
  assert.equal(a.buffer, b.buffer);
});

test("dataChunkSerializer [FRAME_INTO]: a gRPC frame (flag 0, big-endian length, message) in the given buffer", () => {
  const ser = dataChunkSerializer();
  const frame = Buffer.alloc(FRAME_BYTES);
  for (const msg of cases) {
    const out = ser[FRAME_INTO](msg, frame);
    const expected = encodeDataChunk(msg);
    assert.equal(out.length, 5 + expected.length);
    assert.equal(out[0], 0);
    assert.equal(out.readUInt32BE(1), expected.length);
    assert.ok(out.subarray(5).equals(expected));
    assert.equal(out.buffer === frame.buffer, out.length <= FRAME_BYTES, "the given buffer when it fits, a new one otherwise");
  }
});

test("dataChunkSerializer [FRAME_INTO]: a batch is its chunks' frames back to back, as separate writes would send them", () => {
  const ser = dataChunkSerializer();
  const frame = Buffer.alloc(FRAME_BYTES);
  const small = cases.filter((c) => c.payload.length < 1000);
  const one = (m: DataChunk) => Buffer.from(ser[FRAME_INTO](m, Buffer.alloc(FRAME_BYTES)));
  const out = ser[FRAME_INTO](new DataChunkBatch(small), frame);
  assert.ok(out.equals(Buffer.concat(small.map(one))));
  assert.equal(out.buffer, frame.buffer, "in the given buffer");
  // Larger than the buffer: a new one, the same bytes.
  const big = [cases[2]!, cases[3]!, cases[0]!];
  assert.ok(ser[FRAME_INTO](new DataChunkBatch(big), frame).equals(Buffer.concat(big.map(one))));
});

test("dataChunkSerializer: a batch cannot go through the plain path (grpc-js would prefix it as one message)", () => {
  assert.throws(() => dataChunkSerializer()(new DataChunkBatch(cases) as unknown as DataChunk), /only be framed/);
});
