import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { JobletError } from "../shared/errors.js";
import { runCli, type CommandHandlers } from "./program.js";
import { memoryIo } from "./test-support/memory-io.js";

/** Handlers that record what the parser handed over and return `code`. */
function recorder(code = 0) {
  const calls: Array<{ cmd: string; args: unknown[] }> = [];
  const rec =
    (cmd: string) =>
    async (...args: unknown[]) => {
      calls.push({ cmd, args: args.slice(0, -1) }); // drop io
      return code;
    };
  const handlers: CommandHandlers = {
    run: rec("run"),
    list: rec("list"),
    status: rec("status"),
    log: rec("log"),
    stop: rec("stop"),
    rm: rec("rm"),
    nodes: rec("nodes"),
    configHelp: rec("configHelp"),
    completion: rec("completion"),
  };
  return { calls, handlers };
}

async function parse(argv: string[]) {
  const { calls, handlers } = recorder();
  const io = memoryIo();
  const code = await runCli(argv, io, handlers);
  return { code, calls, out: io.out(), err: io.err() };
}

describe("rnx argument parsing", () => {
  test("run: rnx's flags before CMD, everything from CMD on belongs to the job", async () => {
    const r = await parse(["run", "--max-cpu=50", "python3", "-c", "x", "--foo"]);
    assert.equal(r.code, 0);
    assert.equal(r.calls.length, 1);
    const [command, args, flags, globals] = r.calls[0]!.args as [string, string[], Record<string, unknown>, Record<string, unknown>];
    assert.equal(command, "python3");
    assert.deepEqual(args, ["-c", "x", "--foo"]);
    assert.equal(flags.maxCpu, "50");
    assert.deepEqual(globals, { config: undefined, node: undefined, server: undefined });
  });

  test("run: both --flag=value and --flag value forms", async () => {
    const r = await parse(["run", "--max-memory", "256", "--max-iobps=1000", "--cpu-cores", "0-1", "-d", "sleep", "5"]);
    const [command, args, flags] = r.calls[0]!.args as [string, string[], Record<string, unknown>];
    assert.equal(command, "sleep");
    assert.deepEqual(args, ["5"]);
    assert.deepEqual(
      { maxMemory: flags.maxMemory, maxIobps: flags.maxIobps, cpuCores: flags.cpuCores, detach: flags.detach },
      { maxMemory: "256", maxIobps: "1000", cpuCores: "0-1", detach: true },
    );
  });

  test("run: --timeout, -e/--env (repeatable), --workdir, --network in both forms, before the command only", async () => {
    const r = await parse(["run", "--timeout", "30s", "-e", "A=1", "--env=B=2", "-eC", "--env", "D=x y", "--workdir=src/app", "--network", "none", "env", "-e", "X=1", "--timeout", "9"]);
    assert.equal(r.code, 0, r.err);
    const [command, args, flags] = r.calls[0]!.args as [string, string[], Record<string, unknown>];
    assert.equal(command, "env");
    assert.deepEqual(args, ["-e", "X=1", "--timeout", "9"], "the job's own -e and --timeout stay the job's");
    assert.deepEqual(
      { timeout: flags.timeout, env: flags.env, workdir: flags.workdir, network: flags.network },
      { timeout: "30s", env: ["A=1", "B=2", "C", "D=x y"], workdir: "src/app", network: "none" },
    );
    const other = await parse(["run", "--timeout=5m", "--workdir", "w", "--network=host", "true"]);
    const f = other.calls[0]!.args[2] as Record<string, unknown>;
    assert.deepEqual({ timeout: f.timeout, workdir: f.workdir, network: f.network, env: f.env }, { timeout: "5m", workdir: "w", network: "host", env: undefined });
  });

  test("run: --upload and --upload-dir collect every value in order; after the command they are the job's", async () => {
    const r = await parse(["run", "--upload", "a.py", "--upload=data/", "--upload-dir", "proj", "--upload-dir=other", "python3", "--upload", "x"]);
    assert.equal(r.code, 0, r.err);
    const [command, args, flags] = r.calls[0]!.args as [string, string[], Record<string, unknown>];
    assert.equal(command, "python3");
    assert.deepEqual(args, ["--upload", "x"]);
    assert.deepEqual({ upload: flags.upload, uploadDir: flags.uploadDir }, { upload: ["a.py", "data/"], uploadDir: ["proj", "other"] });
    const none = await parse(["run", "true"]);
    const f = none.calls[0]!.args[2] as Record<string, unknown>;
    assert.deepEqual({ upload: f.upload, uploadDir: f.uploadDir }, { upload: undefined, uploadDir: undefined });
    for (const flag of ["--upload", "--upload-dir"]) {
      const missing = await parse(["run", flag]);
      assert.equal(missing.code, 2, flag);
      assert.match(missing.err, /argument missing/, flag);
    }
  });

  test("run: a value-taking new flag without its value is a usage error", async () => {
    for (const flag of ["--timeout", "-e", "--env", "--workdir", "--network"]) {
      const r = await parse(["run", flag]);
      assert.equal(r.code, 2, flag);
      assert.match(r.err, /argument missing/, flag);
    }
  });

  test("rm (alias delete) takes one or more IDs", async () => {
    const r = await parse(["rm", "abc", "0d5c", "--json", "--node", "n"]);
    const [ids, flags, globals] = r.calls[0]!.args as [string[], Record<string, unknown>, Record<string, unknown>];
    assert.equal(r.calls[0]!.cmd, "rm");
    assert.deepEqual(ids, ["abc", "0d5c"]);
    assert.equal(flags.json, true);
    assert.deepEqual(globals, { config: undefined, node: "n", server: undefined });
    assert.deepEqual((await parse(["delete", "x"])).calls[0]!.args[0], ["x"]);
    const none = await parse(["rm"]);
    assert.equal(none.code, 2);
    assert.match(none.err, /missing required argument 'id'/);
  });

  test("rnx --node viewer run -- ls -la", async () => {
    const r = await parse(["--node", "viewer", "run", "--", "ls", "-la"]);
    const [command, args, , globals] = r.calls[0]!.args as [string, string[], unknown, Record<string, unknown>];
    assert.equal(command, "ls");
    assert.deepEqual(args, ["-la"]);
    assert.equal(globals.node, "viewer");
  });

  test("-- lets the job's command itself start with a dash", async () => {
    const r = await parse(["run", "--", "--weird-prog", "--x"]);
    const [command, args] = r.calls[0]!.args as [string, string[]];
    assert.equal(command, "--weird-prog");
    assert.deepEqual(args, ["--x"]);
  });

  test("rnx options after the job's command go to the job, not to rnx", async () => {
    const r = await parse(["run", "ls", "--node", "x", "--max-cpu", "5", "--", "y"]);
    const [command, args, flags, globals] = r.calls[0]!.args as [string, string[], Record<string, unknown>, Record<string, unknown>];
    assert.equal(command, "ls");
    assert.deepEqual(args, ["--node", "x", "--max-cpu", "5", "--", "y"]);
    assert.equal(flags.maxCpu, undefined);
    assert.equal(globals.node, undefined);
  });

  test("global options are accepted after the command name too", async () => {
    for (const argv of [
      ["list", "--config", "/c.yml", "--node", "n", "--server", "h:1"],
      ["--config", "/c.yml", "list", "--node", "n", "--server", "h:1"],
      ["--config", "/c.yml", "--node", "n", "--server", "h:1", "list"],
    ]) {
      const r = await parse(argv);
      assert.equal(r.code, 0, argv.join(" "));
      assert.deepEqual(r.calls[0]!.args[1], { config: "/c.yml", node: "n", server: "h:1" }, argv.join(" "));
    }
    const r = await parse(["status", "abc", "--node", "viewer", "--json"]);
    assert.deepEqual(r.calls[0]!.args[0], "abc");
    assert.equal((r.calls[0]!.args[1] as Record<string, unknown>).json, true);
    assert.deepEqual(r.calls[0]!.args[2], { config: undefined, node: "viewer", server: undefined });
    const s = await parse(["run", "--node", "viewer", "--server=h:2", "ls"]);
    assert.equal((s.calls[0]!.args[3] as Record<string, unknown>).node, "viewer");
    assert.equal((s.calls[0]!.args[3] as Record<string, unknown>).server, "h:2");
  });

  test("the value after the command name wins over the one before it", async () => {
    const r = await parse(["--node", "a", "list", "--node", "b"]);
    assert.equal((r.calls[0]!.args[1] as Record<string, unknown>).node, "b");
  });

  test("list --status and --json, log, stop", async () => {
    const r = await parse(["ls", "--status", "running,failed", "--json"]);
    assert.deepEqual(r.calls[0], { cmd: "list", args: [{ status: "running,failed", json: true }, { config: undefined, node: undefined, server: undefined }] });
    assert.equal((await parse(["log", "abc"])).calls[0]!.args[0], "abc");
    assert.equal((await parse(["logs", "abc"])).calls[0]!.cmd, "log");
    assert.deepEqual((await parse(["stop", "abc"])).calls[0]!.args[0], "abc");
  });

  test("nodes, config-help, completion", async () => {
    const n = await parse(["nodes", "--check", "--json", "--config", "/c.yml"]);
    assert.equal(n.calls[0]!.cmd, "nodes");
    assert.equal((n.calls[0]!.args[0] as Record<string, unknown>).check, true);
    assert.equal((n.calls[0]!.args[1] as Record<string, unknown>).config, "/c.yml");
    assert.deepEqual((await parse(["config-help"])).calls[0], { cmd: "configHelp", args: [] });
    const c = await parse(["completion", "bash"]);
    assert.equal(c.calls[0]!.args[0], "bash");
    const spec = c.calls[0]!.args[1] as { commands: Array<{ name: string; args: string[]; options: Array<{ flags: string[] }> }> };
    const run = spec.commands.find((x) => x.name === "run")!;
    assert.deepEqual(run.args, ["command", "args"]);
    assert.deepEqual(spec.commands.find((x) => x.name === "rm")!.args, ["id..."]);
    assert.ok(run.options.some((o) => o.flags.includes("-e") && o.flags.includes("--env")));
    assert.ok(run.options.some((o) => o.flags.includes("--max-cpu")));
    assert.deepEqual(spec.commands.find((x) => x.name === "stop")!.args, ["id"]);
  });

  test("usage errors exit 2 and name the problem", async () => {
    for (const [argv, needle] of [
      [["run"], "missing required argument 'command'"],
      [["status"], "missing required argument 'id'"],
      [["run", "--max-cpux=5", "ls"], "unknown option '--max-cpux=5'"],
      [["list", "--bogus"], "unknown option '--bogus'"],
      [["frobnicate"], "unknown command 'frobnicate'"],
      [["run", "--max-cpu"], "argument missing"],
    ] as const) {
      const r = await parse([...argv]);
      assert.equal(r.code, 2, argv.join(" "));
      assert.match(r.err, new RegExp(needle.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), argv.join(" "));
      assert.equal(r.calls.length, 0);
    }
  });

  test("--help and --version exit 0; help lists the exit codes", async () => {
    const h = await parse(["--help"]);
    assert.equal(h.code, 0);
    assert.match(h.out, /Exit codes:/);
    assert.match(h.out, /3 +cannot connect/);
    assert.match(h.out, /124 +rnx run: the job ran past its timeout/);
    assert.match(h.out, /rnx stop 0d5c && rnx rm 0d5c/);
    const run = await parse(["run", "--help"]);
    assert.equal(run.code, 0);
    for (const needle of [
      "--timeout <duration>", "-e, --env <KEY=VALUE>", "--workdir <dir>", "--network <mode>", "rnx run exits 124", "-e KEY without =VALUE",
      "--upload <path>", "--upload-dir <dir>", "uploads.maxTotalMB", "uploads.maxEntries", "uploaded as links", "0644 files, 0755 directories",
    ]) {
      assert.ok(run.out.includes(needle), needle);
    }
    const v = await parse(["--version"]);
    assert.equal(v.code, 0);
    assert.match(v.out, /^\d+\.\d+\.\d+/);
    assert.equal((await parse(["-v"])).code, 0);
  });

  test("no command prints help on stderr and exits 2", async () => {
    const r = await parse([]);
    assert.equal(r.code, 2);
    assert.match(r.err, /Usage: rnx/);
  });

  test("a handler's JobletError is printed with its hint and mapped to an exit code", async () => {
    const io = memoryIo();
    const handlers = recorder().handlers;
    handlers.list = async () => {
      throw new JobletError("NOT_FOUND", "job abc not found", { hint: "try rnx list" });
    };
    assert.equal(await runCli(["list"], io, handlers), 5);
    assert.equal(io.err(), "rnx: error: job abc not found\nhint: try rnx list\n");
    assert.equal(io.out(), "");
  });

  test("an unexpected exception is reported as a bug with exit 1", async () => {
    const io = memoryIo();
    const handlers = recorder().handlers;
    handlers.list = async () => {
      throw new TypeError("boom");
    };
    assert.equal(await runCli(["list"], io, handlers), 1);
    assert.match(io.err(), /internal error.*TypeError: boom/s);
  });

  test("the handler's return value is the exit code", async () => {
    const { handlers } = recorder(42);
    assert.equal(await runCli(["run", "false"], memoryIo(), handlers), 42);
  });
});
