// `joblet doctor` on this machine: a fresh `joblet init` config passes with every check present, a missing
// runtime fails with exit 1 and the fix, and with the daemon running the port check sees it answering.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { freePort, ROOT, runCli, TestDaemon } from "./harness.js";

const JOBLET = path.join(ROOT, "bin", "joblet");
const EVERY_CHECK = [
  "config",
  "runtime",
  "conmon",
  "cgroup.mode",
  "io.device",
  "cgroup.parent",
  "cgroup.cpu",
  "cgroup.memory",
  "cgroup.pids",
  "cgroup.cpuset",
  "cgroup.io",
  "cgroup.swap",
  "io.throttle",
  "cgroup.cpuacct",
  "userns",
  "seccomp",
  "state",
  "certs",
  "certs.ca",
  "certs.keyfile",
  "port",
  "job",
];

interface Report {
  configFile: string;
  ok: boolean;
  durationMs: number;
  checks: { id: string; title: string; status: string; found: string; hint?: string }[];
}

let dir: string;
let configFile: string;
before(async () => {
  // A directory `joblet init` creates itself (0711), in a parent others may pass through, as on a real host.
  const parent = mkdtempSync(path.join(os.tmpdir(), "joblet-doctor-it-"));
  chmodSync(parent, 0o711);
  dir = path.join(parent, "config");
  const init = await runCli([JOBLET, "init", "--dir", dir, "--port", String(await freePort())]);
  assert.equal(init.code, 0, init.stderr);
  configFile = path.join(dir, "joblet-config.yml");
});
after(() => rmSync(path.dirname(dir), { recursive: true, force: true }));

test("doctor passes on this host with a fresh config: exit 0, every check listed with its outcome", async () => {
  const r = await runCli([JOBLET, "doctor", "--config", configFile, "--json"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const report = JSON.parse(r.stdout) as Report;
  assert.equal(report.ok, true);
  assert.equal(report.configFile, configFile);
  assert.deepEqual(report.checks.map((c) => c.id), EVERY_CHECK);
  for (const c of report.checks) {
    assert.notEqual(c.status, "fail", `${c.id}: ${c.found}`);
    assert.ok(c.found.length > 0);
    if (c.status === "warn") assert.ok(c.hint, `${c.id} warns with a hint`);
  }
  const found = (id: string) => report.checks.find((c) => c.id === id)!.found;
  assert.match(found("runtime"), /^runc version \S+ \(\/.*runc\)$/);
  assert.match(found("conmon"), /^conmon version \S+/);
  assert.match(found("cgroup.mode"), /^(v1|v2|hybrid)/);
  assert.match(found("io.throttle"), /ran at [\d.]+ MiB\/s \([\d.]+ s, [\d.]+× the limit\)/);
  assert.match(found("job"), /exit 0 in \d+ ms$/);
  assert.ok(report.durationMs < 20_000, `doctor took ${report.durationMs} ms`);

  // Nothing is left behind: no test cgroup or job cgroup, no probe file next to the state dir.
  const parents = readdirSync("/sys/fs/cgroup").map((c) => path.join("/sys/fs/cgroup", c, "joblet")).filter((p) => existsSync(p));
  for (const p of parents) assert.deepEqual(readdirSync(p, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name.startsWith("joblet-doctor-")), [], p);
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(".joblet-doctor")), []);
});

test("a runtime.path that does not exist fails the doctor with exit 1 and says what to do", async () => {
  const bad = path.join(dir, "bad-runtime.yml");
  writeFileSync(bad, readFileSync(configFile, "utf8").replace(/^  path: "runc"$/m, '  path: "/nonexistent/runc"'), { mode: 0o600 });
  const r = await runCli([JOBLET, "doctor", "--config", bad]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /^✗ OCI runtime +runtime\.path: "\/nonexistent\/runc" is not an executable on this host$/m);
  assert.match(r.stdout, /^ +→ install runc \(Debian package `runc`\) or set runtime\.path to its absolute path$/m);
  assert.match(r.stdout, /^✗ test job +not run/m);
  assert.equal(r.stdout.split("\n").filter((l) => l.startsWith("✗")).length, 2, "only the runtime and the test job fail");
  assert.match(r.stdout.trim().split("\n").at(-1)!, /^NOT OK: .*2 failed/);
});

test("a config that cannot be read is one failed check", async () => {
  const r = await runCli([JOBLET, "doctor", "--config", path.join(dir, "missing.yml")]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^✗ config +config file .*missing\.yml does not exist$/m);
});

test("with the daemon running, the text report has a line per check and the port check finds the daemon answering", async () => {
  const d = await TestDaemon.start();
  try {
    const r = await runCli([JOBLET, "doctor", "--config", d.configFile]);
    assert.equal(r.code, 0, r.stdout);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines[0], `joblet doctor: ${d.configFile}`);
    const titles = ["config", "OCI runtime", "monitor", "cgroups", "IO device", "cgroup parent", "CPU limit", "memory limit", "process limit", "CPU cores", "IO limit", "swap limit", "IO throttling", "CPU accounting", "user namespaces", "seccomp", "state dir", "run dir", "certificates", "CA", "key permissions", "API port", "test job"];
    for (const t of titles) assert.ok(lines.some((l) => new RegExp(`^[✓!] ${t} +\\S`).test(l)), `a line for ${t}:\n${r.stdout}`);
    assert.match(r.stdout, new RegExp(`^✓ API port +127\\.0\\.0\\.1:${d.port} is in use by a daemon presenting a certificate from this config's CA`, "m"));
    // 23: the test daemon's state.runDir lies outside its state dir, so the run dir is checked too.
    assert.match(lines.at(-1)!, /^OK: this host can run jobs with every limit enforced \(23 checks, 0 failed/);
  } finally {
    await d.destroy();
  }
});
