// Test harness: a real joblet daemon (root, runc, conmon, cgroups, mTLS) in a private temp dir, driven
// through the real CLI (bin/rnx) or a real gRPC client. Needs `npm run build` first (npm test does it).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { credentials, type ServiceError } from "@grpc/grpc-js";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { JobletServiceClient, Stream, type DataChunk } from "../../src/shared/proto/joblet.js";
import { loadRnxConfig, selectNode } from "../../src/shared/config/rnx.js";
import { bundlesDir, runtimeRootDir } from "../../src/daemon/runtime/conmon.js";

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const JOBLET = path.join(ROOT, "bin", "joblet");
const RNX = path.join(ROOT, "bin", "rnx");

/** Result of one CLI run. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Deep-merges `patch` into `target` (objects only; other values replace). */
function merge(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v && typeof v === "object" && !Array.isArray(v) && target[k] && typeof target[k] === "object") {
      merge(target[k] as Record<string, unknown>, v as Record<string, unknown>);
    } else target[k] = v;
  }
}

/** A daemon under test. */
export class TestDaemon {
  readonly dir: string;
  readonly configFile: string;
  readonly rnxConfigFile: string;
  readonly cgroupParent: string;
  /**
   * The daemon's state.runDir (bundles, runc's root, conmon's sockets): a private dir on the /dev/shm tmpfs, as
   * /run is on systemd hosts (this test host's /run is on its disk), or <dir>/run without one.
   */
  runDir = "";
  port = 0;
  private proc: ChildProcess | undefined;
  /** Everything the daemon wrote to stderr (its log). */
  log = "";

  private constructor(dir: string) {
    this.dir = dir;
    this.configFile = path.join(dir, "joblet-config.yml");
    this.rnxConfigFile = path.join(dir, "rnx-config.yml");
    this.cgroupParent = `/joblet-test-${path.basename(dir).replace(/[^a-zA-Z0-9]/g, "")}`;
  }

  /** Creates configs with `joblet init` (plus `patch` merged into the daemon config) and starts the daemon. */
  static async start(patch: Record<string, unknown> = {}): Promise<TestDaemon> {
    const d = new TestDaemon(mkdtempSync(path.join(os.tmpdir(), "joblet-it-")));
    // Jobs' root is an unprivileged host uid (user namespace): it must be able to pass through to the state dir.
    chmodSync(d.dir, 0o711);
    d.port = await freePort();
    const init = spawnSync(JOBLET, ["init", "--dir", d.dir, "--port", String(d.port), "--force"], { encoding: "utf8" });
    if (init.status !== 0) throw new Error(`joblet init failed: ${init.stderr}`);
    const config = parseYaml(readFileSync(d.configFile, "utf8")) as Record<string, unknown>;
    d.runDir = existsSync("/dev/shm") ? mkdtempSync(path.join("/dev/shm", "joblet-it-run-")) : path.join(d.dir, "run");
    merge(config, { server: { address: "127.0.0.1" }, cgroup: { baseDir: `/sys/fs/cgroup${d.cgroupParent}` }, logging: { level: "debug" }, state: { runDir: d.runDir } });
    merge(config, patch);
    writeFileSync(d.configFile, stringifyYaml(config), { mode: 0o600 });
    await d.launch();
    return d;
  }

