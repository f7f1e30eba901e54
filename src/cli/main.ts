// rnx's entry point when run from the TypeScript sources or the tsc build: runs the command line and sets the
// process's exit code. The bundle's entry is bundle-entry.ts.
import { startRnx } from "./start.js";

process.exitCode = await startRnx(process.argv.slice(2));
