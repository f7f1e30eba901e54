// The gRPC server: authenticates each call, checks the caller's role, delegates to the job service and maps
// results and errors to the wire. No job logic lives here.
import { Server, ServerCredentials, status, type sendUnaryData, type ServerDuplexStream, type ServerUnaryCall, type ServerWritableStream } from "@grpc/grpc-js";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { JobletError } from "../../shared/errors.js";
import { withBulkEncoders } from "../../shared/wire-codec.js";
import {
  type DataChunk,
  type DeleteJobReq,
  type DeleteJobRes,
  type EmptyRequest,
  type GetJobLogsReq,
  type GetJobStatusReq,
  type GetJobStatusRes,
  type Jobs,
  type JobletServiceServer,
  type RunJobReq,
  type RunJobRes,
  type StopJobReq,
  type StopJobRes,
  type UploadReq,
  type UploadRes,
} from "../../shared/proto/joblet.js";
import type { JobService } from "../jobs/service.js";
import { authorize, callerOf, type Caller, type RevocationCheck, type Rpc } from "./auth.js";
import { toJob, toRunRequest } from "./mappers.js";
import { DECODE_ERROR, tolerantService } from "./decode.js";
import { installFrameReuse } from "./frame-reuse.js";
import { dataChunkSerializer } from "./chunk-serializer.js";
import { serializeJobs, type JobRecords } from "./jobs-serializer.js";
import { streamLogs } from "./log-stream.js";
import { elapsedMs, statusName, toServiceError } from "./status.js";
import { receiveUpload } from "./upload-handler.js";
import { listenTls, type RefusedHandshake, type TlsListener } from "./tls.js";

/** What the API server needs. */
export interface ApiServerOptions {
  address: string;
  port: number;
  tls: { caPem: string; certPem: string; keyPem: string };
  maxRecvMsgSize: number;
  maxSendMsgSize: number;
  jobs: JobService;
  logger: Logger;
  /** Told about every finished call, allowed or denied (audit log, metrics). Must not throw. */
  onCall?: CallObserver;
  /** Told about every connection refused in the TLS handshake (it never becomes a call). Must not throw. */
  onHandshakeRefused?: (h: RefusedHandshake) => void;
  /** Revoked client certificates, by serial (normalised: lowercase hex, no leading zeros); asked on every call. */
  revoked?: RevocationCheck;
}

/** One finished RPC: who called what, the job it concerned, the outcome (a gRPC status name) and its duration. */
export interface CallRecord {
  rpc: Rpc;
  caller: Caller;
  jobId: string;
  code: string;
  details: string;
  ms: number;
}

/** Receives a CallRecord for every call. */
export type CallObserver = (call: CallRecord) => void;

/** A listening API server. */
export interface ApiServer {
  port: number;
  close(): Promise<void>;
}

/** Starts serving; resolves once bound. */
export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  if (!installFrameReuse()) opts.logger.warn("grpc-js internals differ from 1.14: log streams use a new buffer per chunk (more GC)");
  const server = new Server({
    "grpc.max_receive_message_length": opts.maxRecvMsgSize,
    "grpc.max_send_message_length": opts.maxSendMsgSize,
  });
  // Open log streams: at shutdown each is ended with UNAVAILABLE, which clients treat as "reconnect and
  // resume" (a forced shutdown would cancel them, and a cancelled follow is not resumed).
  const followers = new Set<ServerWritableStream<GetJobLogsReq, DataChunk>>();
  const service = withBulkEncoders(tolerantService());
  server.addService(
    {
      ...service,
      getJobLogs: { ...service.getJobLogs, responseSerialize: dataChunkSerializer() },
      listJobs: { ...service.listJobs, responseSerialize: serializeJobs },
    },
    handlers(opts.jobs, opts.logger, opts.onCall ?? (() => undefined), opts.revoked ?? new Set<string>(), followers, opts.maxSendMsgSize),
  );
  const host = opts.address.includes(":") && !opts.address.startsWith("[") ? `[${opts.address}]` : opts.address;
  // TLS is done by our listener (tls.ts); grpc-js gets the verified connections as they are.
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  let listener: TlsListener;
  try {
    listener = await listenTls(
      { host: opts.address.replace(/^\[|\]$/g, ""), port: opts.port, tls: opts.tls },
      (socket) => injector.injectConnection(socket),
      opts.onHandshakeRefused ?? (() => undefined),
    );
  } catch (err) {
    throw new JobletError("FAILED_PRECONDITION", `cannot listen on ${host}:${opts.port}: ${(err as Error).message}`, {
      hint: "is another joblet running? change server.port in the config",
    });
  }
  return {
    port: listener.port,
    close: async () => {
      // Resolves once every connection has ended, which the shutdown below brings about.
      const closed = listener.close();
      for (const call of followers) {
        call.emit("error", { code: status.UNAVAILABLE, details: "joblet is shutting down; reconnect to resume" });
      }
      followers.clear();
      await new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 1000).unref();
      });
      injector.destroy();
      await Promise.race([closed, sleep(1000)]);
    },
  };
}

