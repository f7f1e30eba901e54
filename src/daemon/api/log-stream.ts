// GetJobLogs: streams a job's output to one client, from its requested offset, following a running job to its
// end. Each client's stream reads the log at its own pace: a slow client slows only itself.
import type { ServerWritableStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { JobletError, invalidArgument } from "../../shared/errors.js";
import { Stream, type DataChunk, type GetJobLogsReq } from "../../shared/proto/joblet.js";
import { DATA_CHUNK_HEAD_BYTES } from "../../shared/wire-codec.js";
import type { JobService } from "../jobs/service.js";
import { DEFAULT_MAX_CHUNK_BYTES, releaseChunk } from "../logs/reader.js";
import { authorize, callerOf, type RevocationCheck } from "./auth.js";
import { DECODE_ERROR } from "./decode.js";
import type { CallObserver } from "./server.js";
import { elapsedMs, statusName, toServiceError } from "./status.js";

/**
 * Output handed to grpc-js but not yet written to the HTTP/2 stream, bytes, beyond which reading the log
 * waits: 1 MiB, four 256 KiB chunks. grpc-js's own limit counts messages (16 queued), which for 256 KiB
 * chunks would let each client hold 4 MiB of buffers.
 */
export const SEND_AHEAD_BYTES = 1 << 20;

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

/** Serves one GetJobLogs call until the output ends, the client goes away or the server shuts down. */
export async function streamLogs(call: ServerWritableStream<GetJobLogsReq, DataChunk>, deps: LogStreamDeps): Promise<void> {
  const caller = callerOf(call.getAuthContext());
  const started = performance.now();
  const done = (code: string, details = "") =>
    deps.onCall({ rpc: "GetJobLogs", caller, jobId: call.request.id, code, details, ms: elapsedMs(started) });
  const abort = new AbortController();
  call.on("cancelled", () => abort.abort());
  call.on("close", () => abort.abort());
  const ahead = new SendAhead(SEND_AHEAD_BYTES, abort.signal);
  try {
    authorize(caller, "GetJobLogs", deps.revoked);
    if (DECODE_ERROR in call.request) throw (call.request as Record<symbol, JobletError>)[DECODE_ERROR];
    const from = call.request.fromOffset;
    if (!Number.isSafeInteger(from) || from < 0) throw invalidArgument("fromOffset", "a non-negative byte offset", from);
    for await (const chunk of deps.jobs.logs(call.request.id, from, abort.signal, logChunkBytes(deps.maxSendMsgSize))) {
      if (abort.signal.aborted) break;
      const msg: DataChunk = {
        payload: chunk.data,
        stream: chunk.stream === "stdout" ? Stream.STDOUT : Stream.STDERR,
        offset: chunk.offset,
      };
      const bytes = chunk.data.length;
      ahead.add(bytes);
      // grpc-js has copied the chunk once its write completes: its buffer goes back to the reader's pool.
      const accepted = call.write(msg, () => {
        releaseChunk(chunk);
        ahead.sent(bytes);
      });
      // A slow client slows only its own stream: wait while grpc-js holds 16 messages or 1 MiB unsent.
      if (!accepted) await waitDrain(call, abort.signal);
      const room = ahead.room();
      if (room) await room;
    }
    if (!abort.signal.aborted) {
      call.end();
      done("OK");
    } else done("CANCELLED");
  } catch (err) {
    if (abort.signal.aborted) return done("CANCELLED");
    const e = toServiceError(err, deps.log, "GetJobLogs");
    deps.log.info({ rpc: "GetJobLogs", caller: caller.subject, code: e.code, details: e.details }, "call failed");
    done(statusName(e.code), e.details);
    // Emitting "error" makes grpc-js send the status; destroy() would drop the stream without one.
    call.emit("error", Object.assign(new Error(e.details), e));
  } finally {
    abort.abort();
  }
}

/** Counts bytes written but not yet sent; `room()` waits while more than `limit` are (or until aborted). */
export class SendAhead {
  private pending = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly limit: number,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener("abort", () => this.release(), { once: true });
  }

  add(bytes: number): void {
    this.pending += bytes;
  }

  sent(bytes: number): void {
    this.pending -= bytes;
    if (this.pending <= this.limit) this.release();
  }

  /** Resolves at once when at most `limit` bytes are pending, else once enough were sent. */
  room(): Promise<void> | undefined {
    if (this.pending <= this.limit || this.signal.aborted) return undefined;
    return new Promise((resolve) => (this.wake = resolve));
  }

  private release(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

function waitDrain(call: NodeJS.EventEmitter, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    call.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}
