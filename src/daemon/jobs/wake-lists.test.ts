import assert from "node:assert/strict";
import { test } from "node:test";
import { WakeLists } from "./wake-lists.js";

test("a job's callbacks run once when it is woken; other jobs' do not; the list is then gone", () => {
  const w = new WakeLists();
  const calls: string[] = [];
  w.add("a", () => calls.push("a1"));
  w.add("a", () => calls.push("a2"));
  w.add("b", () => calls.push("b1"));
  w.wake("a");
  w.wake("a");
  assert.deepEqual(calls, ["a1", "a2"]);
  assert.equal(w.size, 1);
});

test("a removed callback is not called; removal says whether it was still waiting and drops an empty list", () => {
  const w = new WakeLists();
  let called = false;
  const remove = w.add("a", () => (called = true));
  assert.equal(remove(), true);
  assert.equal(remove(), false);
  assert.equal(w.size, 0);
  w.wake("a");
  assert.equal(called, false);
  const late = w.add("b", () => undefined);
  w.wake("b");
  assert.equal(late(), false, "already woken");
});
