// `rnx status ID`: every field of one job, or its JSON object with --json.
import { RnxClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { useColor, writeAll, type CliIo } from "../io.js";
import { renderJobDetails } from "../job-details.js";
import { jobToJson } from "../job-json.js";
import { resolveTarget, type GlobalOptions } from "../target.js";

/** `rnx status`'s own flags. */
export interface StatusFlags {
  readonly json?: boolean;
}

/** Shows one job; `id` may be a unique prefix. Resolves with rnx's exit code. */
export async function statusCommand(id: string, flags: StatusFlags, globals: GlobalOptions, io: CliIo): Promise<number> {
  const client = new RnxClient(resolveTarget(globals, io.env));
  try {
    const job = await client.getJobStatus(id);
    const text = flags.json
      ? `${JSON.stringify(jobToJson(job), null, 2)}\n`
      : renderJobDetails(job, { color: useColor(io.stdout, io.env), nowMs: Date.now() });
    await writeAll(io.stdout, text);
    return ExitCode.OK;
  } finally {
    client.close();
  }
}
