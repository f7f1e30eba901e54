import assert from "node:assert/strict";
import { test } from "node:test";
import { BufferPool } from "./chunk-pool.js";

test("BufferPool: a given-back buffer is handed out again, prefixes of it included", () => {
  const pool = new BufferPool(1024, 2);
  const a = pool.take();
  assert.equal(a.length, 1024);
  pool.give(a.subarray(0, 10));
  assert.equal(pool.size, 1);
  const b = pool.take();
  assert.equal(b.buffer, a.buffer, "the same memory");
  assert.equal(b.length, 1024, "whole again");
  assert.equal(pool.size, 0);
  assert.notEqual(pool.take().buffer, a.buffer, "an empty pool allocates");
});

test("BufferPool: ignores foreign buffers, views not at offset 0, double gives and gives past capacity", () => {
  const pool = new BufferPool(1024, 2);
  pool.give(Buffer.alloc(512));
  pool.give(Buffer.alloc(2048).subarray(0, 1024));
  const a = pool.take();
  pool.give(a.subarray(1));
  assert.equal(pool.size, 0, "wrong sizes and inner views are not taken");
  pool.give(a);
  pool.give(a);
  assert.equal(pool.size, 1, "a buffer given twice is kept once (two chunks must never share it)");
  pool.give(Buffer.allocUnsafeSlow(1024));
  pool.give(Buffer.allocUnsafeSlow(1024));
  assert.equal(pool.size, 2, "at most capacity kept");
});
