// rnx's job options and `rnx rm` against a real daemon (real runc, real mTLS) through the real CLI
// (bin/rnx, which runs the bundle dist/rnx.mjs): what each flag asks for happens inside the job.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { TestDaemon } from "./harness.js";

let d: TestDaemon;
before(async () => {
  d = await TestDaemon.start();
});
after(async () => {
  await d?.destroy();
});

/** The job's full ID from `rnx run -d`. */
async function detached(args: string[]): Promise<string> {
  const r = await d.rnx(["run", "-d", ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

test("-e/--env sets variables (KEY alone copies rnx's own), --workdir is created under /work and is the cwd", async () => {
  const r = await d.rnx(["run", "-e", "A=one two", "--env=B=x=y", "-e", "FROM_RNX", "-e", "NOT_SET_ANYWHERE", "--workdir", "sub/dir", "sh", "-c", 'echo "$A|$B|$FROM_RNX|${NOT_SET_ANYWHERE-unset}"; pwd'], {
    env: { FROM_RNX: "inherited" },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "one two|x=y|inherited|unset\n/work/sub/dir\n");
  const abs = await d.rnx(["run", "--workdir=/work/abs", "pwd"]);
  assert.equal(abs.stdout, "/work/abs\n");
});

test("--network none leaves only loopback; host shows the host's interfaces", async () => {
  const none = await d.rnx(["run", "--network", "none", "ls", "/sys/class/net"]);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, "lo\n");
  const host = await d.rnx(["run", "--network=host", "ls", "/sys/class/net"]);
  assert.equal(host.code, 0, host.stderr);
  assert.ok(host.stdout.trim().split("\n").length > 1, host.stdout);
});

test("status and list --json report the options the job ran with", async () => {
  const id = await detached(["--timeout", "90", "--workdir", "w", "--network", "none", "true"]);
  const s = await d.rnx(["status", id]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^Timeout: +90s$/m);
  assert.match(s.stdout, /^Workdir: +\/work\/w$/m);
  assert.match(s.stdout, /^Network: +none$/m);
  const j = await d.rnx(["status", "--json", id]);
  const job = JSON.parse(j.stdout) as Record<string, unknown>;
  assert.deepEqual([job.timeoutMs, job.workdir, job.network], [90_000, "w", "none"]);
});

test("a job past its --timeout is stopped; rnx run exits 124 and says so; status shows it timed out", async () => {
  const started = Date.now();
  const r = await d.rnx(["run", "--timeout", "1500ms", "sh", "-c", "trap 'exit 0' TERM; echo started; sleep 60 & wait"]);
  assert.equal(r.code, 124, r.stderr);
  assert.equal(r.stdout, "started\n");
  assert.match(r.stderr, /^rnx: job (\S+) was stopped (?:with SIG\w+ )?because it ran past its timeout \(timed out after 1500ms\); exit code 124$/m);
  assert.ok(Date.now() - started < 30_000);
  const id = /^rnx: job (\S+) was stopped/m.exec(r.stderr)![1]!;
  const s = await d.rnx(["status", id]);
  assert.match(s.stdout, /^Status: +STOPPED$/m);
  assert.match(s.stdout, /^Timed out: +yes/m);
  assert.match(s.stdout, /^Reason: +timed out after 1500ms$/m);
});

test("rm refuses a running job with the server's message, deletes it once stopped (record, log, work dir)", async () => {
  const id = await detached(["sleep", "60"]);
  const refused = await d.rnx(["rm", id.slice(0, 8)]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`refused DeleteJob: job ${id} is RUNNING; stop it before deleting it`));
  assert.match(refused.stderr, new RegExp(`^hint: rnx stop ${id}$`, "m"));
  assert.equal((await d.rnx(["stop", id])).code, 0);
  const workDir = path.join(d.dir, "state", "jobs", id);
  assert.ok(existsSync(workDir), `${workDir} exists before rm`);
  const rm = await d.rnx(["rm", id.slice(0, 8)]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(rm.stdout, `job ${id} deleted\n`);
  assert.ok(!existsSync(workDir), "the work dir is gone");
  assert.equal((await d.rnx(["status", id])).code, 5);
  assert.ok(!(await d.rnx(["list", "-q"])).stdout.includes(id));
  const viewer = await d.rnx(["--node", "viewer", "rm", "anything"]);
  assert.equal(viewer.code, 4);
});
