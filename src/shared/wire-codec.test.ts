import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { DataChunk, Stream, UploadKind, UploadReq } from "./proto/joblet.js";
import { decodeDataChunk, encodeDataChunk, encodeUploadReq, withBulkEncoders } from "./wire-codec.js";
import { JobletServiceService } from "./proto/joblet.js";

test("encodeUploadReq: data messages decode as the generated decoder reads them, any length", () => {
  for (const len of [0, 1, 127, 128, 16_383, 16_384, 262_144, 2_097_153]) {
    const data = randomBytes(len);
    const bytes = encodeUploadReq({ part: { $case: "data", data } });
    assert.deepEqual(bytes, Buffer.from(UploadReq.encode({ part: { $case: "data", data } }).finish()), `length ${len}: same bytes as the generated encoder`);
    const back = UploadReq.decode(bytes);
    assert.equal(back.part?.$case, "data");
    assert.ok(Buffer.from((back.part as { data: Uint8Array }).data).equals(data), `length ${len}`);
  }
});

test("encodeUploadReq: other parts go through the generated encoder", () => {
  const msg: UploadReq = { part: { $case: "entry", entry: { path: "a/b", kind: UploadKind.FILE, mode: 0o644, size: 3, linkTarget: "" } } };
  assert.deepEqual(UploadReq.decode(encodeUploadReq(msg)), msg);
});

test("encodeDataChunk: round-trips every field, offsets past 4 GiB and up to 2^53-1 included", () => {
  const cases: DataChunk[] = [
    { payload: Buffer.from("hello\n"), stream: Stream.STDOUT, offset: 0 },
    { payload: Buffer.from("err"), stream: Stream.STDERR, offset: 127 },
    { payload: randomBytes(300_000), stream: Stream.STDOUT, offset: 2 ** 32 + 5 },
    { payload: Buffer.alloc(0), stream: Stream.STREAM_UNSPECIFIED, offset: Number.MAX_SAFE_INTEGER },
    { payload: Buffer.alloc(0), stream: Stream.STREAM_UNSPECIFIED, offset: 0 },
  ];
  for (const c of cases) {
    const back = DataChunk.decode(encodeDataChunk(c));
    assert.equal(back.stream, c.stream);
    assert.equal(back.offset, c.offset);
    assert.ok(Buffer.from(back.payload).equals(Buffer.from(c.payload)));
  }
});

test("withBulkEncoders replaces only the two bulk serializers", () => {
  const def = withBulkEncoders(JobletServiceService);
  assert.equal(def.runJobWithUploads.requestSerialize, encodeUploadReq);
  assert.equal(def.getJobLogs.responseSerialize, encodeDataChunk);
  assert.equal(def.runJob, JobletServiceService.runJob);
  assert.equal(def.getJobLogs.requestDeserialize, JobletServiceService.getJobLogs.requestDeserialize);
});

test("decodeDataChunk: reads what both encoders write as the generated decoder does, the payload a view", () => {
  const cases: DataChunk[] = [
    { payload: Buffer.from("hello\n"), stream: Stream.STDOUT, offset: 0 },
    { payload: randomBytes(70_000), stream: Stream.STDERR, offset: 2 ** 32 + 5 },
    { payload: Buffer.alloc(0), stream: Stream.STREAM_UNSPECIFIED, offset: Number.MAX_SAFE_INTEGER },
  ];
  for (const c of cases) {
    for (const bytes of [encodeDataChunk(c), Buffer.from(DataChunk.encode(c).finish())]) {
      const got = decodeDataChunk(bytes);
      assert.deepEqual(got, DataChunk.decode(bytes));
      assert.ok(Buffer.isBuffer(got.payload));
      if (c.payload.length > 0) assert.equal(got.payload.buffer, bytes.buffer, "the payload is not copied");
    }
  }
});

test("decodeDataChunk: unknown fields are skipped", () => {
  // Field 7 (varint 300) and field 9 (length-delimited "xy") around a real chunk.
  const unknown = Buffer.from([7 << 3, 0xac, 0x02, (9 << 3) | 2, 2, 0x78, 0x79]);
  const bytes = Buffer.concat([unknown, encodeDataChunk({ payload: Buffer.from("ok"), stream: Stream.STDOUT, offset: 9 })]);
  assert.deepEqual(decodeDataChunk(bytes), { payload: Buffer.from("ok"), stream: Stream.STDOUT, offset: 9 });
});
