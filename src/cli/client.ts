// The gRPC client rnx uses: one channel to one daemon with the node's mTLS credentials, promise-returning
// calls, and every failure turned into a JobletError (rpc-errors.ts). This is the only module that loads
// grpc-js; commands import it lazily so `rnx --version` and `rnx --help` never pay for it.
import * as grpc from "@grpc/grpc-js";
import {
  JobletServiceService,
  type JobletServiceClient,
  type DataChunk,
  type DeleteJobRes,
  type GetJobStatusRes,
  type Job,
  type Jobs,
  type RunJobReq,
  type RunJobRes,
  type StopJobRes,
} from "../shared/proto/joblet.js";
import { JobletError } from "../shared/errors.js";
import { withBulkEncoders } from "../shared/wire-codec.js";
import { isRpcFailure, rpcError } from "./rpc-errors.js";
import type { Target } from "./target.js";
import { UploadCall } from "./upload/call.js";

/** How long a short call (status, list) may take, including connecting, in milliseconds. */
const SHORT_CALL_MS = 30_000;
/** RunJob and StopJob wait for the job to start or for its stop grace period, so they get longer, in milliseconds. */
const LONG_CALL_MS = 120_000;
/** Largest response accepted, bytes: a ListJobs of many thousands of jobs exceeds grpc-js's 4 MiB default. */
const MAX_RECEIVE_BYTES = 256 * 1024 * 1024;

/** The generated client, with one-copy encoding of upload data (see wire-codec.ts). */
const Client = grpc.makeGenericClientConstructor(withBulkEncoders(JobletServiceService), "joblet.JobletService") as unknown as typeof JobletServiceClient;

/** A connection to one daemon. Close it when done, or the process stays alive. */
export class RnxClient {
  private readonly client: JobletServiceClient;

  constructor(readonly target: Target) {
    const { caPem, keyPem, certPem } = target.node;
    const creds = grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(keyPem), Buffer.from(certPem));
    this.client = new Client(target.address, creds, {
      "grpc.max_receive_message_length": MAX_RECEIVE_BYTES,
      // After a daemon restart the channel must try again soon: grpc-js's default backoff grows to 120 s,
      // and a follow that reconnects on a channel still backing off fails at once.
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 1000,
    });
  }

  /** Starts a job; resolves once the daemon reports it running. */
  runJob(req: RunJobReq): Promise<RunJobRes> {
    return this.unary<RunJobRes>("RunJob", LONG_CALL_MS, (opts, cb) => this.client.runJob(req, new grpc.Metadata(), opts, cb));
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
      if (err.code === grpc.status.UNIMPLEMENTED) {
        return new JobletError("FAILED_PRECONDITION", `joblet at ${this.target.address} does not support uploads (--upload, --upload-dir): it does not implement ${rpc}`, {
          hint: "the server runs an older Joblet; upgrade it, or run the job without --upload/--upload-dir",
          cause: err,
        });
      }
      return rpcError(err, rpc, this.target);
    };
    return new UploadCall(this.client.runJobWithUploads(), mapError, `joblet at ${this.target.address}`);
  }

  /** One job's full record; `id` may be a unique prefix. */
  getJobStatus(id: string): Promise<GetJobStatusRes> {
    return this.unary<GetJobStatusRes>("GetJobStatus", SHORT_CALL_MS, (opts, cb) => this.client.getJobStatus({ id }, new grpc.Metadata(), opts, cb));
  }

  /** Stops a job; resolves once it is gone. */
  stopJob(id: string): Promise<StopJobRes> {
    return this.unary<StopJobRes>("StopJob", LONG_CALL_MS, (opts, cb) => this.client.stopJob({ id }, new grpc.Metadata(), opts, cb));
  }

  /** Deletes a finished job's record, log and work dir; `id` may be a unique prefix. Resolves with the full ID. */
  async deleteJob(id: string): Promise<string> {
    const res = await this.unary<DeleteJobRes>("DeleteJob", SHORT_CALL_MS, (opts, cb) => this.client.deleteJob({ id }, new grpc.Metadata(), opts, cb));
    return res.id;
  }

  /** Every job the daemon knows. */
  async listJobs(): Promise<Job[]> {
    const res = await this.unary<Jobs>("ListJobs", SHORT_CALL_MS, (opts, cb) => this.client.listJobs({}, new grpc.Metadata(), opts, cb));
    return res.jobs;
  }

  /**
   * The job's output from byte `fromOffset` on, following it until the job has ended. Breaking out of the
   * loop cancels the call. No deadline: a job may run for days.
   */
  async *logs(id: string, fromOffset = 0): AsyncGenerator<DataChunk> {
    const call = this.client.getJobLogs({ id, fromOffset });
    try {
      for await (const chunk of call as AsyncIterable<DataChunk>) yield chunk;
    } catch (err) {
      throw isRpcFailure(err) ? rpcError(err, "GetJobLogs", this.target) : err;
    } finally {
      call.cancel();
    }
  }

  /** Closes the channel. */
  close(): void {
    this.client.close();
  }

  private unary<T>(
    rpc: string,
    timeoutMs: number,
    start: (opts: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: T) => void) => void,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      start({ deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(rpcError(err, rpc, this.target));
        else resolve(res);
      });
    });
  }
}
