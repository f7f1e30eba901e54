// rnx run --upload/--upload-dir end to end against a fake daemon: real child processes, real gRPC over real
// mutual TLS; the fake records every upload message, so the tests check what actually went over the wire.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { Stream, UploadKind, type Job, type RunJobReq, type UploadEntry, type UploadReq } from "../../shared/proto/joblet.js";
import { FakeDaemon, FakeStatus, fakeJob, type FakeUploadCall, type FakeUploadHandlers } from "../test-support/fake-daemon.js";
import { rnx, rnxProcess } from "../test-support/run-cli.js";

const ID = "0d5c6f3a-1111-4222-8333-444455556666";
const ended = { endTime: "2025-01-02T03:05:05Z" };
const LIMITS = { maxBytes: 1024 * 1024 * 1024, maxEntries: 100_000 };

/** A daemon that accepts uploads, runs the job (its output "ran\n"), and ends it with `exitCode`. */
function uploadDaemon(upload: Partial<FakeUploadHandlers> = {}, exitCode = 0): Promise<FakeDaemon> {
  let started: Job | undefined;
  return FakeDaemon.start({
    runJobWithUploads: {
      accept: () => ({ jobId: ID, ...LIMITS }),
      start: (received) => {
        const header = received[0]!.part as Extract<UploadReq["part"], { $case: "header" }>;
        started = fakeJob({ ...header.header.job, id: ID });
        return started;
      },
      ...upload,
    },
    getJobLogs: async (_req, send) => {
      await send({ payload: Buffer.from("ran\n"), stream: Stream.STDOUT, offset: 0 });
    },
    getJobStatus: () => ({ ...(started ?? fakeJob({ id: ID })), ...ended, status: exitCode === 0 ? "COMPLETED" : "FAILED", exitCode }),
  });
}

/** The upload call the daemon recorded (there must be exactly one). */
function uploadCall(d: FakeDaemon): FakeUploadCall {
  const calls = d.calls.filter((c) => c[0] === "runJobWithUploads");
  assert.equal(calls.length, 1, "one RunJobWithUploads call");
  return calls[0]![1] as FakeUploadCall;
}

/** The entries received, each with the bytes that followed it. */
function files(messages: readonly UploadReq[]): Array<{ entry: UploadEntry; data: Buffer }> {
  const out: Array<{ entry: UploadEntry; data: Buffer }> = [];
  for (const m of messages) {
    if (m.part?.$case === "entry") out.push({ entry: m.part.entry, data: Buffer.alloc(0) });
    if (m.part?.$case === "data") {
      const last = out.at(-1) ?? assert.fail("data before any entry");
      last.data = Buffer.concat([last.data, m.part.data]);
    }
  }
  return out;
}

