// The message decoder alone: every way DATA chunks can cut the stream of length-prefixed messages.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MessageDecoder, messagePrefix } from "./frame.js";
import { GrpcStatus, RpcError } from "./status.js";

/** The wire form of `messages`, one after another. */
function wire(...messages: Buffer[]): Buffer {
  return Buffer.concat(messages.flatMap((m) => [messagePrefix(m.length), m]));
}

/** Feeds `chunks` in order; returns every message decoded, as strings. */
function feed(decoder: MessageDecoder, chunks: Buffer[]): string[] {
  return chunks.flatMap((c) => decoder.push(c)).map((m) => m.toString());
}

describe("MessageDecoder", () => {
  test("several messages in one chunk come out in order, as views of it", () => {
    const chunk = wire(Buffer.from("one"), Buffer.from("two"), Buffer.from("three"));
    const d = new MessageDecoder(1024);
    const out = d.push(chunk);
    assert.deepEqual(out.map(String), ["one", "two", "three"]);
    assert.equal(out[0]!.buffer, chunk.buffer, "a message inside one chunk is not copied");
    assert.ok(d.idle);
  });

  test("a stream cut at every possible byte decodes the same", () => {
    const all = wire(Buffer.from("alpha"), Buffer.alloc(0), Buffer.from("gamma-gamma"), Buffer.from("d"));
    for (let size = 1; size <= all.length; size++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < all.length; i += size) chunks.push(all.subarray(i, i + size));
      const d = new MessageDecoder(1024);
      assert.deepEqual(feed(d, chunks), ["alpha", "", "gamma-gamma", "d"], `chunks of ${size} bytes`);
      assert.ok(d.idle, `chunks of ${size} bytes: nothing left over`);
    }
  });

  test("a prefix split across chunks (1 + 4 bytes, 3 + 2 bytes)", () => {
    const all = wire(Buffer.from("hello"));
    for (const cut of [1, 3, 4]) {
      const d = new MessageDecoder(1024);
      assert.deepEqual(d.push(all.subarray(0, cut)), []);
      assert.equal(d.idle, false, "a partial prefix is pending");
      assert.deepEqual(feed(d, [all.subarray(cut)]), ["hello"]);
    }
  });

  test("a message spanning chunks is gathered into one buffer of its exact size", () => {
    const body = Buffer.alloc(100_000, 7);
    const all = wire(body);
    const d = new MessageDecoder(1 << 20);
    assert.deepEqual(d.push(all.subarray(0, 16_384)), []);
    assert.deepEqual(d.push(all.subarray(16_384, 50_000)), []);
    const [m] = d.push(all.subarray(50_000));
    assert.equal(m!.length, 100_000);
    assert.ok(m!.equals(body));
  });

  test("an empty message alone and an empty chunk", () => {
    const d = new MessageDecoder(10);
    assert.deepEqual(feed(d, [Buffer.alloc(0), wire(Buffer.alloc(0)), Buffer.alloc(0)]), [""]);
  });

  test("a message over the limit fails with RESOURCE_EXHAUSTED before its body arrives", () => {
    const d = new MessageDecoder(10);
    assert.deepEqual(feed(d, [wire(Buffer.alloc(10))]), ["\0".repeat(10)], "exactly the limit is fine");
    assert.throws(
      () => d.push(messagePrefix(11)),
      (e: unknown) => e instanceof RpcError && e.code === GrpcStatus.RESOURCE_EXHAUSTED && /11 vs\. 10/.test(e.details),
    );
  });

  test("a compressed message (flag 1) is a clear INTERNAL error; any other flag too", () => {
    const compressed = wire(Buffer.from("zz"));
    compressed[0] = 1;
    assert.throws(() => new MessageDecoder(10).push(compressed), (e: unknown) => e instanceof RpcError && e.code === GrpcStatus.INTERNAL && /compressed/.test(e.details));
    const odd = wire(Buffer.from("zz"));
    odd[0] = 2;
    assert.throws(() => new MessageDecoder(10).push(odd), (e: unknown) => e instanceof RpcError && /flag 2/.test(e.details));
  });

  test("pushParts hands a message spanning chunks out as views of them, none copied; the same stream as push", () => {
    const body = Buffer.from("x".repeat(40_000) + "y".repeat(40_000));
    const all = wire(Buffer.from("a"), body, Buffer.alloc(0), Buffer.from("zz"));
    for (const size of [1, 7, 16_384, all.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < all.length; i += size) chunks.push(all.subarray(i, i + size));
      const d = new MessageDecoder(1 << 20);
      const messages = chunks.flatMap((c) => d.pushParts(c));
      assert.deepEqual(messages.map((parts) => Buffer.concat(parts).toString()), ["a", body.toString(), "", "zz"], `chunks of ${size} bytes`);
      for (const parts of messages) {
        for (const p of parts) {
          assert.ok(p.length > 0, "no empty views");
          assert.equal(p.buffer, all.buffer, "a view of the received memory");
        }
      }
      assert.ok(d.idle);
    }
  });
});
