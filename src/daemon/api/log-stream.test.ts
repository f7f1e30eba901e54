import assert from "node:assert/strict";
import { test } from "node:test";
import { DATA_CHUNK_HEAD_BYTES } from "../../shared/wire-codec.js";
import { DEFAULT_MAX_CHUNK_BYTES } from "../logs/reader.js";
import { logChunkBytes, SendAhead } from "./log-stream.js";

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
