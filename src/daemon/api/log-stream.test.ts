import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import type { ServerWritableStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { Stream, type DataChunk, type GetJobLogsReq } from "../../shared/proto/joblet.js";
import { DATA_CHUNK_HEAD_BYTES } from "../../shared/wire-codec.js";
import type { JobService } from "../jobs/service.js";
import { DEFAULT_MAX_CHUNK_BYTES, type LogChunk } from "../logs/reader.js";
import { DataChunkBatch, GRPC_HEADER_BYTES } from "./chunk-serializer.js";
import { FRAME_BYTES, installFrameReuse } from "./frame-reuse.js";
import { batchBytesLimit, logChunkBytes, SendAhead, streamLogs } from "./log-stream.js";

test("chunks fit the server's send limit: the reader's size under the default 4 MiB, less under a small limit", () => {
  assert.equal(logChunkBytes(4 << 20), DEFAULT_MAX_CHUNK_BYTES);
  assert.equal(logChunkBytes(1024), 1024 - DATA_CHUNK_HEAD_BYTES, "the smallest limit the config accepts");
  assert.equal(logChunkBytes(DEFAULT_MAX_CHUNK_BYTES + DATA_CHUNK_HEAD_BYTES), DEFAULT_MAX_CHUNK_BYTES);
  assert.equal(logChunkBytes(DEFAULT_MAX_CHUNK_BYTES), DEFAULT_MAX_CHUNK_BYTES - DATA_CHUNK_HEAD_BYTES);
});

test("SendAhead waits only while more than its limit is unsent, and wakes when enough was sent", async () => {
  const ahead = new SendAhead({ bytes: 100, messages: 1000 }, new AbortController().signal);
  ahead.add(100);
  assert.equal(ahead.room(), undefined, "at the limit: no wait");
  ahead.add(1);
  const room = ahead.room();
  assert.ok(room instanceof Promise, "over the limit: a wait");
  let woke = false;
  void room.then(() => (woke = true));
  ahead.sent(0);
  await new Promise((r) => setImmediate(r));
  assert.equal(woke, false, "still over the limit");
  ahead.sent(1);
  await new Promise((r) => setImmediate(r));
  assert.equal(woke, true, "back at the limit");
});

test("SendAhead also waits while more than its message limit are unsent, whatever their size", async () => {
  const ahead = new SendAhead({ bytes: 1 << 20, messages: 2 }, new AbortController().signal);
  for (let i = 0; i < 3; i++) ahead.add(1);
  const room = ahead.room();
  assert.ok(room instanceof Promise, "3 one-byte messages over a limit of 2");
  ahead.sent(1);
  await room;
  assert.equal(ahead.room(), undefined);
});

test("SendAhead's wait ends when the call is aborted (a client gone mid-stream never completes its writes)", async () => {
  const abort = new AbortController();
  const ahead = new SendAhead({ bytes: 10, messages: 1000 }, abort.signal);
  ahead.add(11);
  const room = ahead.room();
  assert.ok(room);
  abort.abort();
  await room;
  assert.equal(ahead.room(), undefined, "after the abort nothing waits");
});

test("one write carries at most a pooled frame, and no more than grpc-js lets through under the send limit", () => {
  assert.equal(batchBytesLimit(4 << 20), FRAME_BYTES);
  assert.equal(batchBytesLimit(1024), 1024 + GRPC_HEADER_BYTES);
});

/** What a fake GetJobLogs call was handed: each write's DataChunks, and whether it ended. */
interface Written {
  writes: DataChunk[][];
  ended: boolean;
}

/**
 * Runs streamLogs on a fake call (a viewer's certificate) whose output is `chunks`, produced by `source`
 * (which may wait between chunks); writes complete on the next turn of the event loop, as grpc-js's do.
 */
async function streamFake(source: (written: Written) => AsyncGenerator<LogChunk>): Promise<Written> {
  assert.equal(installFrameReuse(), true);
  const written: Written = { writes: [], ended: false };
  const call = Object.assign(new EventEmitter(), {
    request: { id: "job", fromOffset: 0 },
    getAuthContext: () => ({ sslPeerCertificate: { subject: { CN: "t", OU: "viewer" }, serialNumber: "01" } }),
    write: (msg: DataChunk | DataChunkBatch, cb: () => void) => {
      written.writes.push(msg instanceof DataChunkBatch ? [...msg.chunks] : [msg]);
      setImmediate(cb);
      return true;
    },
    end: () => (written.ended = true),
  });
  const jobs = {
    logs: () => source(written),
    status: () => {
      throw new Error("no record");
    },
  } as unknown as JobService;
  await streamLogs(call as unknown as ServerWritableStream<GetJobLogsReq, DataChunk>, {
    jobs,
    log: { info: () => undefined } as unknown as Logger,
    onCall: () => undefined,
    revoked: new Set<string>(),
    maxSendMsgSize: 4 << 20,
  });
  return written;
}

test("chunks the reader has more after go out together: thousands of one-line chunks in a few writes, in order", async () => {
  const n = 5000;
  const chunks: LogChunk[] = Array.from({ length: n }, (_, i) => ({
    stream: i % 2 ? "stderr" : "stdout",
    offset: i * 100,
    data: Buffer.alloc(100, 48 + (i % 10)),
    more: i < n - 1,
  }));
  const w = await streamFake(async function* () {
    yield* chunks;
  });
  assert.ok(w.ended);
  const frame = GRPC_HEADER_BYTES + DATA_CHUNK_HEAD_BYTES + 100;
  assert.ok(w.writes.length <= Math.ceil((n * frame) / (FRAME_BYTES / 2)), `${n} chunks in ${w.writes.length} writes`);
  for (const msgs of w.writes) assert.ok(msgs.length * frame <= FRAME_BYTES, `a write of ${msgs.length} chunks fits a frame`);
  const flat = w.writes.flat();
  assert.equal(flat.length, n);
  flat.forEach((m, i) => {
    assert.equal(m.offset, i * 100);
    assert.equal(m.stream, i % 2 ? Stream.STDERR : Stream.STDOUT);
    assert.ok(Buffer.from(m.payload).equals(chunks[i]!.data));
  });
});

test("a chunk without `more` is written before the reader goes on (a follower's output is never held back)", async () => {
  let heldBack = false;
  const w = await streamFake(async function* (written) {
    yield { stream: "stdout", offset: 0, data: Buffer.from("a\n"), more: true };
    yield { stream: "stderr", offset: 2, data: Buffer.from("b\n"), more: false };
    // The reader would now wait for the job: both chunks must already be on their way, in one write.
    heldBack = written.writes.flat().length !== 2;
    yield { stream: "stdout", offset: 4, data: Buffer.from(Buffer.alloc(DEFAULT_MAX_CHUNK_BYTES, 120)), more: false };
  });
  assert.equal(heldBack, false, "the chunks before the wait were written");
  assert.deepEqual(w.writes.map((m) => m.length), [2, 1]);
});
