// rnx end to end against a fake daemon: real child processes (real exit codes, real stdout/stderr
// separation), real gRPC over real mutual TLS; only the daemon's behaviour is scripted.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Stream, type Job } from "../shared/proto/joblet.js";
import { generatePki } from "../shared/tls/certs.js";
import { FakeDaemon, FakeStatus, fakeJob, rnxConfigYaml } from "./test-support/fake-daemon.js";
import { rnx, rnxProcess } from "./test-support/run-cli.js";

const ID = "0d5c6f3a-1111-4222-8333-444455556666";
const ended = { endTime: "2025-01-02T03:05:05Z" };

/** A daemon whose jobs print `out` on stdout and `err` on stderr, then end as `final`. */
async function scriptedDaemon(final: Partial<Job>, out = "to stdout\n", err = "to stderr\n") {
  let started: Job | undefined;
  return FakeDaemon.start({
    runJob: (req) => (started = fakeJob({ ...req, id: ID })),
    getJobLogs: async (_req, send) => {
      await send({ payload: Buffer.from(out), stream: Stream.STDOUT, offset: 0 });
      await send({ payload: Buffer.from(err), stream: Stream.STDERR, offset: out.length });
    },
    getJobStatus: (id) => {
      if (!ID.startsWith(id)) throw new FakeStatus(grpc.status.NOT_FOUND, `job "${id}" not found`);
      return { ...(started ?? fakeJob()), ...ended, ...final };
    },
  });
}

