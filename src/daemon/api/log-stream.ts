// GetJobLogs: streams a job's output to one client, from its requested offset, following a running job to its
// end. Each client's stream reads the log at its own pace: a slow client slows only itself.
import { Metadata, type ServerWritableStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { JobletError, invalidArgument } from "../../shared/errors.js";
import { JOB_TRAILER, encodeJobTrailer } from "../../shared/job-trailer.js";
import { Stream, type DataChunk, type GetJobLogsReq } from "../../shared/proto/joblet.js";
import { DATA_CHUNK_HEAD_BYTES } from "../../shared/wire-codec.js";
import type { JobService } from "../jobs/service.js";
import { isFinal } from "../jobs/state.js";
import { DEFAULT_MAX_CHUNK_BYTES, releaseChunk, type LogChunk } from "../logs/reader.js";
import { authorize, callerOf, type RevocationCheck } from "./auth.js";
import { DataChunkBatch, GRPC_HEADER_BYTES, maxFrameBytes } from "./chunk-serializer.js";
import { DECODE_ERROR } from "./decode.js";
import { FRAME_BYTES, frameReuseInstalled } from "./frame-reuse.js";
import { toJob } from "./mappers.js";
import type { CallObserver } from "./server.js";
import { elapsedMs, statusName, toServiceError } from "./status.js";

/**
 * Output handed to grpc-js but not yet written to the HTTP/2 stream, beyond which reading the log waits: 1 MiB
 * (four 256 KiB chunks) or 16 messages (grpc-js's own mark for a call; a follower's small chunks reach it
 * first). Counting messages alone would let each client hold 4 MiB of 256 KiB buffers.
 */
export const SEND_AHEAD = { bytes: 1 << 20, messages: 16 } as const;

/** What streaming needs from the server. */
export interface LogStreamDeps {
  readonly jobs: JobService;
  readonly log: Logger;
  readonly onCall: CallObserver;
  readonly revoked: RevocationCheck;
  /** The server's grpc.max_send_message_length, bytes: no DataChunk may be larger. */
  readonly maxSendMsgSize: number;
}

/** The largest payload per DataChunk under a send limit of `maxSendMsgSize` bytes per message. */
export function logChunkBytes(maxSendMsgSize: number): number {
  return Math.max(1, Math.min(DEFAULT_MAX_CHUNK_BYTES, maxSendMsgSize - DATA_CHUNK_HEAD_BYTES));
}

/**
 * Most bytes of gRPC frames one write may carry under a send limit of `maxSendMsgSize`: a pooled frame's
 * size, and what grpc-js lets through (it refuses a write whose length less one 5-byte prefix is over the limit).
 */
export function batchBytesLimit(maxSendMsgSize: number): number {
  return Math.min(FRAME_BYTES, maxSendMsgSize + GRPC_HEADER_BYTES);
}

/** Serves one GetJobLogs call until the output ends, the client goes away or the server shuts down. */
export async function streamLogs(call: ServerWritableStream<GetJobLogsReq, DataChunk>, deps: LogStreamDeps): Promise<void> {
  const caller = callerOf(call.getAuthContext());
  const started = performance.now();
  const done = (code: string, details = "") =>
    deps.onCall({ rpc: "GetJobLogs", caller, jobId: call.request.id, code, details, ms: elapsedMs(started) });
  const abort = new AbortController();
  call.on("cancelled", () => abort.abort());
  call.on("close", () => abort.abort());
  const ahead = new SendAhead(SEND_AHEAD, abort.signal);
  // Chunks the reader says more follow of (LogChunk.more) wait here to go out in one write, up to `limit`
  // bytes of frames (chunk-serializer.ts, DataChunkBatch); without grpc-js's framing hook each goes alone.
  const batching = frameReuseInstalled();
  const limit = batchBytesLimit(deps.maxSendMsgSize);
  let batch: LogChunk[] = [];
  let batchBytes = 0;
  const flush = async (): Promise<void> => {
    const chunks = batch;
    batch = [];
    batchBytes = 0;
    if (chunks.length === 0) return;
    let bytes = 0;
    const msgs = chunks.map((c): DataChunk => {
      bytes += c.data.length;
      return { payload: c.data, stream: c.stream === "stdout" ? Stream.STDOUT : Stream.STDERR, offset: c.offset };
    });
    ahead.add(bytes);
    // grpc-js has copied the chunks once its write completes: their buffers go back to the reader's pool.
    // A batch is typed as the DataChunk the call declares; its serializer knows both.
    call.write(msgs.length === 1 ? msgs[0]! : (new DataChunkBatch(msgs) as unknown as DataChunk), () => {
      for (const c of chunks) releaseChunk(c);
      ahead.sent(bytes);
    });
    // A slow client slows only its own stream: wait while grpc-js holds 16 writes or 1 MiB unsent.
    const room = ahead.room();
    if (room) await room;
  };
  try {
    authorize(caller, "GetJobLogs", deps.revoked);
    if (DECODE_ERROR in call.request) throw (call.request as Record<symbol, JobletError>)[DECODE_ERROR];
    const from = call.request.fromOffset;
    if (!Number.isSafeInteger(from) || from < 0) throw invalidArgument("fromOffset", "a non-negative byte offset", from);
    for await (const chunk of deps.jobs.logs(call.request.id, from, abort.signal, logChunkBytes(deps.maxSendMsgSize))) {
      if (abort.signal.aborted) break;
      const frameBytes = maxFrameBytes(chunk.data.length);
      if (batchBytes + frameBytes > limit) await flush();
      batch.push(chunk);
      batchBytes += frameBytes;
      // The reader never holds back a chunk with `more` past a wait for the job: the batch cannot stall. Half
      // the limit in one write amortises it well; a full chunk (256 KiB) goes at once, as it would alone.
      if (!batching || !chunk.more || batchBytes * 2 >= limit) await flush();
    }
    if (!abort.signal.aborted) {
      await flush(); // empty: the reader's last chunk has no `more` (defensive)
      call.end(endTrailers(deps.jobs, call.request.id));
      done("OK");
    } else done("CANCELLED");
  } catch (err) {
    if (abort.signal.aborted) return done("CANCELLED");
    // What was read before the failure goes out before the status (the client resumes after it).
    await flush().catch(() => undefined);
    const e = toServiceError(err, deps.log, "GetJobLogs");
    deps.log.info({ rpc: "GetJobLogs", caller: caller.subject, code: e.code, details: e.details }, "call failed");
    done(statusName(e.code), e.details);
    // Emitting "error" makes grpc-js send the status; destroy() would drop the stream without one.
    call.emit("error", Object.assign(new Error(e.details), e));
  } finally {
    abort.abort();
  }
}

/**
 * The trailers that end a job's output: the job's final record (shared/job-trailer.ts), so that `rnx run`
 * needs no GetJobStatus after it. None when the record is gone (deleted meanwhile), not final (the output of
 * a job ends only with the job: defensive) or too large for a trailer.
 */
function endTrailers(jobs: JobService, idOrPrefix: string): Metadata | undefined {
  let record: ReturnType<JobService["status"]>;
  try {
    record = jobs.status(idOrPrefix);
  } catch {
    return undefined;
  }
  if (!isFinal(record.status)) return undefined;
  const bytes = encodeJobTrailer(toJob(record));
  if (!bytes) return undefined;
  const trailers = new Metadata();
  trailers.set(JOB_TRAILER, bytes);
  return trailers;
}

/**
 * Counts messages and bytes written but not yet sent; `room()` waits while more than either limit are (or
 * until aborted).
 */
export class SendAhead {
  private bytes = 0;
  private messages = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly limit: { readonly bytes: number; readonly messages: number },
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener("abort", () => this.release(), { once: true });
  }

  /** One message of `bytes` bytes handed to grpc-js. */
  add(bytes: number): void {
    this.bytes += bytes;
    this.messages++;
  }

  /** grpc-js finished writing one message of `bytes` bytes. */
  sent(bytes: number): void {
    this.bytes -= bytes;
    this.messages--;
    if (this.hasRoom()) this.release();
  }

  /** Resolves at once (undefined) when within both limits, else once enough was sent. */
  room(): Promise<void> | undefined {
    if (this.hasRoom() || this.signal.aborted) return undefined;
    return new Promise((resolve) => (this.wake = resolve));
  }

  private hasRoom(): boolean {
    return this.bytes <= this.limit.bytes && this.messages <= this.limit.messages;
  }

  private release(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
