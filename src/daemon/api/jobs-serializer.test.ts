// serializeJobs writes what Jobs.encode writes, and keeps a finished job's wire form with its record.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Jobs } from "../../shared/proto/joblet.js";
import type { JobRecord } from "../store/record.js";
import { serializeJobs } from "./jobs-serializer.js";
import { toJob } from "./mappers.js";

const record = (id: string, over: Partial<JobRecord> = {}): JobRecord => ({
  id,
  command: "sh",
  args: ["-c", "echo 'é 日本' \"$X\""],
  limits: { maxCpuPercent: 150, cpuCores: "0-1", maxMemoryMB: 64, maxIoBps: 1_000_000 },
  status: "COMPLETED",
  createTime: "2026-12-07T20:00:00.000Z",
  startTime: "2026-12-07T20:00:00.010Z",
  endTime: "2026-12-07T20:00:01.000Z",
  exitCode: 3,
  oomKilled: false,
  stopRequested: false,
  usage: { cpuTimeNs: 2 ** 52 + 1, memoryPeakBytes: 6, ioReadBytes: 0, ioWriteBytes: 8 },
  timeoutMs: 0,
  timedOut: false,
  workdir: "/w",
  network: "host",
  ...over,
});

test("serializeJobs: the bytes of Jobs.encode, for records and for Job messages; none for no jobs", () => {
  // A command long enough that its Job needs a two-byte length, and one of 20,000 bytes (three).
  const records = [record("a"), record("b", { status: "RUNNING", endTime: undefined, exitCode: undefined }), record("c", { command: "x".repeat(20_000) })];
  const expected = Buffer.from(Jobs.encode({ jobs: records.map(toJob) }).finish());
  assert.deepEqual(serializeJobs({ records }), expected);
  assert.deepEqual(serializeJobs({ jobs: records.map(toJob) }), expected);
  assert.deepEqual(Jobs.decode(serializeJobs({ records })), { jobs: records.map(toJob) });
  assert.equal(serializeJobs({ records: [] }).length, 0);
});

test("serializeJobs encodes a record once: the same record again gives its first bytes", () => {
  const r = Object.freeze(record("d"));
  const first = serializeJobs({ records: [r] });
  // Only a new record object (what the store gives after any change) is encoded anew.
  const changed = record("d", { reason: "output cut" });
  assert.deepEqual(serializeJobs({ records: [r] }), first);
  assert.notDeepEqual(serializeJobs({ records: [changed] }), first);
  assert.equal(Jobs.decode(serializeJobs({ records: [changed] })).jobs[0]!.reason, "output cut");
});
