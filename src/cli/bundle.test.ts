// The distributed rnx: scripts/bundle-cli.mjs builds one ESM file, which is copied into a directory with no
// node_modules anywhere above it and run there with plain `node`: --version, --help, and real commands over
// real mTLS against a fake daemon. Also bin/rnx: it answers --version without loading the bundle, runs the
// bundle otherwise, and falls back to dist/cli/main.js without one.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Stream } from "../shared/proto/joblet.js";
import { FakeDaemon, fakeJob, type FakeUploadCall } from "./test-support/fake-daemon.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const version = (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node file args…` in `cwd` with a minimal environment (no NODE_PATH, no tsx, HOME in the sandbox). */
function runNode(file: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { cwd, env: { PATH: process.env.PATH, HOME: cwd, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("the bundled rnx (one file, Node only)", () => {
  let dir: string;
  let bundle: string;
  let daemon: FakeDaemon;
  const ID = "0d5c6f3a-1111-4222-8333-444455556666";

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "rnx-bundle-"));
    const built = path.join(dir, "build", "rnx.mjs");
    const r = spawnSync(process.execPath, [path.join(root, "scripts", "bundle-cli.mjs"), "--outfile", built], { cwd: root, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    // The copy a user downloads: alone in a directory, nothing to resolve packages from.
    const alone = path.join(dir, "alone");
    mkdirSync(alone);
    bundle = path.join(alone, "rnx.mjs");
    copyFileSync(built, bundle);
    for (let d = alone; d !== path.dirname(d); d = path.dirname(d)) {
      assert.ok(!existsSync(path.join(d, "node_modules")), `${d}/node_modules would let a missing dependency go unnoticed`);
    }
    daemon = await FakeDaemon.start({
      listJobs: () => [fakeJob({ id: ID, command: "python3", args: ["-c", "print(1)"], status: "COMPLETED", endTime: "2025-01-02T03:05:05Z" })],
      runJob: (req) => fakeJob({ ...req, id: ID }),
      runJobWithUploads: { accept: () => ({ jobId: ID, maxBytes: 1 << 20, maxEntries: 10 }), start: () => fakeJob({ id: ID }) },
      getJobLogs: async (_req, send) => {
        await send({ payload: Buffer.from("hello from the job\n"), stream: Stream.STDOUT, offset: 0 });
      },
      getJobStatus: () => fakeJob({ id: ID, status: "STOPPED", signal: "SIGTERM", timedOut: true, timeoutMs: 1000, reason: "timed out after 1s", endTime: "2025-01-02T03:05:05Z" }),
    });
  });
  after(async () => {
    await daemon?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("is one executable ESM file with its dependencies' licences, and no grpc-js, zod or cli-table3 inside", () => {
    const text = readFileSync(bundle, "utf8");
    assert.ok(text.startsWith("#!/usr/bin/env node\n"));
    assert.ok(statSync(bundle).mode & 0o100, "executable");
    assert.match(text, /^commander \d+\.\d+\.\d+, licence: MIT$/m);
    assert.match(text, /^@bufbuild\/protobuf \d+\.\d+\.\d+, licence: .*Apache-2\.0/m);
    assert.ok(!text.includes("node_modules/@grpc/"), "rnx speaks gRPC with its own client (src/cli/grpc/)");
    assert.ok(!/^@grpc\//m.test(text), "no grpc-js licence: it is not bundled");
    assert.ok(!text.includes("node_modules/zod/"), "the CLI config is validated without zod");
    assert.ok(!text.includes("node_modules/cli-table3/"));
    assert.ok(statSync(bundle).size < 1024 * 1024, `${statSync(bundle).size} bytes`);
  });

  test("--version prints the version inlined at build time; --help the usage and exit codes", async () => {
    const v = await runNode(bundle, ["--version"], path.dirname(bundle));
    assert.deepEqual(v, { code: 0, stdout: `${version}\n`, stderr: "" });
    const h = await runNode(bundle, ["--help"], path.dirname(bundle));
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^Usage: rnx /);
    assert.match(h.stdout, /124 +rnx run: the job ran past its timeout/);
  });

  test("list talks gRPC over mutual TLS to a daemon and prints the table and JSON", async () => {
    const r = await runNode(bundle, ["--config", daemon.configPath, "list"], path.dirname(bundle));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ID +STATUS +START +DURATION +COMMAND\n0d5c6f3a +COMPLETED .* python3 -c 'print\(1\)'\n$/);
    const j = await runNode(bundle, ["list", "--json"], path.dirname(bundle), { RNX_CONFIG: daemon.configPath });
    assert.equal(j.code, 0, j.stderr);
    assert.equal((JSON.parse(j.stdout) as Array<{ id: string }>)[0]!.id, ID);
  });

  test("run streams the job's output and exits 124 when its timeout stopped it", async () => {
    const r = await runNode(bundle, ["--config", daemon.configPath, "run", "--timeout", "1s", "-e", "A=1", "sleep", "10"], path.dirname(bundle));
    assert.equal(r.stdout, "hello from the job\n");
    assert.equal(r.code, 124, r.stderr);
    assert.match(r.stderr, /ran past its timeout \(timed out after 1s\)/);
  });

  test("run --upload streams a file to the daemon", async () => {
    writeFileSync(path.join(path.dirname(bundle), "job.py"), "print(1)\n");
    const r = await runNode(bundle, ["--config", daemon.configPath, "run", "-d", "--upload", "job.py", "python3", "job.py"], path.dirname(bundle));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${ID}\n`);
    const call = daemon.calls.find((c) => c[0] === "runJobWithUploads")![1] as FakeUploadCall;
    assert.deepEqual(call.messages.map((m) => m.part?.$case), ["header", "entry", "data", "end"]);
  });

  test("bin/rnx runs the program with the build's code cache, and without it when the cache does not fit", async () => {
    // A package layout: bin/rnx, dist/rnx.mjs and the cache the build trained.
    const pkgDir = path.join(dir, "pkg");
    mkdirSync(path.join(pkgDir, "bin"), { recursive: true });
    mkdirSync(path.join(pkgDir, "dist"));
    copyFileSync(path.join(root, "bin", "rnx"), path.join(pkgDir, "bin", "rnx"));
    copyFileSync(path.join(root, "bin", "package.json"), path.join(pkgDir, "bin", "package.json"));
    copyFileSync(path.join(dir, "build", "rnx.mjs"), path.join(pkgDir, "dist", "rnx.mjs"));
    const cache = path.join(pkgDir, "dist", "rnx.mjs.cache");
    copyFileSync(path.join(dir, "build", "rnx.mjs.cache"), cache);
    const list = async () => {
      const r = await runNode(path.join(pkgDir, "bin", "rnx"), ["--config", daemon.configPath, "list"], pkgDir, { RNX_DEBUG_CODE_CACHE: "1" });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^ID +STATUS .*\n0d5c6f3a +COMPLETED /);
      return /^rnx: code cache (\w+)$/m.exec(r.stderr)?.[1];
    };
    assert.equal(await list(), "used");
    // Another bundle's (or Node version's) cache is not even handed to V8; a damaged one V8 rejects.
    const good = readFileSync(cache);
    writeFileSync(cache, good.toString("latin1").replace(/^rnx-code-cache [0-9a-f]{8}/, "rnx-code-cache 00000000"), "latin1");
    assert.equal(await list(), "absent");
    const nl = good.indexOf(10);
    writeFileSync(cache, Buffer.concat([good.subarray(0, nl + 1), Buffer.alloc(4096, 7)]));
    assert.equal(await list(), "rejected");
    rmSync(cache);
    assert.equal(await list(), "absent");
  });

  test("errors keep their exit codes: no config is 5, a bad flag 2", async () => {
    const none = await runNode(bundle, ["list"], path.dirname(bundle));
    assert.equal(none.code, 5);
    assert.match(none.stderr, /^rnx: error: no rnx config found/);
    const bad = await runNode(bundle, ["run", "--network", "bridge", "ls"], path.dirname(bundle));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--network: expected "host"/);
  });
});

describe("bin/rnx", () => {
  let dir: string;
  /** A package layout like an installed one: bin/rnx (CommonJS by bin/package.json), package.json, and a dist/ the test fills. */
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "rnx-bin-"));
    mkdirSync(path.join(dir, "bin"));
    mkdirSync(path.join(dir, "dist", "cli"), { recursive: true });
    copyFileSync(path.join(root, "bin", "rnx"), path.join(dir, "bin", "rnx"));
    chmodSync(path.join(dir, "bin", "rnx"), 0o755);
    copyFileSync(path.join(root, "bin", "package.json"), path.join(dir, "bin", "package.json"));
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "joblet", version: "9.8.7-test", type: "module" }));
    writeFileSync(path.join(dir, "dist", "cli", "main.js"), 'process.stdout.write("compiled main " + process.argv.slice(2).join(" ") + "\\n");\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("answers --version and -v from package.json without loading the bundle", async () => {
    writeFileSync(path.join(dir, "dist", "rnx.mjs"), 'throw new Error("the bundle was loaded");\n');
    for (const flag of ["--version", "-v"]) {
      assert.deepEqual(await runNode(path.join(dir, "bin", "rnx"), [flag], dir), { code: 0, stdout: "9.8.7-test\n", stderr: "" });
    }
  });

  test("runs the bundle for everything else, and dist/cli/main.js when there is no bundle", async () => {
    writeFileSync(path.join(dir, "dist", "rnx.mjs"), 'process.stdout.write("bundle " + process.argv.slice(2).join(" ") + "\\n");\n');
    assert.equal((await runNode(path.join(dir, "bin", "rnx"), ["list", "-q"], dir)).stdout, "bundle list -q\n");
    assert.equal((await runNode(path.join(dir, "bin", "rnx"), ["--version", "x"], dir)).stdout, "bundle --version x\n", "only a lone --version is answered early");
    rmSync(path.join(dir, "dist", "rnx.mjs"));
    assert.equal((await runNode(path.join(dir, "bin", "rnx"), ["list"], dir)).stdout, "compiled main list\n");
  });
});
