// What every way of starting rnx does before running its command line: end quietly on a closed pipe, answer
// a lone --version without the parser. main.ts (tsc build, tests) and bundle-entry.ts (the bundle
// dist/rnx.mjs) both call startRnx. Node's DEP0123 warning (an IP as the TLS server name) does not arise:
// grpc/connection.ts sets no server name for IP targets.
import { processIo } from "./io.js";
import { rnxVersion } from "./version.js";

let processPrepared = false;

/** Installs rnx's process-wide listeners once (later calls do nothing). */
function prepareProcess(): void {
  if (processPrepared) return;
  processPrepared = true;
  // A closed pipe (`rnx list | head -1`) ends rnx quietly, as SIGPIPE ends other Unix tools (128 + 13).
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(128 + 13);
    throw err;
  });
}

/** Runs rnx with `argv` (the words after "rnx") on the process's own streams; resolves with the exit code. */
export async function startRnx(argv: readonly string[]): Promise<number> {
  prepareProcess();
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    // Scripts call this in loops: answer without loading the command parser.
    process.stdout.write(`${rnxVersion()}\n`);
    return 0;
  }
  const { runCli } = await import("./program.js");
  return runCli(argv, processIo());
}
