import assert from "node:assert/strict";
import { test } from "node:test";
import { Job, Jobs } from "../shared/proto/joblet.js";
import { decodeJobRows, type JobRow } from "./job-rows.js";

/** What the generated decoder gives for the fields a row keeps. */
function rowsOf(jobs: Jobs): JobRow[] {
  return jobs.jobs.map((j) => ({ id: j.id, status: j.status, command: j.command, args: j.args, startTime: j.startTime, endTime: j.endTime, createTime: j.createTime }));
}

const full = Job.fromPartial({
  id: "0d5c6f3a-1111-4222-8333-444455556666",
  command: "python3",
  args: ["-c", "print('héllo — 世界')", ""],
  maxCPU: 50,
  cpuCores: "0-1",
  maxMemory: 512,
  maxIOBPS: 1_000_000,
  status: "FAILED",
  startTime: "2026-12-07T22:13:46.815Z",
  endTime: "2026-12-07T22:13:47.001Z",
  exitCode: -1,
  signal: "SIGKILL",
  oomKilled: true,
  reason: "killed by the kernel's OOM killer",
  // 64-bit counters: varints of up to 10 bytes to skip.
  usage: { cpuTimeNs: 2 ** 53 - 1, memoryPeakBytes: 123_456_789_012, ioReadBytes: 0, ioWriteBytes: 7 },
  createTime: "2026-12-07T22:13:46.700Z",
  timeoutMs: 2 ** 40,
  timedOut: true,
  workdir: "sub/dir",
  network: "none",
  upload: { files: 3, directories: 1, symlinks: 0, bytes: 4096, roots: ["a", "b"] },
});

test("decodeJobRows gives the generated decoder's values for the table's fields, skipping every other field", () => {
  const many = Jobs.fromPartial({ jobs: [full, Job.fromPartial({ id: "x" }), Job.fromPartial({}), { ...full, id: "y", args: [] }] });
  const bytes = Buffer.from(Jobs.encode(many).finish());
  assert.deepEqual(decodeJobRows(bytes), rowsOf(Jobs.decode(bytes)));
  assert.deepEqual(decodeJobRows(Buffer.alloc(0)), []);
});

test("decodeJobRows skips fields it does not know (a newer daemon), of every wire type", () => {
  const job = Buffer.from(Job.encode(Job.fromPartial({ id: "z", status: "RUNNING" })).finish());
  // Field 200 as varint, 201 as fixed64, 202 as length-delimited, 203 as fixed32; then the job's own fields.
  const unknown = Buffer.from([0xc0, 0x0c, 0x96, 0x01, 0xc9, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 0xd2, 0x0c, 2, 0x41, 0x42, 0xdd, 0x0c, 9, 9, 9, 9]);
  const inner = Buffer.concat([unknown, job]);
  const jobs = Buffer.concat([Buffer.from([0x0a, inner.length]), inner, Buffer.from([0x10, 0x05])]); // + an unknown top-level varint
  assert.deepEqual(decodeJobRows(jobs), [{ id: "z", status: "RUNNING", command: "", args: [], startTime: "", endTime: "", createTime: "" }]);
});

test("decodeJobRows throws on a truncated message instead of returning part of it", () => {
  const bytes = Buffer.from(Jobs.encode(Jobs.fromPartial({ jobs: [full] })).finish());
  for (const cut of [1, 2, 10, bytes.length - 1]) assert.throws(() => decodeJobRows(bytes.subarray(0, cut)), /truncated/, `cut at ${cut}`);
});