  /** Starts (or restarts) the daemon process and waits until it serves. */
  async launch(): Promise<void> {
    // JOBLET_DAEMON_NODE_ARGS adds Node flags for the daemon, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = process.env.JOBLET_DAEMON_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
    const proc = spawn(process.execPath, [...nodeArgs, JOBLET, "--config", this.configFile], { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = proc;
    // Only this process's output counts: the log still holds the "serving" line of an earlier start.
    let own = "";
    let onExit: ((code: number | null) => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${own}`)), 20_000);
        proc.stderr!.on("data", (d: Buffer) => {
          this.log += d.toString();
          own += d.toString();
          if (own.includes('"joblet serving"')) {
            clearTimeout(timer);
            resolve();
          }
        });
        onExit = (code) => {
          clearTimeout(timer);
          reject(new Error(`daemon exited with ${code}:\n${own}`));
        };
        proc.once("exit", onExit);
      });
    } finally {
      // Only this listener: a stopProcess() that began while the daemon was coming up has its own 'exit'
      // listener, and removing every listener lost that one — the stop then waited forever (a crash-loop run
      // hung when its SIGKILL landed between "joblet serving" and this line).
      proc.off("exit", onExit!);
    }
  }

  /** Stops the daemon process with `signal` and waits for it to exit. Jobs keep running. */
  async stopProcess(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    proc.kill(signal);
    return exited;
  }

  /** Runs bin/rnx with this daemon's client config (node "default" = admin unless args say otherwise). */
  rnx(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
    return runCli([RNX, "--config", this.rnxConfigFile, ...args], opts);
  }

  /** A gRPC client with the credentials of `node` ("default" = admin, "viewer"). */
  client(node = "default"): JobletServiceClient {
    const n = selectNode(loadRnxConfig(this.rnxConfigFile), node);
    return new JobletServiceClient(
      `localhost:${this.port}`,
      credentials.createSsl(Buffer.from(n.caPem), Buffer.from(n.keyPem), Buffer.from(n.certPem)),
    );
  }

  /** PID of the running daemon process (it is the spawned process itself). */
  get pid(): number {
    if (!this.proc?.pid || this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error("the daemon is not running");
    return this.proc.pid;
  }

  /** The runtime's --root under the daemon's state.runDir (the daemon's own layout, runtime/conmon.ts). */
  runtimeRoot(): string {
    return runtimeRootDir({ stateDir: path.join(this.dir, "state"), runDir: this.runDir });
  }

  /** The daemon's bundles dir under its state.runDir, one `<id>` per job not yet cleaned up. */
  bundlesDir(): string {
    return bundlesDir({ stateDir: path.join(this.dir, "state"), runDir: this.runDir });
  }

  /** `runc state` of job `id` in this daemon's runtime root, or undefined when runc does not know it. */
  runtimeState(id: string): { status: string; pid: number } | undefined {
    const r = spawnSync("runc", ["--root", this.runtimeRoot(), "state", id], { encoding: "utf8" });
    if (r.status !== 0) return undefined;
    return JSON.parse(r.stdout) as { status: string; pid: number };
  }

  /** Containers the runtime still knows about. */
  runtimeContainers(): string[] {
    const res = spawnSync("runc", ["--root", this.runtimeRoot(), "list", "-q"], { encoding: "utf8" });
    return res.stdout.split("\n").filter(Boolean);
  }

  /** Job cgroups left under this daemon's cgroup parent, in any hierarchy. */
  leftoverCgroups(): string[] {
    const out: string[] = [];
    for (const ctrl of readdirSync("/sys/fs/cgroup")) {
      const dir = path.join("/sys/fs/cgroup", ctrl, this.cgroupParent);
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir, { withFileTypes: true })) if (name.isDirectory()) out.push(path.join(dir, name.name));
    }
    return out;
  }

  /** Stops the daemon, kills any job still running, removes cgroups and the temp dir. */
  async destroy(): Promise<void> {
    await this.stopProcess("SIGKILL");
    for (const id of this.runtimeContainers()) {
      spawnSync("runc", ["--root", this.runtimeRoot(), "delete", "--force", id]);
    }
    for (const ctrl of readdirSync("/sys/fs/cgroup")) {
      const dir = path.join("/sys/fs/cgroup", ctrl, this.cgroupParent);
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir, { withFileTypes: true })) if (name.isDirectory()) rmSync(path.join(dir, name.name), { recursive: false, force: true });
      try {
        rmSync(dir, { recursive: false, force: true });
      } catch {
        spawnSync("rmdir", [dir]);
      }
    }
    for (const ctrl of readdirSync("/sys/fs/cgroup")) spawnSync("rmdir", [path.join("/sys/fs/cgroup", ctrl, this.cgroupParent)]);
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

/** A grpc-js unary call as a promise: `unary<Res>((cb) => client.listJobs({}, cb))`. */
export function unary<Res>(fn: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res!))));
}

/** Runs a command (argv[0] a JS file run with this Node) and collects its output. */
export function runCli(argv: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, NO_COLOR: "1", RNX_CACHE_DIR: process.env.RNX_CACHE_DIR ?? rnxCacheDir(), ...opts.env };
    const proc = spawn(process.execPath, argv, { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    proc.stdout.on("data", (d: Buffer) => out.push(d));
    proc.stderr.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`timed out: ${argv.join(" ")}\nstdout: ${Buffer.concat(out)}\nstderr: ${Buffer.concat(err)}`));
    }, opts.timeoutMs ?? 60_000);
    proc.once("error", reject);
    proc.once("close", (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBytes.toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), stdoutBytes });
    });
    proc.stdin.end(opts.input ?? "");
  });
}

let cacheDir: string | undefined;
/**
 * rnx's cache dir for this test process (verified daemon certificates), removed at exit: tests never write
 * into the home directory of whoever runs them, and every rnx after a daemon's first uses the cache.
 */
function rnxCacheDir(): string {
  if (!cacheDir) {
    const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-it-rnx-cache-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    cacheDir = dir;
  }
  return cacheDir;
}

/** Job `id`'s whole output through GetJobLogs, split by stream (follows it until the job ends). */
export function jobOutput(client: JobletServiceClient, id: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const s = client.getJobLogs({ id, fromOffset: 0 });
    s.on("data", (ch: DataChunk) => (ch.stream === Stream.STDERR ? err : out).push(Buffer.from(ch.payload)));
    s.on("error", reject);
    s.on("end", () => resolve({ stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }));
  });
}
