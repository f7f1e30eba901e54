// The per-job log cap through the real daemon: a job writing far more than logs.maxJobLogMB keeps its head
// and its tail on disk, the middle is freed, offsets stay those of the job's output, and rnx says how many
// bytes were dropped.
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { TestDaemon } from "./harness.js";

let d: TestDaemon;
before(async () => {
  d = await TestDaemon.start({ logs: { maxJobLogMB: 2, keepHeadMB: 1 } });
});
after(async () => {
  await d?.destroy();
});

test("a log over logs.maxJobLogMB keeps head and tail, frees the middle, and rnx reports the dropped bytes", async () => {
  // 1,000,000 numbered lines: ~6.9 MB of output, ~54 MB of k8s-file log; written slowly enough that the
  // daemon's 2-second check cuts it while it runs and once more when it ends.
  const run = await d.rnx(["run", "--detach", "sh", "-c", "seq 1 500000; sleep 2; seq 500001 1000000"]);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const st = await d.rnx(["status", id, "--json"]);
  let status = JSON.parse(st.stdout).status as string;
  // Asked through the API as often as possible: the log must be within the cap as soon as the job is seen ended.
  const client = d.client();
  const deadline = Date.now() + 60_000;
  while ((status === "RUNNING" || status === "INITIALIZING") && Date.now() < deadline) {
    status = await new Promise<string>((resolve, reject) => client.getJobStatus({ id }, (err, res) => (err ? reject(err) : resolve(res!.status))));
  }
  client.close();
  assert.equal(status, "COMPLETED");

  const logFile = path.join(d.dir, "state", "logs", `${id}.log`);
  const info = statSync(logFile);
  assert.ok(info.size > 40 * 1024 * 1024, `the file keeps its full size (sparse): ${info.size}`);
  assert.ok(info.blocks * 512 <= 3 * 1024 * 1024, `at most ~2 MiB (+slack) allocated: ${info.blocks * 512}`);

  const log = await d.rnx(["log", id]);
  assert.equal(log.code, 0, log.stderr);
  const lines = log.stdout.split("\n").filter(Boolean).map(Number);
  // Head: 1, 2, 3, … without a gap; tail: ends at 1,000,000 without a gap; one jump in between.
  assert.equal(lines[0], 1);
  assert.equal(lines.at(-1), 1_000_000);
  let jumps = 0;
  for (let i = 1; i < lines.length; i++) {
    if (lines[i] !== lines[i - 1]! + 1) jumps++;
  }
  assert.equal(jumps, 1, "exactly one dropped range");
  const m = /rnx: (\d+) bytes of job .* output were dropped here by the server's log size cap/.exec(log.stderr);
  assert.ok(m, `rnx announces the gap: ${log.stderr}`);
  const fullBytes = Array.from({ length: 1_000_000 }, (_, i) => String(i + 1).length + 1).reduce((a, b) => a + b, 0);
  assert.equal(Buffer.byteLength(log.stdout) + Number(m[1]), fullBytes, "kept + dropped = everything the job wrote");
});
