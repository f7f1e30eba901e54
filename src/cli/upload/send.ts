// The client side of RunJobWithUploads (proto/joblet.proto, UploadReq): the header with the job and the
// totals; then, only once the server has accepted them, every entry with its file's bytes in 256 KiB data
// messages; then `end` and half-close; the answer is the started job. Files are read through a FileHandle
// one chunk at a time, never whole, and each chunk waits for the connection to take the previous ones.
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { JobletError, describeValue } from "../../shared/errors.js";
import { UploadKind, type RunJobReq, type RunJobRes, type UploadAccepted, type UploadEntry, type UploadRes } from "../../shared/proto/joblet.js";
import type { UploadCall } from "./call.js";
import type { UploadItem, UploadPlan } from "./walk.js";

/** Bytes per data message: far below gRPC's 4 MiB message limit, large enough that framing costs nothing. */
export const CHUNK_BYTES = 256 * 1024;
/** How long the server may take to accept the header (connecting, checking the job, its limits and disk), ms. */
export const ACCEPT_WAIT_MS = 30_000;
/** How long from `end` until the job runs, ms: what RunJob may take (client.ts's LONG_CALL_MS). */
export const START_WAIT_MS = 120_000;
/** O_NOFOLLOW where it exists (not on Windows): a file swapped for a link since the walk is not followed. */
const O_NOFOLLOW = (constants as { O_NOFOLLOW?: number }).O_NOFOLLOW ?? 0;

/** What the caller hears while the upload runs. */
export interface UploadHooks {
  /** The server accepted the header: the job exists (INITIALIZING) and data starts to flow. */
  onAccepted?(accepted: UploadAccepted): void;
  /** `bytes` more file data handed to the connection. */
  onData?(bytes: number): void;
  /** Everything is sent and the call half-closed; the server is starting the job. */
  onSent?(): void;
}

/**
 * Uploads `plan` and runs `job` over `call`; resolves with the running job. On any failure (the server's,
 * a file that changed, a read error) the call is cancelled, so the server records the job FAILED and
 * removes what was uploaded, and the error is rethrown.
 */
export async function uploadAndRun(call: UploadCall, job: RunJobReq, plan: UploadPlan, hooks: UploadHooks = {}): Promise<RunJobRes> {
  try {
    await call.send({ part: { $case: "header", header: { job, totalBytes: plan.totalBytes, totalEntries: plan.items.length } } });
    const accepted = await call.receive(ACCEPT_WAIT_MS);
    if (accepted?.part?.$case !== "accepted") throw outOfOrder(call, "accepted", accepted);
    const jobId = accepted.part.accepted.jobId;
    hooks.onAccepted?.(accepted.part.accepted);
    for (const item of plan.items) {
      await call.send({ part: { $case: "entry", entry: toEntry(item) } });
      if (item.kind === "file") await sendFileData(call, item, jobId, hooks.onData);
    }
    await call.send({ part: { $case: "end", end: {} } });
    call.finishWrites();
    hooks.onSent?.();
    const started = await call.receive(START_WAIT_MS);
    if (started?.part?.$case !== "job") throw outOfOrder(call, "job", started);
    return started.part.job;
  } catch (err) {
    call.cancel();
    throw err;
  }
}

/** The wire form of one entry. */
export function toEntry(item: UploadItem): UploadEntry {
  const kind = item.kind === "file" ? UploadKind.FILE : item.kind === "directory" ? UploadKind.DIRECTORY : UploadKind.SYMLINK;
  return { path: item.path, kind, mode: item.mode, size: item.sizeBytes, linkTarget: item.linkTarget };
}

/** Sends exactly `item.sizeBytes` bytes of the file, or fails naming it: a wrong byte count is never sent. */
async function sendFileData(call: UploadCall, item: UploadItem, jobId: string, onData: ((bytes: number) => void) | undefined): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(item.localPath, constants.O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw changed(item, jobId, "it is a symlink now");
    if (code === "ENOENT") throw changed(item, jobId, "it is gone");
    throw new JobletError("FAILED_PRECONDITION", `--upload: cannot read ${describeValue(item.displayPath)}: ${(err as Error).message}`, {
      hint: notStarted(jobId),
      cause: err,
    });
  }
  try {
    const before = await handle.stat();
    if (!before.isFile()) throw changed(item, jobId, "it is not a regular file any more");
    if (before.size !== item.sizeBytes) throw changed(item, jobId, `${item.sizeBytes} bytes when listed, ${before.size} now`);
    let offsetBytes = 0;
    while (offsetBytes < item.sizeBytes) {
      // One buffer per message; encodeUploadReq copies it into the framed message as it is sent.
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, item.sizeBytes - offsetBytes));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offsetBytes);
      if (bytesRead === 0) throw changed(item, jobId, `${item.sizeBytes} bytes when listed, it ended after ${offsetBytes}`);
      await call.send({ part: { $case: "data", data: buffer.subarray(0, bytesRead) } });
      offsetBytes += bytesRead;
      onData?.(bytesRead);
    }
    const after = await handle.stat();
    if (after.size !== item.sizeBytes) throw changed(item, jobId, `${item.sizeBytes} bytes when listed, ${after.size} after reading`);
  } finally {
    await handle.close();
  }
}

function changed(item: UploadItem, jobId: string, how: string): JobletError {
  return new JobletError("FAILED_PRECONDITION", `--upload: ${describeValue(item.displayPath)} changed while it was being uploaded (${how})`, {
    hint: `${notStarted(jobId)}; run rnx again once the files stay put`,
  });
}

function notStarted(jobId: string): string {
  return `the upload was cancelled, so job ${jobId} did not start (the server records it as FAILED)`;
}

function outOfOrder(call: UploadCall, expected: string, got: UploadRes | undefined): JobletError {
  const what = got?.part?.$case ?? (got ? "an empty message" : "the end of the call");
  return new JobletError("INTERNAL", `${call.server} answered RunJobWithUploads out of order: expected ${expected}, got ${what}`, {
    hint: "rnx and the server disagree on the upload protocol; use an rnx of the server's version",
  });
}