describe("rnx run --upload / --upload-dir (fake daemon, real mTLS)", () => {
  const daemons: FakeDaemon[] = [];
  const track = async (d: Promise<FakeDaemon>) => {
    const daemon = await d;
    daemons.push(daemon);
    return daemon;
  };
  let dir: string;
  let big: Buffer;
  before(() => {
    // The README's example: a small Python script and a small test directory with a link in it.
    dir = mkdtempSync(path.join(os.tmpdir(), "rnx-upload-e2e-"));
    writeFileSync(path.join(dir, "script.py"), "import sys\nprint('hello from', sys.argv[0])\n");
    chmodSync(path.join(dir, "script.py"), 0o755);
    mkdirSync(path.join(dir, "tests", "unit"), { recursive: true });
    chmodSync(path.join(dir, "tests"), 0o755);
    chmodSync(path.join(dir, "tests", "unit"), 0o700);
    writeFileSync(path.join(dir, "tests", "unit", "test_a.py"), "def test_a():\n    assert True\n");
    chmodSync(path.join(dir, "tests", "unit", "test_a.py"), 0o640);
    symlinkSync("/etc/passwd", path.join(dir, "tests", "passwd-link"));
    big = randomBytes(6 * 1024 * 1024 + 3);
    mkdirSync(path.join(dir, "project"));
    writeFileSync(path.join(dir, "project", "data.bin"), big);
    chmodSync(path.join(dir, "project", "data.bin"), 0o600);
    writeFileSync(path.join(dir, "project", "Makefile"), "test:\n\ttrue\n");
    chmodSync(path.join(dir, "project", "Makefile"), 0o644);
  });
  after(async () => {
    for (const d of daemons) await d.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("sends header (the same RunJobReq as RunJob, totals), accepted, entries with their bytes, end; then runs as usual", async () => {
    const d = await track(uploadDaemon({}, 3));
    const r = await rnx(["--config", d.configPath, "run", "--upload", "script.py", "--upload=tests/", "--max-memory", "64", "-e", "A=1", "python3", "script.py", "--x"], { cwd: dir });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout.toString(), "ran\n");
    assert.equal(r.stderr, "", "no progress line when stderr is not a terminal");
    assert.deepEqual(d.calls.map((c) => c[0]), ["runJobWithUploads", "getJobLogs", "getJobStatus"], "never plain RunJob");
    const call = uploadCall(d);
    assert.ok(call.halfClosed);
    assert.ok(!call.cancelled);
    const kinds = call.messages.map((m) => m.part?.$case);
    assert.deepEqual(kinds, ["header", "entry", "data", "entry", "entry", "entry", "entry", "data", "end"]);
    const job: RunJobReq = {
      command: "python3",
      args: ["script.py", "--x"],
      maxCPU: 0,
      cpuCores: "",
      maxMemory: 64,
      maxIOBPS: 0,
      timeoutMs: 0,
      env: ["A=1"],
      workdir: "",
      network: "",
    };
    const script = "import sys\nprint('hello from', sys.argv[0])\n";
    const test = "def test_a():\n    assert True\n";
    assert.deepEqual(call.messages[0], {
      part: { $case: "header", header: { job, totalBytes: script.length + test.length, totalEntries: 5 } },
    });
    assert.deepEqual(
      files(call.messages).map(({ entry, data }) => [entry.path, entry.kind, entry.mode.toString(8), entry.size, entry.linkTarget, data.toString()]),
      [
        ["script.py", UploadKind.FILE, "755", script.length, "", script],
        ["tests", UploadKind.DIRECTORY, "755", 0, "", ""],
        ["tests/passwd-link", UploadKind.SYMLINK, "777", 0, "/etc/passwd", ""],
        ["tests/unit", UploadKind.DIRECTORY, "700", 0, "", ""],
        ["tests/unit/test_a.py", UploadKind.FILE, "640", test.length, "", test],
      ],
    );
  });

  test("--upload-dir and --upload together; a large file arrives byte for byte in 256 KiB messages; --detach prints the ID", async () => {
    const d = await track(uploadDaemon());
    const r = await rnx(["--config", d.configPath, "run", "-d", "--upload-dir", "project", "--upload", path.join(dir, "script.py"), "make", "test"], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `${ID}\n`);
    assert.deepEqual(d.calls.map((c) => c[0]), ["runJobWithUploads"]);
    const call = uploadCall(d);
    const header = call.messages[0]!.part as Extract<UploadReq["part"], { $case: "header" }>;
    assert.equal(header.header.totalEntries, 3);
    assert.equal(header.header.totalBytes, big.length + 13 + 43);
    const received = files(call.messages);
    assert.deepEqual(received.map((f) => [f.entry.path, f.entry.mode.toString(8)]), [["Makefile", "644"], ["data.bin", "600"], ["script.py", "755"]]);
    assert.ok(received[1]!.data.equals(big), "data.bin reassembled");
    const sizes = call.messages.flatMap((m) => (m.part?.$case === "data" ? [m.part.data.length] : []));
    assert.ok(sizes.every((n) => n <= 256 * 1024), `chunks of at most 256 KiB: ${sizes.join(",")}`);
    assert.equal(call.messages.at(-1)!.part?.$case, "end");
  });

  test("refused at the header: nothing but the header is sent, the server's message and exit code as for RunJob", async () => {
    for (const [code, details, exit] of [
      [grpc.status.RESOURCE_EXHAUSTED, "upload of 6.0 MiB exceeds uploads.maxTotalMB (1 MB)", 1],
      [grpc.status.INVALID_ARGUMENT, "maxMemory: expected 0 or more, got -1", 2],
    ] as const) {
      const d = await track(
        uploadDaemon({
          accept: () => {
            throw new FakeStatus(code, details, "upload less");
          },
        }),
      );
      const r = await rnx(["--config", d.configPath, "run", "--upload-dir", "project", "make"], { cwd: dir });
      assert.equal(r.code, exit, r.stderr);
      assert.match(r.stderr, new RegExp(`^rnx: error: joblet at localhost:\\d+ refused RunJobWithUploads: ${details.replace(/[().]/g, "\\$&")}$`, "m"));
      assert.match(r.stderr, /^hint: upload less$/m, "the daemon's hint wins");
      assert.deepEqual(uploadCall(d).messages.map((m) => m.part?.$case), ["header"], "no data after a refusal");
      assert.deepEqual(d.calls.map((c) => c[0]), ["runJobWithUploads"]);
    }
  });

  test("the server failing the call mid-upload: rnx stops sending and reports it", async () => {
    const d = await track(
      uploadDaemon({
        onMessage: (msg) => {
          if (msg.part?.$case === "data") throw new FakeStatus(grpc.status.INVALID_ARGUMENT, 'entry "data.bin": the work dir is full');
        },
      }),
    );
    const r = await rnx(["--config", d.configPath, "run", "--upload-dir", "project", "make"], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /refused RunJobWithUploads: entry "data\.bin": the work dir is full/);
    assert.ok(!uploadCall(d).messages.some((m) => m.part?.$case === "end"));
  });

  test("a server without RunJobWithUploads: a clear message that it does not support uploads (exit 1)", async () => {
    const d = await track(FakeDaemon.start({ runJob: (req) => fakeJob({ ...req, id: ID }) }));
    const r = await rnx(["--config", d.configPath, "run", "--upload", "script.py", "python3", "script.py"], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^rnx: error: joblet at localhost:\d+ does not support uploads \(--upload, --upload-dir\): it does not implement RunJobWithUploads$/m);
    assert.match(r.stderr, /^hint: the server runs an older Joblet; upgrade it, or run the job without --upload\/--upload-dir$/m);
    assert.ok(!d.calls.some((c) => c[0] === "runJob"), "no silent fallback to a job without its files");
  });

  test("a viewer certificate is refused (exit 4)", async () => {
    const d = await track(uploadDaemon());
    const r = await rnx(["--config", d.configPath, "--node", "viewer", "run", "--upload", "script.py", "python3"], { cwd: dir });
    assert.equal(r.code, 4);
    assert.match(r.stderr, /permission denied for RunJobWithUploads/);
  });

  test("what the CLI can refuse is refused before the config is read or anything is sent (exit 2)", async () => {
    mkdirSync(path.join(dir, "odd"));
    execFileSync("mkfifo", [path.join(dir, "odd", "fifo")]);
    mkdirSync(path.join(dir, "elsewhere", "tests"), { recursive: true });
    for (const [args, message] of [
      [["--upload", "odd"], '--upload: expected regular files, directories and symlinks only, got "odd/fifo (a FIFO)"'],
      [["--upload", "tests", "--upload", "elsewhere/tests"], '--upload: "tests" (from --upload tests) and "elsewhere/tests" (from --upload elsewhere/tests) would both become /work/tests'],
      [["--upload-dir", "project", "--upload-dir", "tests"], '--upload-dir: expected one directory (its contents become /work), got ["project","tests"]'],
      [["--upload", "missing.txt"], '--upload: expected an existing file or directory, got "missing.txt"'],
      [["--upload-dir", "script.py"], '--upload-dir: expected a directory (its contents become /work), got "script.py"'],
    ] as const) {
      const r = await rnx(["--config", "/nonexistent/rnx.yml", "run", ...args, "ls"], { cwd: dir });
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.split("\n")[0], `rnx: error: ${message}`);
      assert.equal(r.stdout.length, 0);
    }
  });

  test("Ctrl-C during the upload cancels it and says the job will not start (exit 130)", async () => {
    let sawData: () => void = () => {};
    const dataSeen = new Promise<void>((resolve) => (sawData = resolve));
    const d = await track(
      uploadDaemon({
        onMessage: (msg, call) => {
          if (msg.part?.$case === "data") {
            // Stop reading: the client's writes back up, so it is still uploading when the signal comes.
            call.pause();
            sawData();
          }
        },
      }),
    );
    const { child, done } = rnxProcess(["--config", d.configPath, "run", "--upload-dir", "project", "make"], { cwd: dir });
    await dataSeen;
    child.kill("SIGINT");
    const r = await done;
    assert.equal(r.code, 130, r.stderr);
    assert.equal(
      r.stderr,
      `\nrnx: interrupted during the upload; cancelled it, so job ${ID} will not start (the server records it as FAILED and removes the files uploaded so far): see \`rnx status ${ID}\`\n`,
    );
    const call = uploadCall(d);
    for (let i = 0; i < 100 && !call.cancelled; i++) await sleep(50);
    assert.ok(call.cancelled, "the daemon sees the call cancelled");
    assert.ok(!call.halfClosed);
    assert.ok(!call.messages.some((m) => m.part?.$case === "end"));
  });
});
