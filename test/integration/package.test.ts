// The Debian package, end to end as root: build it with `npm run package:deb`, install it with dpkg, check
// its files, modes and generated configs, run the installed daemon by hand (there is no systemd here) and a
// job through the installed rnx, reinstall it as an upgrade while a job runs (configs, state and the job
// survive), then purge it: the running job is ended and nothing of the package is left.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { freePort, ROOT } from "./harness.js";

const CONFIG_DIR = "/opt/joblet/config";
const DAEMON_CONFIG = `${CONFIG_DIR}/joblet-config.yml`;
const RNX_CONFIG = `${CONFIG_DIR}/rnx-config.yml`;
const STATE_DIR = "/var/lib/joblet";
/** The run dir postinst configures (jobs' runtime state; /run is a tmpfs on systemd hosts). */
const RUN_DIR = "/run/joblet";
const version = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const arch = spawnSync("dpkg", ["--print-architecture"], { encoding: "utf8" }).stdout.trim();

const outDir = mkdtempSync(path.join(os.tmpdir(), "joblet-deb-it-"));
const cgroupParent = `/joblet-pkg-test-${process.pid}`;
let deb = "";
let daemon: ChildProcess | undefined;
let daemonLog = "";

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 240_000 });
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
}

function installed(): boolean {
  return /Status: install ok installed/.test(sh("dpkg", ["-s", "joblet"]).stdout);
}

/** The installed rnx with the installed client config. */
function rnx(args: string[]) {
  return sh("/usr/bin/rnx", ["--config", RNX_CONFIG, ...args], { NO_COLOR: "1" });
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

async function startInstalledDaemon(): Promise<void> {
  const proc = spawn("/usr/bin/joblet", ["--config", DAEMON_CONFIG], { stdio: ["ignore", "ignore", "pipe"] });
  daemon = proc;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`installed daemon did not start:\n${daemonLog}`)), 30_000);
    proc.stderr!.on("data", (d: Buffer) => {
      daemonLog += d.toString();
      if (daemonLog.includes('"joblet serving"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`installed daemon exited with ${code}:\n${daemonLog}`));
    });
  });
  proc.removeAllListeners("exit");
}

async function stopDaemon(): Promise<void> {
  const proc = daemon;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  proc.kill("SIGTERM");
  await exited;
}

function removeTestCgroups(): void {
  for (const ctrl of readdirSync("/sys/fs/cgroup")) {
    const dir = path.join("/sys/fs/cgroup", ctrl, cgroupParent);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) spawnSync("rmdir", [path.join(dir, e.name)]);
    spawnSync("rmdir", [dir]);
  }
}

before(() => {
  assert.equal(process.getuid?.(), 0, "the package test installs a package: run it as root");
  // Never clobber a real installation or files of unknown origin.
  assert.ok(!installed(), "the joblet package is already installed on this machine; not touching it");
  for (const p of ["/opt/joblet", STATE_DIR, RUN_DIR, "/usr/bin/joblet", "/usr/bin/rnx", "/lib/systemd/system/joblet.service"]) {
    assert.ok(!existsSync(p), `${p} exists without the package; not touching it`);
  }
});

after(async () => {
  await stopDaemon();
  if (installed() || /Status: deinstall/.test(sh("dpkg", ["-s", "joblet"]).stdout)) sh("dpkg", ["--purge", "joblet"]);
  removeTestCgroups();
  rmSync(outDir, { recursive: true, force: true });
});

