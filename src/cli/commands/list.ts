// `rnx list`: every job on the node as a table, oldest first, or as a JSON array with --json.
import { invalidArgument } from "../../shared/errors.js";
import { RnxClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { outputWidth, useColor, writeAll, type CliIo } from "../io.js";
import { jobToJson } from "../job-json.js";
import { renderJobTable, sortJobs } from "../job-table.js";
import { resolveTarget, type GlobalOptions } from "../target.js";

/** `rnx list`'s own flags. */
export interface ListFlags {
  readonly json?: boolean;
  /** Only the IDs, one per line (for scripts and shell completion). */
  readonly quiet?: boolean;
  /** Comma-separated statuses to keep, any case. */
  readonly status?: string;
}

/** The job statuses a filter may name. */
export const JOB_STATUSES = ["INITIALIZING", "RUNNING", "COMPLETED", "FAILED", "STOPPED"] as const;

/** Parses `--status running,failed` into the set of statuses to keep; undefined keeps all. */
export function parseStatusFilter(text: string | undefined): Set<string> | undefined {
  if (text === undefined) return undefined;
  const wanted = text.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean);
  const bad = wanted.find((s) => !(JOB_STATUSES as readonly string[]).includes(s));
  if (bad !== undefined || wanted.length === 0) {
    throw invalidArgument("--status", `one or more of ${JOB_STATUSES.join(", ")} separated by commas (any case)`, text);
  }
  return new Set(wanted);
}

/** Lists the jobs; resolves with rnx's exit code. */
export async function listCommand(flags: ListFlags, globals: GlobalOptions, io: CliIo): Promise<number> {
  const filter = parseStatusFilter(flags.status);
  const client = new RnxClient(resolveTarget(globals, io.env));
  try {
    if (flags.json) {
      const jobs = sortJobs(await client.listJobs()).filter((j) => !filter || filter.has(j.status));
      await writeAll(io.stdout, `${JSON.stringify(jobs.map(jobToJson), null, 2)}\n`);
      return ExitCode.OK;
    }
    // The table and -q need a few fields of each job: decoded alone (job-rows.ts).
    const jobs = sortJobs(await client.listJobRows()).filter((j) => !filter || filter.has(j.status));
    if (flags.quiet) {
      await writeAll(io.stdout, jobs.map((j) => `${j.id}\n`).join(""));
    } else if (jobs.length === 0) {
      // A header with no rows reads like a failure; say it plainly, on stderr so stdout stays parseable.
      io.stderr.write(filter ? "no jobs with that status\n" : "no jobs\n");
    } else {
      const text = renderJobTable(jobs, { width: outputWidth(io.stdout, io.env), color: useColor(io.stdout, io.env), nowMs: Date.now() });
      await writeAll(io.stdout, text);
    }
    return ExitCode.OK;
  } finally {
    client.close();
  }
}
