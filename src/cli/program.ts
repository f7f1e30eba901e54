// rnx's command tree (commander 14). Only commander and small pure modules load at start-up: each action
// imports its command module (and through it the gRPC client, node:http2 and the config parser) when it runs, so
// `rnx --version` and `rnx --help` stay fast.
//
// Parsing rules: global options (--config, --node, --server) are declared on the program and again on every
// subcommand, so they work before or after the command name. `run` uses positional options with
// pass-through: from the first word that is not one of run's options on, everything belongs to the job,
// including words that look like flags; `--` also ends rnx's options.
import { Command, CommanderError } from "commander";
import { JobletError } from "../shared/errors.js";
import { jobletErrorText } from "./error-text.js";
import { EXIT_CODES_HELP, ExitCode, exitCodeFor } from "./exit-codes.js";
import type { CompletionSpec, OptionSpec } from "./commands/completion.js";
import type { ListFlags } from "./commands/list.js";
import type { NodesFlags } from "./commands/nodes.js";
import type { RmFlags } from "./commands/rm.js";
import type { RunFlags } from "./commands/run.js";
import type { StatusFlags } from "./commands/status.js";
import type { StopFlags } from "./commands/stop.js";
import type { CliIo } from "./io.js";
import type { GlobalOptions } from "./target.js";
import { rnxVersion } from "./version.js";

/** Environment variables rnx reads, for --help. */
const ENV_HELP = `Environment:
  RNX_CONFIG     config file to use when --config is not given (searched first)
  JOBLET_SERVER  HOST:PORT overriding the node's address (--server wins over it)
  RNX_CACHE_DIR  where rnx remembers daemon certificates it verified (default: the user's cache dir
                 + /joblet, e.g. ~/.cache/joblet; "off": nowhere)
  NO_COLOR       set to disable colours (they are also off when stdout is not a terminal)`;

/** A few common command lines, for `rnx --help`. */
const EXAMPLES_HELP = `Examples:
  rnx run --timeout 5m -e MODE=fast make test   run a job, follow its output, exit with its exit code
  rnx run -d --max-memory 512 ./server          start a job in the background; prints only its ID
  rnx list --status running
  rnx log 0d5c                                  a unique prefix of a job ID is enough
  rnx stop 0d5c && rnx rm 0d5c                  stop a job, then delete its record, output and work dir`;

const CONFIG_SEARCH_HELP = `Config search when --config is absent: $RNX_CONFIG, ./rnx-config.yml, ./config/rnx-config.yml,
~/.rnx/rnx-config.yml, /etc/joblet/rnx-config.yml, /opt/joblet/config/rnx-config.yml`;

/** What each command does once its words are parsed; resolves with rnx's exit code. */
export interface CommandHandlers {
  run(command: string, args: string[], flags: RunFlags, globals: GlobalOptions, io: CliIo): Promise<number>;
  list(flags: ListFlags, globals: GlobalOptions, io: CliIo): Promise<number>;
  status(id: string, flags: StatusFlags, globals: GlobalOptions, io: CliIo): Promise<number>;
  log(id: string, globals: GlobalOptions, io: CliIo): Promise<number>;
  stop(id: string, flags: StopFlags, globals: GlobalOptions, io: CliIo): Promise<number>;
  rm(ids: string[], flags: RmFlags, globals: GlobalOptions, io: CliIo): Promise<number>;
  nodes(flags: NodesFlags, globals: GlobalOptions, io: CliIo): Promise<number>;
  configHelp(io: CliIo): Promise<number>;
  completion(shell: string, spec: CompletionSpec, io: CliIo): Promise<number>;
}

