import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { GrowthWaiter } from "./growth-waiter.js";

const dir = mkdtempSync(path.join(tmpdir(), "joblet-growth-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A waiter watching a new empty file `name` (and the file's path), with polls every `pollMs`. */
function watched(name: string, pollMs: number): { w: GrowthWaiter; p: string } {
  const p = path.join(dir, name);
  writeFileSync(p, "");
  const w = new GrowthWaiter(p, pollMs, undefined);
  w.watchFor(true);
  return { w, p };
}

/** Resolves with how a wait ended within `ms`: "woke" or "timeout". */
async function waitWithin(w: GrowthWaiter, ms: number): Promise<"woke" | "timeout"> {
  return Promise.race([w.wait().then(() => "woke" as const), sleep(ms).then(() => "timeout" as const)]);
}

describe("GrowthWaiter", () => {
  it("wakes on a write to the watched file, long before the poll interval", async () => {
    const { w, p } = watched("a.log", 60_000);
    const waiting = waitWithin(w, 2_000);
    await sleep(20);
    appendFileSync(p, "x");
    assert.equal(await waiting, "woke");
    w.close();
  });

  it("after pause(), the next wait watches again and returns at once; later waits wait for a write", async () => {
    const { w, p } = watched("b.log", 60_000);
    w.pause();
    appendFileSync(p, "written while paused");
    await sleep(50); // an event, had it been queued, would have been delivered by now
    // Returns at once (the caller must read again: the write above is found by reading, not by an event).
    assert.equal(await waitWithin(w, 100), "woke");
    // Nothing new since: this wait really waits, and a write ends it.
    const waiting = waitWithin(w, 2_000);
    const early = await Promise.race([waiting, sleep(100).then(() => "still waiting")]);
    assert.equal(early, "still waiting");
    appendFileSync(p, "y");
    assert.equal(await waiting, "woke");
    w.close();
  });

  it("ends a wait at the poll interval when nothing is written", async () => {
    const { w } = watched("c.log", 30);
    w.pause();
    await w.wait(); // re-arms
    const t0 = performance.now();
    await w.wait();
    assert.ok(performance.now() - t0 >= 25, `waited ${performance.now() - t0} ms`);
    w.close();
  });
});
