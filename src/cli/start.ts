// What every way of starting rnx does before running its command line: quiet the one Node warning that is
// noise for rnx's users, end quietly on a closed pipe, answer a lone --version without the parser. main.ts
// (tsc build, tests) and bundle-entry.ts (the bundle dist/rnx.mjs) both call startRnx.
import { processIo } from "./io.js";
import { rnxVersion } from "./version.js";

let processPrepared = false;

/** Installs rnx's process-wide listeners once (later calls do nothing). */
function prepareProcess(): void {
  if (processPrepared) return;
  processPrepared = true;
  // grpc-js sets the TLS server name to the host it dials; for an IP address Node then warns (DEP0123) on
  // every run. The certificate is still verified against the IP (our server certificates carry IP SANs), so
  // the warning is noise for rnx's users. Every other warning is still printed.
  const printWarning = process.listeners("warning");
  process.removeAllListeners("warning");
  process.on("warning", (warning: Error & { code?: string }) => {
    if (warning.code !== "DEP0123") for (const listener of printWarning) listener.call(process, warning);
  });
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
