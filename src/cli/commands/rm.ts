// `rnx rm ID...`: delete finished jobs (record, log and work dir) on the server. Like `docker rm`, each ID is
// tried in turn: a job that cannot be deleted (still running, unknown, an ambiguous prefix) is reported and
// the others are still deleted; rnx then exits with the code of the first failure. A failure that concerns
// every ID alike (server unreachable, permission denied) ends the command at once.
import { JobletError } from "../../shared/errors.js";
import { RnxClient } from "../client.js";
import { jobletErrorText } from "../error-text.js";
import { ExitCode, exitCodeFor } from "../exit-codes.js";
import { writeAll, type CliIo } from "../io.js";
import { resolveTarget, type GlobalOptions } from "../target.js";

/** `rnx rm`'s own flags. */
export interface RmFlags {
  /** Print a JSON array of the deleted jobs' IDs, as {"id": …} objects. */
  readonly json?: boolean;
}

/** Failures that concern one job only; anything else stops the whole command. */
const PER_JOB_FAILURES = new Set(["NOT_FOUND", "FAILED_PRECONDITION", "INVALID_ARGUMENT"]);

/** Deletes each job in `ids` (unique prefixes work); resolves with rnx's exit code. */
export async function rmCommand(ids: readonly string[], flags: RmFlags, globals: GlobalOptions, io: CliIo): Promise<number> {
  const client = new RnxClient(resolveTarget(globals, io.env));
  const deleted: Array<{ id: string }> = [];
  let exitCode: number = ExitCode.OK;
  try {
    for (const id of ids) {
      try {
        const fullId = await client.deleteJob(id);
        deleted.push({ id: fullId });
        if (!flags.json) await writeAll(io.stdout, `job ${fullId} deleted\n`);
      } catch (err) {
        if (!(err instanceof JobletError) || !PER_JOB_FAILURES.has(err.code)) throw err;
        io.stderr.write(jobletErrorText(err));
        if (exitCode === ExitCode.OK) exitCode = exitCodeFor(err.code);
      }
    }
    if (flags.json) await writeAll(io.stdout, `${JSON.stringify(deleted, null, 2)}\n`);
    return exitCode;
  } finally {
    client.close();
  }
}
