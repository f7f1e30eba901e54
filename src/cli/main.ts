// rnx's entry point: runs the command line and sets the process's exit code.
import { processIo } from "./io.js";
import { rnxVersion } from "./version.js";

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

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
  // Scripts call this in loops: answer without loading the command parser.
  process.stdout.write(`${rnxVersion()}\n`);
} else {
  const { runCli } = await import("./program.js");
  process.exitCode = await runCli(argv, processIo());
}
