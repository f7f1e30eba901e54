// `rnx run`: start a job, stream its output live to stdout/stderr, exit with its exit code. Ctrl-C detaches
// (the job keeps running on the server) and says how to follow or stop it. With --upload/--upload-dir the
// job is started by RunJobWithUploads after its files are streamed into /work; without them by plain RunJob,
// so servers without uploads keep working.
import { setTimeout as sleep } from "node:timers/promises";
import { invalidArgument } from "../../shared/errors.js";
import type { GetJobStatusRes, RunJobReq, RunJobRes } from "../../shared/proto/joblet.js";
import { RnxClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { followLogs } from "../follow.js";
import { jobSinks, type CliIo } from "../io.js";
import { FINAL_STATUSES, jobOutcome } from "../outcome.js";
import { parseRunOptions, type RawRunOptions } from "../run-options.js";
import { resolveTarget, type GlobalOptions } from "../target.js";
import type { UploadCall } from "../upload/call.js";
import { UploadProgress } from "../upload/progress.js";
import { uploadAndRun } from "../upload/send.js";
import { planUpload, uploadSourcesFrom, type UploadPlan } from "../upload/walk.js";

/** `rnx run`'s own flags. */
export interface RunFlags extends RawRunOptions {
  readonly detach?: boolean;
  /** Each --upload PATH, in order. */
  readonly upload?: readonly string[];
  /** Each --upload-dir DIR (one is allowed). */
  readonly uploadDir?: readonly string[];
}

/** Where an upload is, for the Ctrl-C message: before `accepted`, sending, or sent and waiting for the job. */
interface UploadState {
  phase: "opening" | "uploading" | "starting";
  jobId?: string;
  readonly call: UploadCall;
  readonly progress: UploadProgress;
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
  const sources = uploadSourcesFrom(flags.upload, flags.uploadDir);
  // The files to upload are listed, and anything that cannot be sent refused, before anything is sent.
  const plan = sources && (await planUpload(sources));
  const target = resolveTarget(globals, io.env);
  const client = new RnxClient(target);
  const request: RunJobReq = { command, args: [...args], ...options };
  let jobId: string | undefined;
  let upload: UploadState | undefined;
  const onInterrupt = () => {
    upload?.progress.abandon();
    io.stderr.write(jobId ? detachedText(jobId) : upload ? interruptedUploadText(upload) : "\nrnx: interrupted while starting the job; it may have started: see `rnx list`\n");
    // Cancelled before `end`, the server drops the job and what arrived of its files; after `end` it may be starting.
    if (!jobId && upload && upload.phase !== "starting") upload.call.cancel();
    process.exit(ExitCode.INTERRUPTED);
  };
  process.on("SIGINT", onInterrupt);
  try {
    let job: RunJobRes;
    if (plan) {
      upload = { phase: "opening", call: client.openUpload(), progress: new UploadProgress(io.stderr, plan.totalBytes) };
      job = await startWithUpload(upload, request, plan);
    } else {
      job = await client.runJob(request);
    }
    jobId = job.id;
    if (flags.detach) {
      io.stdout.write(`${job.id}\n`);
      return ExitCode.OK;
    }
    await followLogs(client, job.id, { ...jobSinks(io), notes: io.stderr }, { reachable: true });
    const final = await finalStatus(client, job.id);
    const outcome = jobOutcome(final);
    if (outcome.note) io.stderr.write(`rnx: ${outcome.note}\n`);
    return outcome.exitCode;
  } finally {
    process.off("SIGINT", onInterrupt);
    client.close();
  }
}

/** Streams the upload and starts the job, keeping `state` current for the Ctrl-C message. */
async function startWithUpload(state: UploadState, request: RunJobReq, plan: UploadPlan): Promise<RunJobRes> {
  try {
    return await uploadAndRun(state.call, request, plan, {
      onAccepted: (accepted) => {
        state.jobId = accepted.jobId;
        state.phase = "uploading";
        state.progress.start();
      },
      onData: (bytes) => state.progress.add(bytes),
      onSent: () => {
        state.phase = "starting";
        state.progress.finish();
      },
    });
  } finally {
    // Ends a progress line left open by a failure, so the error starts on its own line; no-op after finish().
    state.progress.abandon();
  }
}

function detachedText(jobId: string): string {
  return `\nrnx: detached; job ${jobId} keeps running.\n  follow its output: rnx log ${jobId}\n  stop it:           rnx stop ${jobId}\n`;
}

function interruptedUploadText(state: UploadState): string {
  switch (state.phase) {
    case "opening":
      return "\nrnx: interrupted before the upload began; cancelled it, so no job will start\n";
    case "uploading":
      return (
        `\nrnx: interrupted during the upload; cancelled it, so job ${state.jobId} will not start ` +
        `(the server records it as FAILED and removes the files uploaded so far): see \`rnx status ${state.jobId}\`\n`
      );
    case "starting":
      return `\nrnx: interrupted while job ${state.jobId} was starting (its upload was complete); it may have started: see \`rnx status ${state.jobId}\`\n`;
  }
}

/**
 * The job's status once it has ended. The stream ends only then, and the daemon's last trailers carry it
 * (shared/job-trailer.ts); without them (another daemon) this normally takes one GetJobStatus.
 */
async function finalStatus(client: RnxClient, id: string): Promise<GetJobStatusRes> {
  const ended = client.endedJob(id);
  if (ended && FINAL_STATUSES.has(ended.status)) return ended;
  const deadline = Date.now() + FINAL_STATUS_WAIT_MS;
  for (;;) {
    const job = await client.getJobStatus(id);
    if (FINAL_STATUSES.has(job.status) || Date.now() >= deadline) return job;
    await sleep(FINAL_STATUS_POLL_MS);
  }
}
