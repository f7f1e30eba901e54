// `rnx run`: start a job, stream its output live to stdout/stderr, exit with its exit code. Ctrl-C detaches
// (the job keeps running on the server) and says how to follow or stop it.
import { setTimeout as sleep } from "node:timers/promises";
import { invalidArgument } from "../../shared/errors.js";
import type { GetJobStatusRes } from "../../shared/proto/joblet.js";
import { RnxClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { followLogs } from "../follow.js";
import type { CliIo } from "../io.js";
import { FINAL_STATUSES, jobOutcome } from "../outcome.js";
import { parseRunOptions, type RawRunOptions } from "../run-options.js";
import { resolveTarget, type GlobalOptions } from "../target.js";

/** `rnx run`'s own flags. */
export interface RunFlags extends RawRunOptions {
  readonly detach?: boolean;
}

/** How long to wait for the final status once the output stream has ended, milliseconds. */
const FINAL_STATUS_WAIT_MS = 10_000;
const FINAL_STATUS_POLL_MS = 100;

/** Runs `command args…` as a job; resolves with rnx's exit code. */
export async function runCommand(
  command: string,
  args: readonly string[],
  flags: RunFlags,
  globals: GlobalOptions,
  io: CliIo,
): Promise<number> {
  // Everything the user typed is checked before the config is read or anything is sent.
  if (command === "") throw invalidArgument("COMMAND", "the program to run in the job", command);
  const options = parseRunOptions(flags, io.env);
  const target = resolveTarget(globals, io.env);
  const client = new RnxClient(target);
  let jobId: string | undefined;
  const onInterrupt = () => {
    io.stderr.write(
      jobId
        ? `\nrnx: detached; job ${jobId} keeps running.\n  follow its output: rnx log ${jobId}\n  stop it:           rnx stop ${jobId}\n`
        : "\nrnx: interrupted while starting the job; it may have started: see `rnx list`\n",
    );
    process.exit(ExitCode.INTERRUPTED);
  };
  process.on("SIGINT", onInterrupt);
  try {
    const job = await client.runJob({ command, args: [...args], ...options });
    jobId = job.id;
    if (flags.detach) {
      io.stdout.write(`${job.id}\n`);
      return ExitCode.OK;
    }
    await followLogs(client, job.id, { stdout: io.stdout, stderr: io.stderr, notes: io.stderr }, { reachable: true });
    const final = await finalStatus(client, job.id);
    const outcome = jobOutcome(final);
    if (outcome.note) io.stderr.write(`rnx: ${outcome.note}\n`);
    return outcome.exitCode;
  } finally {
    process.off("SIGINT", onInterrupt);
    client.close();
  }
}

/** The job's status once it has ended; the stream ends only then, so this normally takes one call. */
async function finalStatus(client: RnxClient, id: string): Promise<GetJobStatusRes> {
  const deadline = Date.now() + FINAL_STATUS_WAIT_MS;
  for (;;) {
    const job = await client.getJobStatus(id);
    if (FINAL_STATUSES.has(job.status) || Date.now() >= deadline) return job;
    await sleep(FINAL_STATUS_POLL_MS);
  }
}
