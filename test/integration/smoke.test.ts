import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TestDaemon } from "./harness.js";

let d: TestDaemon;
before(async () => {
  d = await TestDaemon.start();
});
after(async () => {
  await d?.destroy();
});

test("rnx run ps aux shows only the job's own processes, streamed from an isolated job", async () => {
  const r = await d.rnx(["run", "ps", "aux"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0]!, /^USER\s+PID/);
  assert.equal(lines.length, 2, `only ps itself, as PID 1:\n${r.stdout}`);
  assert.match(lines[1]!, /^root\s+1\s.*ps aux$/);
});

test("rnx run exits with the job's exit code and keeps stdout and stderr apart", async () => {
  const r = await d.rnx(["run", "sh", "-c", "echo out; echo err >&2; exit 7"]);
  assert.equal(r.code, 7);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
});
