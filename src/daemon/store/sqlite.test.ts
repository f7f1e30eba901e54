import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import type { JobRecord } from "./record.js";
import { SqliteJobStore } from "./sqlite.js";

const job = (id: string, over: Partial<JobRecord> = {}): JobRecord => ({
  id,
  command: "echo",
  args: ["a b", "--flag", ""],
  limits: { maxCpuPercent: 150, cpuCores: "0-1", maxMemoryMB: 64, maxIoBps: 1_000_000 },
  status: "INITIALIZING",
  createTime: "2026-11-27T20:00:00.000Z",
  oomKilled: false,
  stopRequested: false,
  ...over,
});

test("records round-trip, including optional fields and argument lists", () => {
  const s = new SqliteJobStore(":memory:");
  const j = job("aaaaaaaa-0000-0000-0000-000000000001");
  s.insert(j);
  assert.deepEqual(s.get(j.id), j);
  s.update(j.id, { status: "RUNNING", startTime: "2026-11-27T20:00:01.000Z" });
  s.update(j.id, {
    status: "FAILED",
    endTime: "2026-11-27T20:00:02.000Z",
    exitCode: 137,
    signal: "SIGKILL",
    oomKilled: true,
    reason: "out of memory",
    usage: { cpuTimeNs: 5, memoryPeakBytes: 6, ioReadBytes: 7, ioWriteBytes: 8 },
  });
  assert.deepEqual(s.get(j.id), {
    ...j,
    status: "FAILED",
    startTime: "2026-11-27T20:00:01.000Z",
    endTime: "2026-11-27T20:00:02.000Z",
    exitCode: 137,
    signal: "SIGKILL",
    oomKilled: true,
    reason: "out of memory",
    usage: { cpuTimeNs: 5, memoryPeakBytes: 6, ioReadBytes: 7, ioWriteBytes: 8 },
  });
  assert.equal(s.get("nope"), undefined);
});

test("prefix lookup, order, and unfinished jobs", () => {
  const s = new SqliteJobStore(":memory:");
  s.insert(job("ab000000-0000-0000-0000-000000000002"));
  s.insert(job("ab110000-0000-0000-0000-000000000001", { status: "COMPLETED" }));
  s.insert(job("cd000000-0000-0000-0000-000000000003", { status: "RUNNING" }));
  assert.deepEqual(s.idsWithPrefix("ab", 10), ["ab000000-0000-0000-0000-000000000002", "ab110000-0000-0000-0000-000000000001"]);
  assert.deepEqual(s.idsWithPrefix("ab1", 10), ["ab110000-0000-0000-0000-000000000001"]);
  assert.deepEqual(s.idsWithPrefix("ef", 10), []);
  assert.deepEqual(
    s.list().map((j) => j.id[1]),
    ["b", "b", "d"],
  );
  assert.equal(s.list()[0]!.id, "ab000000-0000-0000-0000-000000000002", "insertion order, not id order");
  assert.deepEqual(s.listUnfinished().map((j) => j.status), ["INITIALIZING", "RUNNING"]);
  assert.equal(s.countUnfinished(), 2);
});

test("records survive closing and reopening the file", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-store-"));
  try {
    const file = path.join(dir, "joblet.db");
    const a = new SqliteJobStore(file);
    a.insert(job("ee000000-0000-0000-0000-000000000001"));
    a.close();
    const b = new SqliteJobStore(file);
    assert.equal(b.get("ee000000-0000-0000-0000-000000000001")?.command, "echo");
    b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