/** The real commands, each loaded when first used. */
export const lazyHandlers: CommandHandlers = {
  run: async (...a) => (await import("./commands/run.js")).runCommand(...a),
  list: async (...a) => (await import("./commands/list.js")).listCommand(...a),
  status: async (...a) => (await import("./commands/status.js")).statusCommand(...a),
  log: async (...a) => (await import("./commands/log.js")).logCommand(...a),
  stop: async (...a) => (await import("./commands/stop.js")).stopCommand(...a),
  rm: async (...a) => (await import("./commands/rm.js")).rmCommand(...a),
  nodes: async (...a) => (await import("./commands/nodes.js")).nodesCommand(...a),
  configHelp: async (...a) => (await import("./commands/config-help.js")).configHelpCommand(...a),
  completion: async (...a) => (await import("./commands/completion.js")).completionCommand(...a),
};

/** The JSON shape of a job, for the help of the commands that print one. */
const JOB_JSON_HELP = `
JSON fields (names as in the gRPC API; always present):
  id, command, args[], maxCPU (percent), cpuCores, maxMemory (MB), maxIOBPS (bytes/s), status,
  startTime, endTime (RFC 3339; "" while running), exitCode, signal ("" if none), oomKilled, reason,
  usage {cpuTimeNs, memoryPeakBytes, ioReadBytes, ioWriteBytes} or null, createTime,
  timeoutMs (0 = none), timedOut (stopped for running past timeoutMs), workdir (relative to /work;
  "" = /work), network ("host" or "none"), upload {files, directories, symlinks, bytes, roots[]} or
  null (what --upload/--upload-dir put into /work; roots = its top-level names, at most 100)`;

/** `rnx run`'s examples and notes, after its options in `rnx run --help`. */
const RUN_HELP = `
Examples:
  rnx run ps aux
  rnx run --max-cpu=50 --max-memory 256 python3 -c 'print(1)' --job-flag
  rnx run --timeout 5m -e MODE=fast -e HOME --workdir src/app make test
  rnx run --network=none --timeout=90 python3 -m pytest -x
  rnx run -d --timeout 2h ./train.sh          # start, print the ID, return
  rnx run --upload train.py --upload data python3 train.py   # /work/train.py, /work/data/...
  rnx run --upload-dir ./project --workdir src make test     # project's contents become /work
  rnx --node viewer run -- ls -la

Everything from the job's command on belongs to the job, its own --flags too; \`--\` also ends
rnx's options.
--timeout: "500ms", "30s", "1.5m", "1h", "2d", or a whole number of seconds; 0 or absent = the
  server's default (joblet.jobTimeout). A job still running then is stopped like \`rnx stop\`, and
  rnx run exits 124 (as timeout(1) does) with a note on stderr.
-e KEY without =VALUE passes on rnx's own $KEY (left out when it is not set), as docker does.
--workdir is relative to /work, the job's working directory (created if missing); an absolute path
  under /work ("/work/src") works too.
Ctrl-C detaches: the job keeps running; follow it with \`rnx log ID\`, stop it with \`rnx stop ID\`.

Uploads: the files are in /work before the command starts, owned by the job's user.
--upload PATH: a file becomes /work/NAME, a directory /work/NAME/... with everything below it
  (NAME = PATH's last part; a trailing / changes nothing). Repeatable.
--upload-dir DIR: DIR's contents become /work's top level (at most once; combine it with --upload).
  Two sources giving the same /work path are refused before anything is sent.
Symlinks inside a directory are uploaded as links, never followed, their targets unchanged; a PATH or
  DIR on the command line that is itself a symlink is followed (like cp -H). Permission bits are kept
  (from Windows, which has none: 0644 files, 0755 directories); owners, times and hard links are not.
  Sockets, FIFOs and devices are refused. The server caps the total size (uploads.maxTotalMB) and the
  number of entries (uploads.maxEntries) and refuses a larger upload before any file is sent.
  Progress is shown on stderr when it is a terminal and the upload takes over a second. Ctrl-C during
  the upload cancels it: the job does not start (it is recorded as FAILED).
`;

