// The gRPC client rnx uses: one HTTP/2 connection to one daemon with the node's mTLS credentials (grpc/,
// a small gRPC-over-HTTP/2 client on node:http2), promise-returning calls, and every failure turned into a
// JobletError (rpc-errors.ts). Messages are encoded and decoded with the generated codecs.
import { EventEmitter } from "node:events";
import {
  JobletServiceService,
  type DeleteJobRes,
  type GetJobStatusRes,
  type Job,
  type RunJobReq,
  type RunJobRes,
  type StopJobRes,
  type UploadReq,
} from "../shared/proto/joblet.js";
import { JobletError } from "../shared/errors.js";
import { JOB_TRAILER, decodeJobTrailer } from "../shared/job-trailer.js";
import { decodeDataChunkParts, encodeUploadReq, type DataChunkParts } from "../shared/wire-codec.js";
import type { CallOptions, GrpcCall } from "./grpc/call.js";
import { GrpcConnection } from "./grpc/connection.js";
import { userVerifiedServers } from "./grpc/verified-servers.js";
import { GrpcStatus, RpcError } from "./grpc/status.js";
import { decodeJobRows, type JobRow } from "./job-rows.js";
import { isRpcFailure, rpcError } from "./rpc-errors.js";
import type { Target } from "./target.js";
import { UploadCall, type UploadStream } from "./upload/call.js";

/** How long a short call (status, list) may take, including connecting, in milliseconds. */
const SHORT_CALL_MS = 30_000;
/** RunJob and StopJob wait for the job to start or for its stop grace period, so they get longer, in milliseconds. */
const LONG_CALL_MS = 120_000;
/** Largest response accepted, bytes: a ListJobs of many thousands of jobs is tens of MiB. */
const MAX_RECEIVE_BYTES = 256 * 1024 * 1024;
/** Decoded log chunks queued ahead of the consumer before the stream is paused (HTTP/2 then holds the server). */
const LOG_QUEUE_CHUNKS = 16;

/** A method of the generated service definition: its path and codecs. */
interface Method<Req, Res> {
  readonly path: string;
  requestSerialize(req: Req): Buffer;
  responseDeserialize(bytes: Buffer): Res;
}

const S = JobletServiceService;

/** A connection to one daemon. Close it when done. */
export class RnxClient {
  private readonly conn: GrpcConnection;
  /** Final records the daemon sent in the trailers of a job's ended log stream (shared/job-trailer.ts), by job ID. */
  private readonly endedJobs = new Map<string, GetJobStatusRes>();

  constructor(readonly target: Target) {
    const { caPem, keyPem, certPem } = target.node;
    this.conn = new GrpcConnection({ address: target.address, caPem, keyPem, certPem, verified: userVerifiedServers() });
  }

  /** Starts a job; resolves once the daemon reports it running. */
  runJob(req: RunJobReq): Promise<RunJobRes> {
    return this.unary("RunJob", S.runJob, req, LONG_CALL_MS);
  }

  /**
   * Opens RunJobWithUploads; upload/send.ts drives it. No deadline for the whole call (a large upload takes
   * as long as it takes); each wait for an answer has its own. A server without the RPC (UNIMPLEMENTED) is
   * reported as one that does not support uploads.
   */
  openUpload(): UploadCall {
    const rpc = "RunJobWithUploads";
    const mapError = (err: unknown): Error => {
      if (!isRpcFailure(err)) return err instanceof Error ? err : new Error(String(err));
      if (err.code === GrpcStatus.UNIMPLEMENTED) {
        return new JobletError("FAILED_PRECONDITION", `joblet at ${this.target.address} does not support uploads (--upload, --upload-dir): it does not implement ${rpc}`, {
          hint: "the server runs an older Joblet; upgrade it, or run the job without --upload/--upload-dir",
          cause: err,
        });
      }
      return rpcError(err, rpc, this.target);
    };
    let stream: UploadStream;
    try {
      stream = this.openUploadStream();
    } catch (err) {
      throw mapError(err);
    }
    return new UploadCall(stream, mapError, `joblet at ${this.target.address}`);
  }

  /** One job's full record; `id` may be a unique prefix. */
  getJobStatus(id: string): Promise<GetJobStatusRes> {
    return this.unary("GetJobStatus", S.getJobStatus, { id }, SHORT_CALL_MS);
  }

  /**
   * The job's final record, if a log stream of it (logs()) ended with one in its trailers; a daemon without
   * that extension sends none, and then only getJobStatus() knows. `id` is the full ID.
   */
  endedJob(id: string): GetJobStatusRes | undefined {
    return this.endedJobs.get(id);
  }

