// `rnx stop ID`: stop a running job (SIGTERM, a grace period, then SIGKILL on the server); returns once it
// is gone.
import { RnxClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { writeAll, type CliIo } from "../io.js";
import { stopResultToJson } from "../job-json.js";
import { resolveTarget, type GlobalOptions } from "../target.js";

/** `rnx stop`'s own flags. */
export interface StopFlags {
  readonly json?: boolean;
}

/** Stops job `id` (a unique prefix works); resolves with rnx's exit code. */
export async function stopCommand(id: string, flags: StopFlags, globals: GlobalOptions, io: CliIo): Promise<number> {
  const client = new RnxClient(resolveTarget(globals, io.env));
  try {
    const res = await client.stopJob(id);
    const text = flags.json
      ? `${JSON.stringify(stopResultToJson(res), null, 2)}\n`
      : `job ${res.id} ${res.status.toLowerCase()}${res.endTime ? ` at ${res.endTime}` : ""} (exit code ${res.exitCode})\n`;
    await writeAll(io.stdout, text);
    return ExitCode.OK;
  } finally {
    client.close();
  }
}