/** Collects a repeatable option's values in order. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Runs rnx with `argv` (the words after "rnx"); resolves with the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo, handlers: CommandHandlers = lazyHandlers): Promise<number> {
  let exitCode: number = ExitCode.OK;
  const program = buildProgram(io, handlers, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (err) {
    return reportError(err, io);
  }
}

/** Prints a failure on stderr the one way rnx does and returns its exit code. */
export function reportError(err: unknown, io: CliIo): number {
  if (err instanceof CommanderError) {
    // Commander has printed its message (or the help/version) already.
    return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  }
  if (err instanceof JobletError) {
    io.stderr.write(jobletErrorText(err));
    return exitCodeFor(err.code);
  }
  io.stderr.write(`rnx: internal error (a bug in rnx; please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.FAILURE;
}

/** Builds the command tree; each action runs its handler and reports the exit code through `setExitCode`. */
export function buildProgram(io: CliIo, handlers: CommandHandlers, setExitCode: (code: number) => void): Command {
  const program = new Command("rnx")
    .description("Run and manage isolated jobs on a Joblet server over mutual TLS")
    .version(rnxVersion(), "-v, --version", "print rnx's version")
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`rnx: ${s}`),
    })
    .addHelpText("after", `\n${EXAMPLES_HELP}\n\n${CONFIG_SEARCH_HELP}\n\n${ENV_HELP}\n\n${EXIT_CODES_HELP}\n`);
  addGlobalOptions(program);

  const act =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      setExitCode(await fn(...args));
    };

  addGlobalOptions(
    program
      .command("run")
      .description("run a command as a job, stream its output and exit with its exit code")
      .argument("<command>", "program to run inside the job")
      .argument("[args...]", "its arguments (flags after the command belong to the job)")
      .option("--max-cpu <percent>", "CPU limit in percent of one CPU (150 = 1.5 CPUs; 0 = server default)")
      .option("--max-memory <MB>", "memory limit in megabytes (0 = server default)")
      .option("--max-iobps <bytes/s>", "block IO limit in bytes per second, read and write (0 = server default)")
      .option("--cpu-cores <list>", 'CPUs the job may use: "2", "0-3", "1,3,5", "0-1,4-5"')
      .option("--timeout <duration>", 'stop the job if it runs longer: "30s", "5m", "1h", "500ms", "2d" or seconds (0 = server default)')
      .option("-e, --env <KEY=VALUE>", "set a variable in the job's environment (repeatable); -e KEY passes on rnx's $KEY", collect)
      .option("--workdir <dir>", "the job's working directory, relative to /work (created if missing; default /work)")
      .option("--network <mode>", '"host" (the host\'s network) or "none" (loopback only); default: the server\'s')
      .option("--upload <path>", "copy a file or directory (recursively) into the job as /work/NAME (repeatable)", collect)
      .option("--upload-dir <dir>", "copy a directory's contents into /work (once; symlinks stay links)", collect)
      .option("-d, --detach", "start the job, print only its ID and return")
      .passThroughOptions()
      .addHelpText("after", RUN_HELP),
  ).action(
    act((command: string, args: string[], flags: RunFlags, cmd: Command) => handlers.run(command, args, flags, globalsOf(cmd), io)),
  );

  addGlobalOptions(
    program
      .command("list")
      .alias("ls")
      .description("list the jobs, oldest first")
      .option("--json", "print a JSON array of jobs (fields as in the API)")
      .option("-q, --quiet", "print only the job IDs, one per line")
      .option("--status <list>", "only jobs with these statuses, e.g. running,failed")
      .addHelpText("after", `\nWith --json: an array of jobs, oldest first.${JOB_JSON_HELP}\n`),
  ).action(
    act((flags: ListFlags, cmd: Command) => handlers.list(flags, globalsOf(cmd), io)),
  );

  addGlobalOptions(
    program
      .command("status")
      .description("show every field of a job: status, times, exit code, signal, OOM, limits, usage")
      .argument("<id>", "job ID or a unique prefix of it")
      .option("--json", "print the job as a JSON object (fields as in the API)")
      .addHelpText("after", JOB_JSON_HELP + "\n"),
  ).action(
    act((id: string, flags: StatusFlags, cmd: Command) => handlers.status(id, flags, globalsOf(cmd), io)),
  );

  addGlobalOptions(
    program
      .command("log")
      .alias("logs")
      .description("print a job's output and follow it until the job ends")
      .argument("<id>", "job ID or a unique prefix of it"),
  ).action(
    act((id: string, _flags: unknown, cmd: Command) => handlers.log(id, globalsOf(cmd), io)),
  );

  addGlobalOptions(
    program
      .command("stop")
      .description("stop a running job (SIGTERM, then SIGKILL after the server's grace period)")
      .argument("<id>", "job ID or a unique prefix of it")
      .option("--json", "print the result as a JSON object"),
  ).action(
    act((id: string, flags: StopFlags, cmd: Command) => handlers.stop(id, flags, globalsOf(cmd), io)),
  );

  addGlobalOptions(
    program
      .command("rm")
      .alias("delete")
      .description("delete finished jobs: their records, output and work directories (running jobs are refused)")
      .argument("<id...>", "job IDs or unique prefixes of them")
      .option("--json", 'print a JSON array of the deleted jobs, [{"id": …}]')
      .addHelpText(
        "after",
        "\nEach ID is tried in turn: one that cannot be deleted (still running, unknown, ambiguous) is\nreported on stderr and the others are still deleted; rnx then exits with the first failure's code.\n\nExamples:\n  rnx rm 0d5c6f3a\n  rnx rm $(rnx list -q --status completed,failed,stopped)\n",
      ),
  ).action(
    act((ids: string[], flags: RmFlags, cmd: Command) => handlers.rm(ids, flags, globalsOf(cmd), io)),
  );

  addGlobalOptions(
    program
      .command("nodes")
      .description("list the nodes in the config: address, certificate role and expiry (never the keys)")
      .option("--check", "contact each node and show whether it answers, and how fast")
      .option("--json", "print a JSON array of nodes")
      .option("-q, --quiet", "print only the node names, one per line"),
  ).action(act((flags: NodesFlags, cmd: Command) => handlers.nodes(flags, globalsOf(cmd), io)));

  program
    .command("config-help")
    .description("print a commented example rnx-config.yml and how to get one from a server")
    .action(act(() => handlers.configHelp(io)));

  program
    .command("completion")
    .description("print a shell completion script: source <(rnx completion bash)")
    .argument("<shell>", "bash or zsh")
    .action(act((shell: string) => handlers.completion(shell, completionSpec(program), io)));

  return program;
}

/** The command tree as the completion scripts need it. */
export function completionSpec(program: Command): CompletionSpec {
  const option = (o: Command["options"][number]): OptionSpec => ({
    flags: [o.short, o.long].filter((f): f is string => f !== undefined),
    description: o.description,
    takesValue: o.required || o.optional,
  });
  return {
    globalOptions: [...program.options.map(option), { flags: ["-h", "--help"], description: "show help", takesValue: false }],
    commands: program.commands
      .filter((c) => c.name() !== "help")
      .map((c) => ({
        name: c.name(),
        aliases: c.aliases(),
        description: c.description(),
        options: [...c.options.map(option), { flags: ["-h", "--help"], description: "show help", takesValue: false }],
        args: c.registeredArguments.map((a) => (a.variadic && a.name() === "id" ? "id..." : a.name())),
      })),
  };
}

/** Declares --config, --node and --server on `cmd`. No defaults here: a subcommand's default would hide the program's value. */
function addGlobalOptions(cmd: Command): Command {
  return cmd
    .option("--config <file>", "rnx config file (default: search, see rnx --help)")
    .option("--node <name>", 'node in the config to use (default: "default")')
    .option("--server <host:port>", "server address overriding the node's (keeps the node's certificates)");
}

/** The global options as given before or after the command name; after wins. */
function globalsOf(cmd: Command): GlobalOptions {
  type G = { config?: string; node?: string; server?: string };
  const after = cmd.opts<G>();
  const before = cmd.parent?.opts<G>() ?? {};
  return { config: after.config ?? before.config, node: after.node ?? before.node, server: after.server ?? before.server };
}
