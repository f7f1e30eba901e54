import assert from "node:assert/strict";
import { test } from "node:test";
import { jobOutcome, signalNumber } from "./outcome.js";

const base = { id: "j1", status: "COMPLETED", exitCode: 0, signal: "", oomKilled: false, reason: "", maxMemory: 0, timeoutMs: 0, timedOut: false };

test("a completed job exits 0 without a note", () => {
  assert.deepEqual(jobOutcome(base), { exitCode: 0 });
});

test("a failed job exits with its own code", () => {
  assert.deepEqual(jobOutcome({ ...base, status: "FAILED", exitCode: 3 }), { exitCode: 3 });
  assert.deepEqual(jobOutcome({ ...base, status: "FAILED", exitCode: 255 }), { exitCode: 255 });
});

test("OOM: 137 and a note that names the memory limit, whatever the exit code says", () => {
  const o = jobOutcome({ ...base, status: "FAILED", exitCode: 137, signal: "SIGKILL", oomKilled: true, maxMemory: 64 });
  assert.equal(o.exitCode, 137);
  assert.equal(o.note, "job j1 was killed for exceeding its memory limit (64 MB)");
});

test("exit 137 without the OOM flag is not reported as OOM", () => {
  const o = jobOutcome({ ...base, status: "FAILED", exitCode: 137 });
  assert.deepEqual(o, { exitCode: 137 });
});

test("killed by a signal: 128+N", () => {
  assert.deepEqual(jobOutcome({ ...base, status: "FAILED", signal: "SIGSEGV" }), { exitCode: 139, note: "job j1 was killed by SIGSEGV" });
  assert.equal(jobOutcome({ ...base, status: "FAILED", signal: "KILL" }).exitCode, 137);
  assert.equal(jobOutcome({ ...base, status: "FAILED", signal: "9" }).exitCode, 137);
});

test("stopped: 128+signal, or 143 when the job exited 0 on SIGTERM", () => {
  assert.equal(jobOutcome({ ...base, status: "STOPPED", signal: "SIGKILL" }).exitCode, 137);
  const o = jobOutcome({ ...base, status: "STOPPED", reason: "stopped by admin-client" });
  assert.equal(o.exitCode, 143);
  assert.equal(o.note, "job j1 was stopped: stopped by admin-client");
});

test("a job that failed to start exits 1 with the reason", () => {
  assert.deepEqual(jobOutcome({ ...base, status: "FAILED", reason: 'executable "nope" not found' }), {
    exitCode: 1,
    note: 'job j1 failed: executable "nope" not found',
  });
});

test("codes outside 0..255 do not wrap to success", () => {
  assert.equal(jobOutcome({ ...base, status: "FAILED", exitCode: 256 }).exitCode, 1);
  assert.equal(jobOutcome({ ...base, status: "FAILED", exitCode: -1 }).exitCode, 1);
});

test("signal names", () => {
  assert.equal(signalNumber("SIGTERM"), 15);
  assert.equal(signalNumber("term"), 15);
  assert.equal(signalNumber(""), undefined);
  assert.equal(signalNumber("SIGNOPE"), undefined);
});

test("a job stopped by its timeout exits 124, as timeout(1), and says so with the server's reason", () => {
  const stopped = { ...base, status: "STOPPED", exitCode: 143, signal: "SIGTERM", timeoutMs: 30_000, timedOut: true, reason: "timed out after 30s" };
  assert.deepEqual(jobOutcome(stopped), {
    exitCode: 124,
    note: "job j1 was stopped with SIGTERM because it ran past its timeout (timed out after 30s); exit code 124",
  });
  // Killed after the grace period, and without a reason from the server: still 124, the duration from timeoutMs.
  const killed = jobOutcome({ ...stopped, signal: "SIGKILL", exitCode: 137, reason: "", timeoutMs: 90_000 });
  assert.equal(killed.exitCode, 124);
  assert.match(killed.note!, /with SIGKILL because it ran past its timeout \(timed out after 90s\)/);
});

test("a job stopped by a user (not its timeout) keeps 143, even with a timeout set", () => {
  const r = jobOutcome({ ...base, status: "STOPPED", signal: "SIGTERM", timeoutMs: 30_000, timedOut: false, reason: "stopped by admin" });
  assert.equal(r.exitCode, 143);
});