describe("rnx end to end (fake daemon, real mTLS)", () => {
  const daemons: FakeDaemon[] = [];
  const track = async (d: Promise<FakeDaemon>) => {
    const daemon = await d;
    daemons.push(daemon);
    return daemon;
  };
  after(async () => {
    for (const d of daemons) await d.close();
  });

  test("run: streams stdout and stderr separately and exits with the job's exit code", async () => {
    const d = await track(scriptedDaemon({ status: "FAILED", exitCode: 3 }));
    const r = await rnx(["--config", d.configPath, "run", "--max-cpu=50", "--max-memory", "64", "python3", "-c", "x", "--foo"]);
    assert.equal(r.stdout.toString(), "to stdout\n");
    assert.equal(r.stderr, "to stderr\n");
    assert.equal(r.code, 3);
    const [rpc, req] = d.calls[0]!;
    assert.equal(rpc, "runJob");
    assert.deepEqual(req, {
      command: "python3",
      args: ["-c", "x", "--foo"],
      maxCPU: 50,
      cpuCores: "",
      maxMemory: 64,
      maxIOBPS: 0,
      timeoutMs: 0,
      env: [],
      workdir: "",
      network: "",
    });
    assert.deepEqual(d.calls.map((c) => c[0]), ["runJob", "getJobLogs", "getJobStatus"]);
  });

  test("run: the exit code comes from the final record in the log stream's trailers, without GetJobStatus", async () => {
    const d = await track(
      FakeDaemon.start({
        runJob: (req) => fakeJob({ ...req, id: ID }),
        getJobLogs: async (_req, send) => {
          await send({ payload: Buffer.from("out\n"), stream: Stream.STDOUT, offset: 0 });
          return fakeJob({ id: ID, ...ended, status: "FAILED", exitCode: 7 });
        },
      }),
    );
    const r = await rnx(["--config", d.configPath, "run", "sh", "-c", "exit 7"]);
    assert.equal(r.stdout.toString(), "out\n");
    assert.equal(r.code, 7, r.stderr);
    assert.deepEqual(d.calls.map((c) => c[0]), ["runJob", "getJobLogs"], "no GetJobStatus (the fake does not implement it)");
  });

  test("run: --timeout, -e/--env, --workdir and --network are sent as the request's fields", async () => {
    const d = await track(scriptedDaemon({ status: "COMPLETED", exitCode: 0 }));
    const r = await rnx(
      ["--config", d.configPath, "run", "--timeout=1m", "-e", "A=1", "--env", "FROM_RNX", "-e", "NOT_SET", "--workdir", "/work/src/", "--network=none", "env", "-e", "X"],
      { env: { FROM_RNX: "inherited value" } },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(d.calls[0], [
      "runJob",
      {
        command: "env",
        args: ["-e", "X"],
        maxCPU: 0,
        cpuCores: "",
        maxMemory: 0,
        maxIOBPS: 0,
        timeoutMs: 60_000,
        env: ["A=1", "FROM_RNX=inherited value"],
        workdir: "src",
        network: "none",
      },
    ]);
  });

  test("run: an invalid new flag is refused before anything is read or sent, naming flag, form and value", async () => {
    for (const [args, message] of [
      [["--timeout", "soon"], '--timeout: expected a duration such as "30s", "5m", "1h", "500ms" or "2d", or a whole number of seconds, got "soon"'],
      [["-e", "1X=2"], "--env: expected KEY=VALUE (or KEY to pass on rnx's own $KEY), KEY made of letters, digits and _, not starting with a digit, got \"1X=2\""],
      [["--workdir=../etc"], '--workdir: expected a directory relative to /work such as "src/app" (or "/work/src/app"), without "." or ".." parts, got "../etc"'],
      [["--network", "bridge"], '--network: expected "host" (the host\'s network) or "none" (loopback only), got "bridge"'],
    ] as const) {
      const r = await rnx(["--config", "/nonexistent/rnx.yml", "run", ...args, "ls"]);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.stderr, `rnx: error: ${message}\n`);
      assert.equal(r.stdout.length, 0);
    }
  });

  test("run: a job stopped by its timeout exits 124 with a note on stderr; its output still arrives", async () => {
    const d = await track(
      scriptedDaemon({ status: "STOPPED", exitCode: 143, signal: "SIGTERM", timedOut: true, timeoutMs: 30_000, reason: "timed out after 30s" }, "tick\n", ""),
    );
    const r = await rnx(["--config", d.configPath, "run", "--timeout", "30s", "sleep", "100"]);
    assert.equal(r.code, 124);
    assert.equal(r.stdout.toString(), "tick\n");
    assert.equal(r.stderr, `rnx: job ${ID} was stopped with SIGTERM because it ran past its timeout (timed out after 30s); exit code 124\n`);
    assert.equal((d.calls[0]![1] as { timeoutMs: number }).timeoutMs, 30_000);
  });

  test("run: a completed job exits 0", async () => {
    const d = await track(scriptedDaemon({ status: "COMPLETED", exitCode: 0 }));
    const r = await rnx(["run", "--config", d.configPath, "true"]);
    assert.equal(r.code, 0);
  });

  test("run: an OOM-killed job exits 137 and says why on stderr", async () => {
    const d = await track(scriptedDaemon({ status: "FAILED", exitCode: 137, signal: "SIGKILL", oomKilled: true, maxMemory: 64 }, "", ""));
    const r = await rnx(["--config", d.configPath, "run", "--max-memory", "64", "hog"]);
    assert.equal(r.code, 137);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /killed for exceeding its memory limit \(64 MB\)/);
  });

  test("run: a job killed by a signal exits 128+N", async () => {
    const d = await track(scriptedDaemon({ status: "FAILED", exitCode: 0, signal: "SIGSEGV" }, "", ""));
    const r = await rnx(["--config", d.configPath, "run", "crash"]);
    assert.equal(r.code, 139);
    assert.match(r.stderr, /killed by SIGSEGV/);
  });

  test("run: binary output of several MiB arrives byte for byte through a pipe", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const d = await track(
      FakeDaemon.start({
        runJob: (req) => fakeJob({ ...req, id: ID }),
        getJobLogs: async (_req, send) => {
          for (let off = 0; off < data.length; off += 65536) {
            await send({ payload: data.subarray(off, off + 65536), stream: Stream.STDOUT, offset: off });
          }
        },
        getJobStatus: () => fakeJob({ id: ID, status: "COMPLETED", ...ended }),
      }),
    );
    const r = await rnx(["--config", d.configPath, "run", "cat", "/dev/urandom"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, data.length);
    assert.ok(r.stdout.equals(data), "stdout differs from the job's output");
  });

  test("run: when the daemon restarts mid-stream, rnx reconnects and resumes without repeating output", async () => {
    let resumedFrom = -1;
    const first = await FakeDaemon.start({
      runJob: (req) => fakeJob({ ...req, id: ID }),
      getJobLogs: async (_req, send, signal) => {
        await send({ payload: Buffer.from("part one\n"), stream: Stream.STDOUT, offset: 0 });
        await new Promise((resolve) => signal.addEventListener("abort", resolve));
      },
    });
    const { child, done } = rnxProcess(["--config", first.configPath, "run", "long-job"]);
    await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
    // The daemon goes away with the stream open, and comes back on the same port with the same PKI.
    first.server.forceShutdown();
    const second = await track(
      FakeDaemon.start(
        {
          getJobLogs: async (req, send) => {
            resumedFrom = req.fromOffset;
            // Starts inside the chunk already delivered: rnx must skip "one\n".
            await send({ payload: Buffer.from("one\npart two\n"), stream: Stream.STDOUT, offset: 5 });
          },
          getJobStatus: () => fakeJob({ id: ID, status: "COMPLETED", ...ended }),
        },
        { pki: first.pki, port: first.port },
      ),
    );
    const r = await done;
    await first.close();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), "part one\npart two\n");
    assert.equal(resumedFrom, 9);
    assert.match(r.stderr, /lost the connection while following job .*; reconnecting/);
    assert.ok(second.calls.some((c) => c[0] === "getJobStatus"));
  });

  test("run --detach prints only the job ID and does not follow", async () => {
    const d = await track(scriptedDaemon({ status: "RUNNING" }));
    const r = await rnx(["--config", d.configPath, "run", "-d", "sleep", "100"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.toString(), `${ID}\n`);
    assert.equal(r.stderr, "");
    assert.deepEqual(d.calls.map((c) => c[0]), ["runJob"]);
  });

  test("run: Ctrl-C detaches, leaves the job running and says how to follow or stop it", async () => {
    const d = await track(
      FakeDaemon.start({
        runJob: (req) => fakeJob({ ...req, id: ID }),
        getJobLogs: async (_req, send, signal) => {
          await send({ payload: Buffer.from("started\n"), stream: Stream.STDOUT, offset: 0 });
          await new Promise((resolve) => signal.addEventListener("abort", resolve));
        },
      }),
    );
    const { child, done } = rnxProcess(["--config", d.configPath, "run", "sleep", "1000"]);
    await new Promise<void>((resolve) => {
      let seen = "";
      child.stdout!.on("data", (b: Buffer) => {
        seen += b.toString();
        if (seen.includes("started")) resolve();
      });
    });
    child.kill("SIGINT");
    const r = await done;
    assert.equal(r.code, 130);
    assert.match(r.stderr, new RegExp(`job ${ID} keeps running`));
    assert.match(r.stderr, new RegExp(`rnx log ${ID}`));
    assert.match(r.stderr, new RegExp(`rnx stop ${ID}`));
    assert.ok(!d.calls.some((c) => c[0] === "stopJob"), "Ctrl-C must not stop the job");
  });

  test("run: an invalid flag is refused before anything is read or sent (exit 2)", async () => {
    const r = await rnx(["--config", "/nonexistent/rnx.yml", "run", "--max-memory", "1GB", "ls"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'rnx: error: --max-memory: expected a whole number of megabytes, 0 or more (512 = 512 MB), got "1GB"\n');
    assert.equal(r.stdout.length, 0);
  });

  test("list: the table is oldest first whatever order the daemon sends", async () => {
    const jobs = [
      fakeJob({ id: "cccccccc-0000", createTime: "2025-01-02T00:00:03Z" }),
      fakeJob({ id: "aaaaaaaa-0000", createTime: "2025-01-02T00:00:01Z" }),
      fakeJob({ id: "bbbbbbbb-0000", createTime: "2025-01-02T00:00:02Z" }),
    ];
    const d = await track(FakeDaemon.start({ listJobs: () => jobs }));
    const r = await rnx(["list", "--config", d.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const ids = r.stdout.toString().trimEnd().split("\n").slice(1).map((l) => l.split(" ")[0]);
    assert.deepEqual(ids, ["aaaaaaaa", "bbbbbbbb", "cccccccc"]);
  });

  test("list --json: an array of jobs with the proto's field names", async () => {
    const jobs = [
      fakeJob({ id: "bbbbbbbb-0000", createTime: "2025-01-02T00:00:02Z", usage: { cpuTimeNs: 5, memoryPeakBytes: 6, ioReadBytes: 7, ioWriteBytes: 8 } }),
      fakeJob({ id: "aaaaaaaa-0000", createTime: "2025-01-02T00:00:01Z", status: "COMPLETED", ...ended }),
    ];
    const d = await track(FakeDaemon.start({ listJobs: () => jobs }));
    const r = await rnx(["list", "--json", "--config", d.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const parsed = JSON.parse(r.stdout.toString()) as Array<Record<string, unknown>>;
    assert.deepEqual(
      parsed.map((j) => j.id),
      ["aaaaaaaa-0000", "bbbbbbbb-0000"],
      "oldest first",
    );
    assert.deepEqual(Object.keys(parsed[0]!), [
      "id", "command", "args", "maxCPU", "cpuCores", "maxMemory", "maxIOBPS", "status", "startTime", "endTime",
      "exitCode", "signal", "oomKilled", "reason", "usage", "createTime", "timeoutMs", "timedOut", "workdir", "network", "upload",
    ]);
    assert.equal(parsed[0]!.usage, null);
    assert.equal(parsed[0]!.upload, null);
    assert.deepEqual(parsed[1]!.usage, { cpuTimeNs: 5, memoryPeakBytes: 6, ioReadBytes: 7, ioWriteBytes: 8 });
  });

  test("list: a plain table without colour when stdout is not a terminal; --status filters", async () => {
    const d = await track(
      FakeDaemon.start({
        listJobs: () => [
          fakeJob({ id: "aaaaaaaa-0000-1", command: "sleep", args: ["100"] }),
          fakeJob({ id: "bbbbbbbb-0000-2", status: "FAILED", exitCode: 1, ...ended }),
        ],
      }),
    );
    const r = await rnx(["list", "--config", d.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().trimEnd().split("\n");
    assert.match(lines[0]!, /^ID +STATUS +START +DURATION +COMMAND$/);
    assert.match(lines[1]!, /^aaaaaaaa +RUNNING .* sleep 100$/);
    assert.match(lines[2]!, /^bbbbbbbb +FAILED +\S+ \S+ +1m00s +echo hi$/);
    assert.ok(!r.stdout.includes(0x1b), "no escape codes when stdout is a pipe");
    const f = await rnx(["list", "--status", "failed", "--config", d.configPath]);
    assert.equal(f.stdout.toString().trimEnd().split("\n").length, 2);
    const bad = await rnx(["list", "--status", "sleeping", "--config", d.configPath]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--status: expected one or more of INITIALIZING, RUNNING, COMPLETED, FAILED, STOPPED/);
  });

  test("status: every field in text, and --json", async () => {
    const d = await track(
      scriptedDaemon({
        status: "FAILED",
        exitCode: 137,
        signal: "SIGKILL",
        oomKilled: true,
        maxCPU: 150,
        maxMemory: 64,
        maxIOBPS: 1048576,
        cpuCores: "0-1",
        reason: "out of memory",
        timeoutMs: 90_000,
        workdir: "src/app",
        network: "none",
        usage: { cpuTimeNs: 1_500_000_000, memoryPeakBytes: 64 * 1024 * 1024, ioReadBytes: 0, ioWriteBytes: 2048 },
        upload: { files: 12, directories: 3, symlinks: 1, bytes: 4300, roots: ["script.py", "tests"] },
      }),
    );
    const r = await rnx(["status", "0d5c", "--config", d.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.toString();
    for (const re of [
      /^ID: +0d5c6f3a-1111-4222-8333-444455556666$/m,
      /^Status: +FAILED$/m,
      /^Exit code: +137$/m,
      /^Signal: +SIGKILL$/m,
      /^OOM killed: +yes/m,
      /^Reason: +out of memory$/m,
      /^Max CPU: +150% of one CPU$/m,
      /^CPU cores: +0-1$/m,
      /^Max memory: +64 MB$/m,
      /^Max IO: +1048576 bytes\/s \(1\.0 MiB\/s\)$/m,
      /^CPU time: +1\.5s$/m,
      /^Memory peak: +64\.0 MiB$/m,
      /^IO written: +2\.0 KiB$/m,
      /^Ended: .*2025-01-02T03:05:05Z/m,
      /^Timeout: +90s$/m,
      /^Timed out: +no$/m,
      /^Workdir: +\/work\/src\/app$/m,
      /^Network: +none$/m,
      /^Uploaded: +12 files, 3 dirs, 1 symlink, 4\.2 KiB: script\.py, tests$/m,
    ]) {
      assert.match(text, re);
    }
    const j = await rnx(["status", "--json", "--config", d.configPath, "0d5c"]);
    const job = JSON.parse(j.stdout.toString()) as Record<string, unknown>;
    assert.deepEqual(job.upload, { files: 12, directories: 3, symlinks: 1, bytes: 4300, roots: ["script.py", "tests"] });
    assert.equal(job.oomKilled, true);
    assert.equal(job.maxIOBPS, 1048576);
    assert.deepEqual([job.timeoutMs, job.timedOut, job.workdir, job.network], [90_000, false, "src/app", "none"]);
  });

  test("status: a timed-out job says so; defaults read as none and /work", async () => {
    const d = await track(scriptedDaemon({ status: "STOPPED", timedOut: true, timeoutMs: 0, workdir: "", network: "host", reason: "timed out after 30s" }));
    const r = await rnx(["status", ID, "--config", d.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.toString();
    for (const re of [/^Timeout: +none$/m, /^Timed out: +yes \(stopped because it ran past its timeout\)$/m, /^Workdir: +\/work$/m, /^Network: +host$/m, /^Uploaded: +-$/m]) {
      assert.match(text, re);
    }
  });

  describe("rm", () => {
    const RUNNING = "1111aaaa-0000-4000-8000-000000000001";
    const DONE_A = "2222bbbb-0000-4000-8000-000000000002";
    const DONE_B = "2222cccc-0000-4000-8000-000000000003";
    /** A daemon that deletes finished jobs by unique prefix, like the real one. */
    function rmDaemon() {
      const jobs = new Map([
        [RUNNING, "RUNNING"],
        [DONE_A, "COMPLETED"],
        [DONE_B, "FAILED"],
      ]);
      return FakeDaemon.start({
        deleteJob: (prefix) => {
          const ids = [...jobs.keys()].filter((id) => id.startsWith(prefix));
          if (ids.length === 0) throw new FakeStatus(grpc.status.NOT_FOUND, `no job with ID ${prefix}`, "list jobs with `rnx list`");
          if (ids.length > 1) throw new FakeStatus(grpc.status.INVALID_ARGUMENT, `id: the prefix "${prefix}" matches several jobs: ${ids.join(", ")}`);
          const id = ids[0]!;
          if (jobs.get(id) === "RUNNING") throw new FakeStatus(grpc.status.FAILED_PRECONDITION, `job ${id} is RUNNING; stop it before deleting it`, `rnx stop ${id}`);
          jobs.delete(id);
          return { id };
        },
      });
    }

    test("deletes finished jobs by unique prefix and prints each full ID", async () => {
      const d = await track(rmDaemon());
      const r = await rnx(["rm", "2222b", "2222c", "--config", d.configPath]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), `job ${DONE_A} deleted\njob ${DONE_B} deleted\n`);
      assert.deepEqual(d.calls, [["deleteJob", { id: "2222b" }], ["deleteJob", { id: "2222c" }]]);
      const again = await rnx(["delete", DONE_A, "--config", d.configPath]);
      assert.equal(again.code, 5, "deleted means gone");
      assert.match(again.stderr, /^rnx: error: no job with ID 2222bbbb-.* \(on joblet at localhost:\d+\)$/m);
    });

    test("a running job is refused with the server's message (exit 1); the other IDs are still deleted", async () => {
      const d = await track(rmDaemon());
      const r = await rnx(["rm", "1111", "2222b", "--config", d.configPath]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout.toString(), `job ${DONE_A} deleted\n`);
      assert.match(r.stderr, new RegExp(`^rnx: error: joblet at localhost:\\d+ refused DeleteJob: job ${RUNNING} is RUNNING; stop it before deleting it$`, "m"));
      assert.match(r.stderr, new RegExp(`^hint: rnx stop ${RUNNING}$`, "m"));
    });

    test("an ambiguous prefix exits 2 listing the matches; an unknown ID exits 5; the first failure's code wins", async () => {
      const d = await track(rmDaemon());
      const amb = await rnx(["rm", "2222", "--config", d.configPath]);
      assert.equal(amb.code, 2);
      assert.match(amb.stderr, /matches several jobs: 2222bbbb-.*, 2222cccc-/);
      assert.match(amb.stderr, /hint: give more characters of the job ID/);
      const both = await rnx(["rm", "ffff", "2222", "--config", d.configPath]);
      assert.equal(both.code, 5);
      assert.equal(both.stderr.match(/^rnx: error:/gm)?.length, 2, "both failures are reported");
    });

    test("--json prints the deleted IDs; a viewer is refused (exit 4) and nothing else is tried", async () => {
      const d = await track(rmDaemon());
      const j = await rnx(["rm", "--json", "2222b", "--config", d.configPath]);
      assert.equal(j.code, 0, j.stderr);
      assert.deepEqual(JSON.parse(j.stdout.toString()), [{ id: DONE_A }]);
      const v = await rnx(["rm", "2222c", "1111", "--node", "viewer", "--config", d.configPath]);
      assert.equal(v.code, 4);
      assert.match(v.stderr, /permission denied for DeleteJob.*\n.*DeleteJob needs role admin/);
      assert.equal(v.stderr.match(/^rnx: error:/gm)?.length, 1, "a permission failure ends the command");
    });
  });

  test("stop: prints the result; a finished job is FAILED_PRECONDITION → exit 1", async () => {
    const d = await track(
      FakeDaemon.start({
        stopJob: (id) => {
          if (id === "done") throw new FakeStatus(grpc.status.FAILED_PRECONDITION, "job done… has already ended (COMPLETED)", "nothing to stop");
          return { id: ID, status: "STOPPED", endTime: "2025-01-02T03:05:05Z", exitCode: 143 };
        },
      }),
    );
    const r = await rnx(["stop", "0d5c", "--config", d.configPath]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `job ${ID} stopped at 2025-01-02T03:05:05Z (exit code 143)\n`);
    const f = await rnx(["stop", "done", "--config", d.configPath]);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /refused StopJob: job done… has already ended/);
    assert.match(f.stderr, /^hint: nothing to stop$/m, "the daemon's hint arrives through trailing metadata");
  });

  test("log: history to stdout/stderr by stream, exit 0", async () => {
    const d = await track(scriptedDaemon({ status: "COMPLETED" }, "o\n", "e\n"));
    const r = await rnx(["log", ID.slice(0, 4), "--config", d.configPath]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), "o\n");
    assert.equal(r.stderr, "e\n");
  });

  test("unknown job → NOT_FOUND, exit 5", async () => {
    const d = await track(scriptedDaemon({}));
    const r = await rnx(["status", "ffff", "--config", d.configPath]);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /job "ffff" not found/);
    assert.match(r.stderr, /hint: .*rnx list/);
  });

  test("viewer certificate running a job → PERMISSION_DENIED, exit 4, naming role and operation", async () => {
    const d = await track(scriptedDaemon({}));
    const r = await rnx(["--config", d.configPath, "--node", "viewer", "run", "--", "ls", "-la"]);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /permission denied for RunJob/);
    assert.match(r.stderr, /role viewer \(OU=viewer\); RunJob needs role admin/);
    const ok = await rnx(["--config", d.configPath, "--node", "viewer", "status", ID]);
    assert.equal(ok.code, 0, "a viewer may read status");
  });

  test("server down → exit 3 naming the address", async () => {
    const d = await scriptedDaemon({});
    const config = d.configPath.replace(/rnx-config\.yml$/, "down.yml");
    writeFileSync(config, rnxConfigYaml(d.pki, `localhost:${d.port}`));
    const port = d.port;
    d.server.forceShutdown();
    const r = await rnx(["list", "--config", config]);
    await d.close();
    assert.equal(r.code, 3);
    assert.match(r.stderr, new RegExp(`cannot reach joblet at localhost:${port} \\(node "default" in .*down\\.yml\\): connection refused`));
  });

  test("TLS: a config whose CA did not sign the server certificate → exit 3, unknown CA", async () => {
    const d = await track(scriptedDaemon({}));
    const other = await generatePki({ address: "localhost" });
    const config = path.join(d.dir, "other.yml");
    writeFileSync(config, rnxConfigYaml({ ...d.pki, caCertPem: other.caCertPem }, `localhost:${d.port}`));
    const r = await rnx(["list", "--config", config]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /unknown CA/);
  });

  test("TLS: a client certificate from another installation → exit 3, rejected client certificate", async () => {
    const d = await track(scriptedDaemon({}));
    const other = await generatePki({ address: "localhost" });
    const config = path.join(d.dir, "client.yml");
    writeFileSync(config, rnxConfigYaml({ ...d.pki, adminCertPem: other.adminCertPem, adminKeyPem: other.adminKeyPem }, `localhost:${d.port}`));
    const r = await rnx(["list", "--config", config]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /did not accept the client certificate/);
    assert.match(r.stderr, /mixes two installations/);
  });

  test("--server and JOBLET_SERVER override the node's address and keep its credentials; IP targets print no warning", async () => {
    const d = await track(FakeDaemon.start({ listJobs: () => [] }));
    const config = path.join(d.dir, "wrong-address.yml");
    writeFileSync(config, rnxConfigYaml(d.pki, "localhost:1"));
    const viaFlag = await rnx(["list", "--json", "--config", config, "--server", `127.0.0.1:${d.port}`]);
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
    assert.equal(viaFlag.stdout.toString(), "[]\n");
    assert.equal(viaFlag.stderr, "", "no DEP0123 warning for an IP address");
    const viaEnv = await rnx(["list", "--json", "--config", config], { env: { JOBLET_SERVER: `localhost:${d.port}` } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const flagWins = await rnx(["list", "--config", config, "--server", "localhost:1"], { env: { JOBLET_SERVER: `localhost:${d.port}` } });
    assert.equal(flagWins.code, 3);
    const bad = await rnx(["list", "--config", config, "--server", "no-port"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--server: expected a server address "host:port"/);
  });

  test("nodes: every node, the default marked, certificate summarised but never printed", async () => {
    const d = await track(FakeDaemon.start({ listJobs: () => [fakeJob()] }));
    const r = await rnx(["nodes", "--config", d.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.toString();
    assert.match(out, /^\* +default +localhost:\d+ +admin +O=Joblet, OU=admin, CN=admin-client +\d{4}-\d\d-\d\d \(\d+ days\)$/m);
    assert.match(out, /^ +viewer +localhost:\d+ +viewer /m);
    assert.ok(!/BEGIN|PRIVATE|MII/.test(out), "no PEM material in the output");
    const sel = await rnx(["nodes", "--node", "viewer", "--json", "--config", d.configPath]);
    const nodes = JSON.parse(sel.stdout.toString()) as Array<{ name: string; default: boolean; cert: { role: string } }>;
    assert.deepEqual(nodes.map((n) => [n.name, n.default, n.cert.role]), [["default", false, "admin"], ["viewer", true, "viewer"]]);
    assert.ok(!sel.stdout.toString().includes("BEGIN"));
    const q = await rnx(["nodes", "-q", "--config", d.configPath]);
    assert.equal(q.stdout.toString(), "default\nviewer\n");
  });

  test("nodes --check: reachable with latency; a node that is down fails the command with exit 3", async () => {
    const d = await track(FakeDaemon.start({ listJobs: () => [fakeJob()] }));
    const ok = await rnx(["nodes", "--check", "--config", d.configPath]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout.toString(), /^\* +default .* ok \d+ ms, 1 jobs$/m);
    const config = path.join(d.dir, "two.yml");
    writeFileSync(
      config,
      rnxConfigYaml(d.pki, `localhost:${d.port}`).replace(/^  viewer:\n    address: .*$/m, "  viewer:\n    address: localhost:1"),
    );
    const down = await rnx(["nodes", "--check", "--json", "--config", config]);
    assert.equal(down.code, 3);
    const nodes = JSON.parse(down.stdout.toString()) as Array<{ name: string; check: { reachable: boolean; error: string | null } }>;
    assert.equal(nodes[0]!.check.reachable, true);
    assert.equal(nodes[1]!.check.reachable, false);
    assert.match(nodes[1]!.check.error!, /connection refused/);
  });

  test("list -q prints only the IDs", async () => {
    const d = await track(FakeDaemon.start({ listJobs: () => [fakeJob({ id: "a-1" }), fakeJob({ id: "b-2" })] }));
    const r = await rnx(["list", "-q", "--config", d.configPath]);
    assert.equal(r.stdout.toString(), "a-1\nb-2\n");
  });

  describe("config problems", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), "rnx-noconfig-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    test("no config anywhere → exit 5 listing where it looked", async () => {
      const r = await rnx(["list"], { cwd: dir, env: { HOME: dir } });
      assert.equal(r.code, 5);
      assert.match(r.stderr, /no rnx config found \(looked in \.\/rnx-config\.yml/);
      assert.match(r.stderr, /hint: .*config-help/);
    });

    test("--config naming a missing file → exit 5; unknown node → exit 5; invalid file → exit 2", async () => {
      assert.equal((await rnx(["list", "--config", path.join(dir, "nope.yml")])).code, 5);
      const d = await track(FakeDaemon.start({}));
      const n = await rnx(["list", "--config", d.configPath, "--node", "prod"]);
      assert.equal(n.code, 5);
      assert.match(n.stderr, /node "prod" is not in .*nodes: default, viewer/);
      const bad = path.join(dir, "bad.yml");
      writeFileSync(bad, 'version: "3.0"\nnodes:\n  default:\n    address: nohostport\n');
      const b = await rnx(["list", "--config", bad]);
      assert.equal(b.code, 2);
      assert.match(b.stderr, /nodes\.default\.address/);
    });
  });
});
