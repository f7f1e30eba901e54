// The real programs' handling of configuration: `joblet --config FILE` refuses an invalid config before it
// touches anything, with a message naming the key, the expected and the given value; `joblet init` writes
// private files with the right nodes and certificates and refuses to overwrite them without --force.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { describeCertificate } from "../../src/shared/tls/certs.js";
import { ROOT, TestDaemon, freePort } from "./harness.js";

const JOBLET = path.join(ROOT, "bin", "joblet");
const T = { timeout: 60_000 };

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "joblet-config-it-"));
  // Jobs run as an unprivileged mapped uid that must be able to traverse to the state dir.
  chmodSync(dir, 0o711);
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function joblet(args: string[], timeoutMs = 20_000) {
  const r = spawnSync(process.execPath, [JOBLET, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh `joblet init` directory; returns its paths and the parsed daemon config. */
function init(name: string, extra: string[] = []) {
  const d = path.join(dir, name);
  const r = joblet(["init", "--dir", d, "--port", "50999", ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const configFile = path.join(d, "joblet-config.yml");
  const rnxFile = path.join(d, "rnx-config.yml");
  return { dir: d, configFile, rnxFile, config: parseYaml(readFileSync(configFile, "utf8")) as Record<string, Record<string, unknown>> };
}

/** An init config with a private state dir and cgroup, `mutate` applied, written back. */
function prepare(name: string, mutate: (c: Record<string, Record<string, unknown>>) => void) {
  const i = init(name);
  const stateDir = path.join(i.dir, "state-never");
  const cgroup = `joblet-config-it-${path.basename(dir).replace(/[^A-Za-z0-9]/g, "")}-${name}`;
  i.config.state = { dir: stateDir };
  i.config.cgroup = { baseDir: `/sys/fs/cgroup/${cgroup}` };
  i.config.server!.address = "127.0.0.1";
  mutate(i.config);
  writeFileSync(i.configFile, stringifyYaml(i.config), { mode: 0o600 });
  return { configFile: i.configFile, stateDir, cgroup };
}

/** Starts the daemon on a config with `mutate` applied; asserts that it exits non-zero having created nothing. */
function refused(name: string, mutate: (c: Record<string, Record<string, unknown>>) => void): string {
  const p = prepare(name, mutate);
  const r = joblet(["--config", p.configFile]);
  assert.equal(r.signal, null, `the daemon did not exit by itself (it started?): ${r.stderr}`);
  assert.notEqual(r.code, 0, `the daemon accepted the config:\n${r.stderr}`);
  assert.ok(!existsSync(p.stateDir), "nothing was written: no state dir");
  assert.ok(!existsSync(`/sys/fs/cgroup/memory/${p.cgroup}`), "nothing was created: no cgroup");
  assert.ok(r.stderr.includes(p.configFile), `the message names the file: ${r.stderr}`);
  return r.stderr;
}

test("control: the same config without a mistake starts and serves", T, async () => {
  const port = await freePort();
  const p = prepare("control", (c) => {
    c.server!.port = port;
  });
  const proc = spawn(process.execPath, [JOBLET, "--config", p.configFile], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  try {
    await new Promise<void>((resolve, reject) => {
      proc.stderr.on("data", (b: Buffer) => {
        log += b.toString();
        if (log.includes('"joblet serving"')) resolve();
      });
      proc.once("exit", (code) => reject(new Error(`daemon exited with ${code}: ${log}`)));
    });
    assert.ok(existsSync(p.stateDir), "a started daemon creates its state dir");
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc.once("exit", resolve));
      proc.kill("SIGTERM");
      await exited;
    }
    for (const ctrl of readdirSync("/sys/fs/cgroup")) spawnSync("rmdir", [path.join("/sys/fs/cgroup", ctrl, p.cgroup)]);
  }
});

test("an invalid number: the daemon exits non-zero naming joblet.maxConcurrentJobs, the expected and the given value", T, () => {
  const err = refused("max-jobs", (c) => {
    c.joblet!.maxConcurrentJobs = -1;
  });
  assert.match(err, /joblet\.maxConcurrentJobs: .*expected .*>=\s*1.*got -1/i);
});

test("a string for a port: the message names server.port, expects a number and shows the given string", T, () => {
  const err = refused("port", (c) => {
    c.server!.port = "abc";
  });
  assert.match(err, /server\.port: .*expected number.*got "abc"/i);
});

test("a relative state.runDir is refused by name, expecting an absolute path", T, () => {
  const err = refused("rundir", (c) => {
    c.state!.runDir = "run/joblet";
  });
  assert.match(err, /state\.runDir: .*absolute path.*got "run\/joblet"/i);
});

test("a second daemon on a running daemon's state dir or run dir is refused by name; the first keeps its job", T, async () => {
  const d = await TestDaemon.start();
  try {
    const run = await d.rnx(["run", "--detach", "sleep", "30"]);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    const port = await freePort();
    const sameRun = prepare("same-run-dir", (c) => {
      c.server!.port = port;
      c.state!.runDir = d.runDir;
    });
    const r1 = joblet(["--config", sameRun.configFile]);
    assert.notEqual(r1.code, 0, r1.stderr);
    assert.match(r1.stderr, new RegExp(`another joblet \\(pid ${d.pid}\\) uses the run dir ${d.runDir}`));
    assert.match(r1.stderr, /another state\.runDir/);
    const sameState = prepare("same-state-dir", (c) => {
      c.server!.port = port;
      c.state!.dir = path.join(d.dir, "state");
    });
    const r2 = joblet(["--config", sameState.configFile]);
    assert.notEqual(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, new RegExp(`another joblet \\(pid ${d.pid}\\) uses the state dir ${path.join(d.dir, "state")}`));
    // Nothing of the first daemon was touched: its job runs on, its bundle and lock are in place.
    const status = await d.rnx(["status", "--json", id]);
    assert.equal((JSON.parse(status.stdout) as { status: string }).status, "RUNNING");
    assert.ok(existsSync(path.join(d.bundlesDir(), id)), "the job's bundle is still there");
    assert.equal(readFileSync(path.join(d.runDir, "joblet.pid"), "utf8").trim(), String(d.pid));
  } finally {
    await d.destroy();
  }
});

test("an unknown key is refused by name", T, () => {
  const err = refused("bogus", (c) => {
    c.joblet!.bogus = true;
  });
  assert.match(err, /joblet\.bogus: unknown key/);
});

test("a bad duration and several mistakes at once are all reported", T, () => {
  const err = refused("several", (c) => {
    c.joblet!.stopGracePeriod = "soon";
    c.logging = { level: "loud" };
  });
  assert.match(err, /joblet\.stopGracePeriod: .*duration.*got "soon"/);
  assert.match(err, /logging\.level: .*got "loud"/);
});

test("a missing config file is refused naming the file", T, () => {
  const missing = path.join(dir, "no-such-config.yml");
  const r = joblet(["--config", missing]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} does not exist`));
});

test("joblet init writes 0600 configs: nodes default (admin) and viewer; server certificate SANs", T, () => {
  const i = init("fresh", ["--address", "10.1.2.3", "--names", "jobs.example,192.0.2.7"]);
  for (const f of [i.configFile, i.rnxFile]) {
    assert.equal(statSync(f).mode & 0o777, 0o600, `${f} is mode 0600`);
  }
  const rnx = parseYaml(readFileSync(i.rnxFile, "utf8")) as { version: string; nodes: Record<string, { address: string; cert: string; key: string; ca: string }> };
  assert.equal(rnx.version, "3.0");
  assert.deepEqual(Object.keys(rnx.nodes).sort(), ["default", "viewer"]);
  assert.equal(rnx.nodes.default!.address, "10.1.2.3:50999");
  assert.equal(describeCertificate(rnx.nodes.default!.cert).role, "admin");
  assert.equal(describeCertificate(rnx.nodes.viewer!.cert).role, "viewer");
  for (const n of Object.values(rnx.nodes)) assert.match(n.key, /-----BEGIN PRIVATE KEY-----/);

  const security = i.config.security as Record<string, string>;
  const server = describeCertificate(security.serverCert!);
  for (const san of ["IP:10.1.2.3", "DNS:localhost", "IP:127.0.0.1", "DNS:jobs.example", "IP:192.0.2.7", "DNS:joblet"]) {
    assert.ok(server.sans.includes(san), `server SANs ${server.sans.join(", ")} include ${san}`);
  }
  assert.ok(server.sans.some((s) => /^IP:(::1|0:0:0:0:0:0:0:1)$/.test(s)), `server SANs include ::1: ${server.sans.join(", ")}`);
  assert.equal(i.config.server!.port, 50999);
});

test("joblet init refuses to overwrite without --force and leaves the files as they were; --force replaces them", T, () => {
  const i = init("twice");
  const before = [readFileSync(i.configFile, "utf8"), readFileSync(i.rnxFile, "utf8")];
  const r = joblet(["init", "--dir", i.dir, "--port", "50999"]);
  assert.notEqual(r.code, 0, "a second init without --force must fail");
  assert.match(r.stderr, /already exists/);
  assert.match(r.stderr, /--force/);
  assert.deepEqual([readFileSync(i.configFile, "utf8"), readFileSync(i.rnxFile, "utf8")], before, "files unchanged");

  const forced = joblet(["init", "--dir", i.dir, "--port", "50999", "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  const after = [readFileSync(i.configFile, "utf8"), readFileSync(i.rnxFile, "utf8")];
  assert.notEqual(after[0], before[0], "--force wrote a new daemon config (new CA)");
  assert.notEqual(after[1], before[1], "--force wrote a new client config");
  for (const f of [i.configFile, i.rnxFile]) assert.equal(statSync(f).mode & 0o777, 0o600);
});
