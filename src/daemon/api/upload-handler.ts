// RunJobWithUploads: the client streams a job's files into its /work, then the job starts (the protocol is
// described at UploadReq in proto/joblet.proto). Every message is checked as it arrives; any problem — a bad
// entry, a stream that breaks or ends early, a client gone quiet — abandons the upload: the job is recorded
// FAILED with the reason, its work dir is removed, and the client (if still there) is told why.
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { JobletError, invalidArgument } from "../../shared/errors.js";
import { RunJobReq, type UploadReq, type UploadRes } from "../../shared/proto/joblet.js";
import type { JobService } from "../jobs/service.js";
import type { UploadSession } from "../jobs/upload-session.js";
import { entryFromWire } from "../uploads/wire.js";
import { authorize, callerOf, type RevocationCheck } from "./auth.js";
import { DECODE_ERROR } from "./decode.js";
import { toJob, toRunRequest } from "./mappers.js";
import type { CallObserver } from "./server.js";
import { elapsedMs, statusName, toServiceError } from "./status.js";

/** What the handler needs from the server. */
export interface UploadHandlerDeps {
  jobs: JobService;
  log: Logger;
  onCall: CallObserver;
  revoked: RevocationCheck;
}

/** The client cancelled the call or its connection broke. */
class ClientGone extends Error {}

/** Serves one RunJobWithUploads call to its end; never rejects. */
export async function receiveUpload(call: ServerDuplexStream<UploadReq, UploadRes>, deps: UploadHandlerDeps): Promise<void> {
  const { jobs, log, onCall, revoked } = deps;
  const caller = callerOf(call.getAuthContext());
  const started = performance.now();
  const gone = new Promise<"gone">((resolve) => call.once("cancelled", () => resolve("gone")));
  // Node's stream iterator destroys the stream when the client half-closes, and a destroyed call can no
  // longer send its status: the client would never hear why its upload was refused.
  const messages = call.iterator({ destroyOnReturn: false }) as AsyncIterator<UploadReq>;
  let session: UploadSession | undefined;
  /** Settles when the session ends from outside (stop, idle, shutdown); made once, raced with every message. */
  let ended: Promise<"ended"> | undefined;
  let entries = 0;
  let bytes = 0;

  /** The next message; undefined when the client half-closed. Throws when the call or the session ended. */
  async function next(): Promise<UploadReq | undefined> {
    const r = await Promise.race([messages.next(), gone, ...(ended ? [ended] : [])]);
    if (r === "gone") throw new ClientGone(`the client went away after ${entries} entries and ${bytes} bytes`);
    if (r === "ended") throw new JobletError("FAILED_PRECONDITION", session?.failure ?? "the upload ended");
    if (r.done) return undefined;
    if (DECODE_ERROR in r.value) throw (r.value as Record<symbol, JobletError>)[DECODE_ERROR];
    return r.value;
  }

  try {
    authorize(caller, "RunJobWithUploads", revoked);
    const first = await next();
    if (first?.part?.$case !== "header") {
      throw invalidArgument("header", "a header as the stream's first message", first?.part?.$case ?? "no message");
    }
    const { header } = first.part;
    session = await jobs.beginUpload(toRunRequest(header.job ?? RunJobReq.fromPartial({})), {
      bytes: header.totalBytes,
      entries: header.totalEntries,
    });
    ended = session.settled.then(() => "ended" as const);
    const { maxBytes, maxEntries } = jobs.uploadLimits();
    call.write({ part: { $case: "accepted", accepted: { jobId: session.jobId, maxBytes, maxEntries } } });
    for (;;) {
      const msg = await next();
      const part = msg?.part;
      if (part?.$case === "end") break;
      if (part?.$case === "entry") {
        await session.entry(entryFromWire(part.entry, ++entries));
      } else if (part?.$case === "data") {
        bytes += part.data.length;
        await session.data(part.data);
      } else if (msg === undefined) {
        throw new JobletError(
          "INVALID_ARGUMENT",
          `end: the upload stream closed without its end message, after ${entries} of ${header.totalEntries} entries and ${bytes} of ${header.totalBytes} bytes`,
        );
      } else {
        throw invalidArgument("part", "an entry, data or end message after the header", part?.$case ?? "an empty message");
      }
    }
    const job = await session.complete();
    call.write({ part: { $case: "job", job: toJob(job) } });
    call.end();
    log.debug({ rpc: "RunJobWithUploads", caller: caller.subject, jobId: job.id, entries, bytes, ms: elapsedMs(started) }, "call ok");
    onCall({ rpc: "RunJobWithUploads", caller, jobId: job.id, code: "OK", details: "", ms: elapsedMs(started) });
  } catch (err) {
    const jobId = session?.jobId ?? "";
    // Abandons the upload unless it already ended (then this is a no-op: e.g. the job failed to start).
    await session?.fail(err instanceof ClientGone ? `upload abandoned: ${err.message}` : `upload refused: ${(err as Error).message}`);
    if (err instanceof ClientGone) {
      log.info({ rpc: "RunJobWithUploads", caller: caller.subject, jobId, entries, bytes }, "client went away during the upload");
      onCall({ rpc: "RunJobWithUploads", caller, jobId, code: "CANCELLED", details: err.message, ms: elapsedMs(started) });
      return;
    }
    const e = toServiceError(err, log, "RunJobWithUploads");
    log.info({ rpc: "RunJobWithUploads", caller: caller.subject, jobId, code: e.code, details: e.details }, "call failed");
    onCall({ rpc: "RunJobWithUploads", caller, jobId, code: statusName(e.code), details: e.details ?? "", ms: elapsedMs(started) });
    // Emitting "error" makes grpc-js send the status; destroy() would drop the stream without one.
    call.emit("error", Object.assign(new Error(e.details), e));
  }
}
