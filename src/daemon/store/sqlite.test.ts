import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { test } from "node:test";
import type { JobRecord } from "./record.js";
import { SqliteJobStore } from "./sqlite.js";

const require = createRequire(import.meta.url);

const job = (id: string, over: Partial<JobRecord> = {}): JobRecord => ({
  id,
  command: "echo",
  args: ["a b", "--flag", ""],
  limits: { maxCpuPercent: 150, cpuCores: "0-1", maxMemoryMB: 64, maxIoBps: 1_000_000 },
  status: "INITIALIZING",
  createTime: "2026-11-27T20:00:00.000Z",
  oomKilled: false,
  stopRequested: false,
  timeoutMs: 0,
  timedOut: false,
  workdir: "",
  network: "host",
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

test("pruning picks finished jobs beyond the newest N and those that ended too long ago, never unfinished ones", () => {
  const s = new SqliteJobStore(":memory:");
  const ids = [1, 2, 3, 4, 5].map((n) => `00000000-0000-0000-0000-00000000000${n}`);
  s.insert(job(ids[0]!, { status: "COMPLETED", endTime: "2026-01-01T00:00:00.000Z" }));
  s.insert(job(ids[1]!, { status: "RUNNING" }));
  s.insert(job(ids[2]!, { status: "FAILED", endTime: "2026-11-01T00:00:00.000Z" }));
  s.insert(job(ids[3]!, { status: "STOPPED", endTime: "2026-11-02T00:00:00.000Z" }));
  s.insert(job(ids[4]!, { status: "COMPLETED", endTime: "2026-11-03T00:00:00.000Z" }));
  assert.deepEqual(s.finishedToPrune(2, undefined), [ids[0], ids[2]]);
  assert.deepEqual(s.finishedToPrune(10, "2026-11-01T12:00:00.000Z"), [ids[0], ids[2]]);
  assert.deepEqual(s.finishedToPrune(10, undefined), []);
  assert.deepEqual(s.finishedToPrune(0, undefined).sort(), [ids[0], ids[2], ids[3], ids[4]].sort());
  assert.equal(s.delete(ids[0]!), true);
  assert.equal(s.delete(ids[0]!), false);
  assert.equal(s.get(ids[0]!), undefined);
});

test("count pruning keeps the jobs that ended last, not the ones that started last", () => {
  const s = new SqliteJobStore(":memory:");
  const long = "10000000-0000-0000-0000-000000000001";
  s.insert(job(long, { status: "STOPPED", endTime: "2026-11-27T10:00:05.000Z" }));
  for (let i = 2; i <= 4; i++) s.insert(job(`10000000-0000-0000-0000-00000000000${i}`, { status: "COMPLETED", endTime: `2026-11-27T10:00:0${i - 2}.000Z` }));
  assert.deepEqual(s.finishedToPrune(3, undefined), ["10000000-0000-0000-0000-000000000002"], "the long job ended last: kept");
});

test("a database from before the added columns is upgraded in place", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-store-"));
  try {
    const file = path.join(dir, "old.db");
    const raw = new (require("better-sqlite3"))(file);
    raw.exec(`CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, command TEXT NOT NULL,
      args TEXT NOT NULL, max_cpu INTEGER NOT NULL, cpu_cores TEXT NOT NULL, max_memory INTEGER NOT NULL,
      max_iobps INTEGER NOT NULL, status TEXT NOT NULL, create_time TEXT NOT NULL, start_time TEXT, end_time TEXT,
      exit_code INTEGER, signal TEXT, oom_killed INTEGER NOT NULL DEFAULT 0, reason TEXT,
      stop_requested INTEGER NOT NULL DEFAULT 0, usage TEXT)`);
    raw.exec(`INSERT INTO jobs (id, command, args, max_cpu, cpu_cores, max_memory, max_iobps, status, create_time)
      VALUES ('ff000000-0000-0000-0000-000000000001', 'true', '[]', 0, '', 0, 0, 'COMPLETED', '2026-01-01T00:00:00.000Z')`);
    raw.close();
    const s = new SqliteJobStore(file);
    const j = s.get("ff000000-0000-0000-0000-000000000001");
    assert.equal(j?.network, "host");
    assert.equal(j?.timeoutMs, 0);
    assert.deepEqual(s.list(), [j], "list() reads the added columns too");
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("list() gives every record exactly as get() does: text that JSON must escape, nulls, large integers, nested JSON", () => {
  const s = new SqliteJobStore(":memory:");
  const odd = "quote \" backslash \\ newline \n tab \t nul-free control \u0001 unicode é 日本 😀 </script>";
  const jobs = [
    job("ab000000-0000-0000-0000-000000000001"),
    job("ab000000-0000-0000-0000-000000000002", {
      command: odd,
      args: [odd, "{\"not\": \"json\"}", "[1,2]", ""],
      status: "COMPLETED",
      startTime: "2026-11-27T20:00:01.000Z",
      endTime: "2026-11-27T20:00:02.000Z",
      exitCode: 255,
      signal: "SIGTERM",
      reason: odd,
      limits: { maxCpuPercent: 0, cpuCores: "", maxMemoryMB: 0, maxIoBps: Number.MAX_SAFE_INTEGER },
      usage: { cpuTimeNs: 2 ** 52 + 1, memoryPeakBytes: 6, ioReadBytes: 0, ioWriteBytes: 8 },
      upload: { files: 3, directories: 1, symlinks: 0, bytes: 12345, roots: [odd, "src"] },
      timeoutMs: 1500,
      timedOut: true,
      workdir: "/work/dir with space",
      network: "none",
    }),
  ];
  for (const j of jobs) s.insert(j);
  assert.deepEqual(s.list(), jobs.map((j) => s.get(j.id)));
  assert.deepEqual(s.list(), jobs);
  const empty = new SqliteJobStore(":memory:");
  assert.deepEqual(empty.list(), []);
});

test("list() reads a finished job's row once, and again after update() or delete(); unfinished rows every time", () => {
  const s = new SqliteJobStore(":memory:");
  const done = job("cd000000-0000-0000-0000-000000000001", { status: "COMPLETED", endTime: "2026-11-27T20:00:02.000Z", exitCode: 0 });
  const running = job("cd000000-0000-0000-0000-000000000002", { status: "RUNNING" });
  s.insert(done);
  s.insert(running);
  const first = s.list();
  assert.deepEqual(first, [done, running]);
  const second = s.list();
  assert.equal(second[0], first[0], "the finished record is the one read before");
  assert.notEqual(second[1], first[1], "the running job's row is read again");
  assert.ok(Object.isFrozen(second[0]) && Object.isFrozen(second[0]!.args) && Object.isFrozen(second[0]!.limits));

  // A change to the finished job's row is seen at once.
  s.update(done.id, { reason: "output over the cap was dropped" });
  assert.equal(s.list()[0]!.reason, "output over the cap was dropped");
  s.update(running.id, { status: "STOPPED", endTime: "2026-11-27T20:00:03.000Z" });
  assert.deepEqual(s.list().map((j) => j.status), ["COMPLETED", "STOPPED"]);
  // Deleted and new rows, in insertion order.
  assert.equal(s.delete(done.id), true);
  const later = job("cd000000-0000-0000-0000-000000000000", { status: "FAILED" });
  s.insert(later);
  assert.deepEqual(s.list().map((j) => j.id), [running.id, later.id]);
  assert.deepEqual(s.list(), [s.get(running.id), s.get(later.id)]);
});