function handlers(
  jobs: JobService,
  log: Logger,
  onCall: CallObserver,
  revoked: RevocationCheck,
  followers: Set<ServerWritableStream<GetJobLogsReq, DataChunk>>,
  maxSendMsgSize: number,
): JobletServiceServer {
  /** Wraps a unary handler with authentication, authorisation, logging, observation and error mapping. */
  function unary<Req extends object, Res extends object>(rpc: Rpc, fn: (req: Req, caller: Caller) => Res | Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const caller = callerOf(call.getAuthContext());
      const started = performance.now();
      const requestedId = "id" in call.request ? String(call.request.id) : "";
      Promise.resolve()
        .then(() => {
          authorize(caller, rpc, revoked);
          if (DECODE_ERROR in call.request) throw (call.request as Record<symbol, JobletError>)[DECODE_ERROR];
          return fn(call.request, caller);
        })
        .then(
          (res) => {
            const ms = elapsedMs(started);
            log.debug({ rpc, caller: caller.subject, ms }, "call ok");
            onCall({ rpc, caller, jobId: "id" in res ? String(res.id) : requestedId, code: "OK", details: "", ms });
            callback(null, res);
          },
          (err: unknown) => {
            const e = toServiceError(err, log, rpc);
            log.info({ rpc, caller: caller.subject, code: e.code, details: e.details }, "call failed");
            onCall({ rpc, caller, jobId: requestedId, code: statusName(e.code), details: e.details ?? "", ms: elapsedMs(started) });
            callback(e);
          },
        )
        // A failure while answering (not while handling) must not become an unhandled rejection.
        .catch((err: unknown) => log.error({ err, rpc }, "answering the call failed"));
    };
  }

  return {
    runJob: unary<RunJobReq, RunJobRes>("RunJob", async (req) => toJob(await jobs.run(toRunRequest(req)))),
    getJobStatus: unary<GetJobStatusReq, GetJobStatusRes>("GetJobStatus", (req) => toJob(jobs.status(req.id))),
    stopJob: unary<StopJobReq, StopJobRes>("StopJob", async (req, caller) => {
      const j = await jobs.stop(req.id, caller.subject);
      return { id: j.id, status: j.status, endTime: j.endTime ?? "", exitCode: j.exitCode ?? 0 };
    }),
    // The records go to serializeJobs as they are (it keeps each finished job's wire form); grpc-js only
    // hands the response to the service's serializer.
    listJobs: unary<EmptyRequest, Jobs>("ListJobs", () => ({ records: jobs.list() }) satisfies JobRecords as unknown as Jobs),
    deleteJob: unary<DeleteJobReq, DeleteJobRes>("DeleteJob", async (req) => ({ id: await jobs.delete(req.id) })),
    runJobWithUploads: (call: ServerDuplexStream<UploadReq, UploadRes>) => {
      void receiveUpload(call, { jobs, log, onCall, revoked });
    },
    getJobLogs: (call: ServerWritableStream<GetJobLogsReq, DataChunk>) => {
      followers.add(call);
      void streamLogs(call, { jobs, log, onCall, revoked, maxSendMsgSize }).finally(() => followers.delete(call));
    },
  };
}
