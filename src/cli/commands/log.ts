// `rnx log ID`: the job's output so far, then live output until the job ends; stdout and stderr of the job
// go to rnx's stdout and stderr. Ctrl-C just stops following.
import { RnxClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { followLogs } from "../follow.js";
import { jobSinks, type CliIo } from "../io.js";
import { resolveTarget, type GlobalOptions } from "../target.js";

/** Prints job `id`'s output (a unique prefix works); resolves with rnx's exit code. */
export async function logCommand(id: string, globals: GlobalOptions, io: CliIo): Promise<number> {
  const client = new RnxClient(resolveTarget(globals, io.env));
  try {
    await followLogs(client, id, { ...jobSinks(io), notes: io.stderr });
    return ExitCode.OK;
  } finally {
    client.close();
  }
}