  /** Stops a job; resolves once it is gone. */
  stopJob(id: string): Promise<StopJobRes> {
    return this.unary("StopJob", S.stopJob, { id }, LONG_CALL_MS);
  }

  /** Deletes a finished job's record, log and work dir; `id` may be a unique prefix. Resolves with the full ID. */
  async deleteJob(id: string): Promise<string> {
    const res: DeleteJobRes = await this.unary("DeleteJob", S.deleteJob, { id }, SHORT_CALL_MS);
    return res.id;
  }

  /** Every job the daemon knows. */
  async listJobs(): Promise<Job[]> {
    return (await this.unary("ListJobs", S.listJobs, {}, SHORT_CALL_MS)).jobs;
  }

  /** Every job the daemon knows, with only the fields of `rnx list`'s table (job-rows.ts). */
  listJobRows(): Promise<JobRow[]> {
    return this.unary("ListJobs", { ...S.listJobs, responseDeserialize: decodeJobRows }, {}, SHORT_CALL_MS);
  }

  /**
   * The job's output from byte `fromOffset` on, following it until the job has ended; each payload is views
   * of the received data (not copied). Breaking out of the loop cancels the call. No deadline: a job may run
   * for days.
   */
  async *logs(id: string, fromOffset = 0): AsyncGenerator<DataChunkParts> {
    const queue: DataChunkParts[] = [];
    const onParts = (parts: Buffer[]): void => {
      queue.push(decodeDataChunkParts(parts));
      if (queue.length >= LOG_QUEUE_CHUNKS) call.pause();
      wake?.();
    };
    let ended = false;
    let failure: RpcError | undefined;
    let wake: (() => void) | undefined;
    const call = this.startCall("GetJobLogs", S.getJobLogs.path, {
      maxMessageBytes: MAX_RECEIVE_BYTES,
      onMessage: (m) => onParts([m]),
      onMessageParts: onParts,
      onTrailers: (t) => {
        const job = decodeJobTrailer(t[JOB_TRAILER]);
        if (job?.id) this.endedJobs.set(job.id, job);
      },
      onEnd: (err) => {
        ended = true;
        failure = err;
        wake?.();
      },
    });
    call.write(S.getJobLogs.requestSerialize({ id, fromOffset }));
    call.end();
    try {
      for (;;) {
        const next = queue.shift();
        if (next) {
          if (queue.length === LOG_QUEUE_CHUNKS / 2) call.resume();
          yield next;
          continue;
        }
        if (ended) break;
        call.resume();
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      if (failure) throw rpcError(failure, "GetJobLogs", this.target);
    } finally {
      call.cancel();
    }
  }

  /** Closes the connection. */
  close(): void {
    this.conn.close();
  }

  private openUploadStream(): UploadStream {
    const events = new EventEmitter();
    const call = this.conn.call(S.runJobWithUploads.path, {
      maxMessageBytes: MAX_RECEIVE_BYTES,
      onMessage: (m) => events.emit("data", S.runJobWithUploads.responseDeserialize(m)),
      onEnd: (err) => (err ? events.emit("error", err) : events.emit("end")),
    });
    call.onDrain = () => events.emit("drain");
    return Object.assign(events, {
      write: (msg: UploadReq) => call.write(encodeUploadReq(msg)),
      end: () => call.end(),
      cancel: () => call.cancel(),
    });
  }

  private unary<Req, Res>(rpc: string, method: Method<Req, Res>, req: Req, timeoutMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      let response: Buffer | undefined;
      let count = 0;
      const opts: CallOptions = {
        timeoutMs,
        maxMessageBytes: MAX_RECEIVE_BYTES,
        onMessage: (m) => {
          response = m;
          count++;
        },
        onEnd: (err) => {
          if (!err && count !== 1) err = new RpcError(GrpcStatus.INTERNAL, `the server sent ${count} response messages to a unary call, not 1`);
          if (err) return reject(rpcError(err, rpc, this.target));
          try {
            resolve(method.responseDeserialize(response!));
          } catch (e) {
            reject(rpcError(new RpcError(GrpcStatus.INTERNAL, `cannot decode the response: ${(e as Error).message}`), rpc, this.target));
          }
        },
      };
      const call = this.startCall(rpc, method.path, opts);
      call.write(method.requestSerialize(req));
      call.end();
    });
  }

  /** Starts a call; a connection that refuses new streams is reported like any failed call of `rpc`. */
  private startCall(rpc: string, path: string, opts: CallOptions): GrpcCall {
    try {
      return this.conn.call(path, opts);
    } catch (err) {
      throw err instanceof RpcError ? rpcError(err, rpc, this.target) : err;
    }
  }
}