test("npm run package:deb builds joblet_<version>_<arch>.deb and prints its path last", () => {
  const started = Date.now();
  const r = sh("npm", ["run", "--silent", "package:deb", "--", outDir]);
  assert.equal(r.code, 0, r.stderr);
  deb = r.stdout.trim().split("\n").at(-1)!;
  assert.equal(deb, path.join(outDir, `joblet_${version}_${arch}.deb`));
  const size = statSync(deb).size;
  console.log(`built ${path.basename(deb)}: ${(size / 1e6).toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  const field = (name: string) => sh("dpkg-deb", ["-f", deb, name]).stdout.trim();
  assert.equal(field("Package"), "joblet");
  assert.equal(field("Version"), version);
  assert.equal(field("Architecture"), arch);
  assert.equal(field("Depends"), "runc, conmon, nodejs (>= 20)");
  const files = sh("dpkg-deb", ["-c", deb]).stdout;
  for (const line of files.trim().split("\n")) assert.match(line, /^\S+ root\/root /, `owned by root: ${line}`);
  assert.match(files, /^lrwxrwxrwx root\/root .* \.\/usr\/bin\/joblet -> \/opt\/joblet\/bin\/joblet$/m);
  assert.match(files, /^lrwxrwxrwx root\/root .* \.\/usr\/bin\/rnx -> \/opt\/joblet\/bin\/rnx$/m);
  assert.match(files, /^-rw-r--r-- root\/root .* \.\/lib\/systemd\/system\/joblet\.service$/m);
  assert.match(files, /^-rwxr-xr-x root\/root .* \.\/opt\/joblet\/bin\/joblet$/m);
  assert.match(files, / \.\/opt\/joblet\/dist\/daemon\/main\.js$/m);
  assert.match(files, / \.\/opt\/joblet\/node_modules\/better-sqlite3\/build\/Release\/better_sqlite3\.node$/m);
  assert.doesNotMatch(files, /\.\/opt\/joblet\/node_modules\/(typescript|tsx|esbuild|ts-proto)\//, "no dev dependencies");
  assert.doesNotMatch(files, /\.\/opt\/joblet\/config|\.test\.js$|test-support/, "no configs, no tests");
  const control = sh("dpkg-deb", ["-I", deb]).stdout;
  for (const s of ["postinst", "prerm", "postrm"]) assert.match(control, new RegExp(`\\b${s}\\b`));
});

test("dpkg -i installs it: files, the unit, configs generated with 0600 and the state dir in /var/lib/joblet", () => {
  assert.ok(deb, "built by the previous test");
  const r = sh("dpkg", ["-i", deb], { JOBLET_SERVER_ADDRESS: "localhost", JOBLET_ADDITIONAL_NAMES: "joblet-pkg-test.example,10.11.12.13" });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(installed());
  assert.match(r.stdout, /systemd is not running; start the daemon with: joblet --config \/opt\/joblet\/config\/joblet-config\.yml/);

  assert.equal(readlinkSync("/usr/bin/joblet"), "/opt/joblet/bin/joblet");
  assert.equal(readlinkSync("/usr/bin/rnx"), "/opt/joblet/bin/rnx");
  // bin/rnx and bin/joblet are CommonJS in a "type": "module" package: their own package.json says so.
  assert.equal((JSON.parse(readFileSync("/opt/joblet/bin/package.json", "utf8")) as { type?: string }).type, "commonjs");
  assert.equal(sh("/usr/bin/joblet", ["--version"]).stdout.trim(), version);
  assert.equal(sh("/usr/bin/rnx", ["--version"]).stdout.trim(), version);
  const unit = readFileSync("/lib/systemd/system/joblet.service", "utf8");
  for (const line of ["KillMode=process", "Delegate=yes", "Restart=on-failure", `ExecStart=/opt/joblet/bin/joblet --config ${DAEMON_CONFIG}`, "WantedBy=multi-user.target"]) {
    assert.match(unit, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"), line);
  }
  assert.ok(existsSync(unit.match(/^ExecStart=(\S+)/m)![1]!), "ExecStart names a file that exists");

  assert.ok(statSync(CONFIG_DIR).isDirectory());
  assert.equal(statSync(CONFIG_DIR).mode & 0o077 & ~0o011, 0, "config dir not readable by others");
  for (const f of [DAEMON_CONFIG, RNX_CONFIG]) {
    assert.equal(statSync(f).mode & 0o777, 0o600, `${f} is 0600`);
    assert.equal(statSync(f).uid, 0);
  }
  const config = parseYaml(readFileSync(DAEMON_CONFIG, "utf8")) as { state: { dir: string; runDir: string }; security: { serverCert: string } };
  assert.equal(config.state.dir, STATE_DIR);
  assert.equal(config.state.runDir, RUN_DIR);
  const sans = new X509Certificate(config.security.serverCert).subjectAltName ?? "";
  for (const san of ["DNS:localhost", "DNS:joblet-pkg-test.example", "IP Address:10.11.12.13"]) assert.ok(sans.includes(san), `${san} in ${sans}`);
  const rnxConfig = parseYaml(readFileSync(RNX_CONFIG, "utf8")) as { nodes: Record<string, { address: string }> };
  assert.equal(rnxConfig.nodes.default!.address, "localhost:50051");
});

test("the installed daemon runs a job through the installed rnx; a reinstall (upgrade) keeps configs, state and a running job; purge removes everything", async () => {
  assert.ok(installed(), "installed by the previous test");
  // A free port and a private cgroup parent, so that this test cannot collide with another daemon here.
  const port = await freePort();
  const config = parseYaml(readFileSync(DAEMON_CONFIG, "utf8")) as Record<string, Record<string, unknown>>;
  config.server!.port = port;
  config.server!.address = "127.0.0.1";
  config.cgroup!.baseDir = `/sys/fs/cgroup${cgroupParent}`;
  writeFileSync(DAEMON_CONFIG, stringifyYaml(config));
  writeFileSync(RNX_CONFIG, readFileSync(RNX_CONFIG, "utf8").replaceAll('"localhost:50051"', `"localhost:${port}"`));
  assert.equal(statSync(DAEMON_CONFIG).mode & 0o777, 0o600);

  const doctor = sh("/usr/bin/joblet", ["doctor", "--config", DAEMON_CONFIG]);
  assert.equal(doctor.code, 0, `the installed doctor passes:\n${doctor.stdout}`);

  await startInstalledDaemon();
  const hello = rnx(["run", "sh", "-c", 'echo "hello from $JOBLET_JOB_ID"']);
  assert.equal(hello.code, 0, hello.stderr);
  assert.match(hello.stdout, /^hello from [0-9a-f-]{36}\n$/);
  assert.ok(existsSync(path.join(STATE_DIR, "joblet.db")), "state in /var/lib/joblet");

  const detached = rnx(["run", "--detach", "sleep", "300"]);
  assert.equal(detached.code, 0, detached.stderr);
  const jobId = detached.stdout.trim();
  const state = JSON.parse(sh("runc", ["--root", path.join(RUN_DIR, "runtime"), "state", jobId]).stdout) as { pid: number; status: string };
  assert.equal(state.status, "running");

  // Reinstalling the package is dpkg's upgrade path: prerm upgrade, unpack, postinst configure.
  const before = { daemon: sha256(DAEMON_CONFIG), rnx: sha256(RNX_CONFIG) };
  const up = sh("dpkg", ["-i", deb]);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  assert.match(up.stdout, /keeping the existing configuration in \/opt\/joblet\/config/);
  assert.deepEqual({ daemon: sha256(DAEMON_CONFIG), rnx: sha256(RNX_CONFIG) }, before, "configs untouched");
  assert.ok(existsSync(`/proc/${state.pid}`), "the job kept running through the upgrade");
  const status = JSON.parse(rnx(["status", "--json", jobId]).stdout) as { status: string };
  assert.equal(status.status, "RUNNING");

  // Purge with the job still running: postrm ends it, then deletes configs and state.
  await stopDaemon();
  const purge = sh("dpkg", ["--purge", "joblet"]);
  assert.equal(purge.code, 0, purge.stdout + purge.stderr);
  assert.ok(!installed());
  assert.match(sh("dpkg", ["-s", "joblet"]).stderr, /not installed/);
  for (const p of ["/opt/joblet", STATE_DIR, RUN_DIR, "/usr/bin/joblet", "/usr/bin/rnx", "/lib/systemd/system/joblet.service"]) {
    assert.ok(!existsSync(p) && !isLink(p), `${p} is gone`);
  }
  for (let i = 0; i < 100 && existsSync(`/proc/${state.pid}`); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(!existsSync(`/proc/${state.pid}`), "the running job was ended by the purge");
  for (const ctrl of readdirSync("/sys/fs/cgroup")) {
    assert.ok(!existsSync(path.join("/sys/fs/cgroup", ctrl, cgroupParent, jobId)), `job cgroup gone in ${ctrl}`);
  }
});

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
