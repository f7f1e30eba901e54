// A stand-in joblet daemon for the CLI's tests: a real grpc-js server with real mutual TLS (a throwaway PKI
// from generatePki) whose handlers the test supplies, plus an rnx-config.yml pointing at it. It checks the
// client certificate's role like the real daemon, so viewer tests exercise the real PERMISSION_DENIED path.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { stringify } from "yaml";
import {
  JobletServiceService,
  type DataChunk,
  type GetJobLogsReq,
  type Job,
  type JobletServiceServer,
  type RunJobReq,
  type RunJobRes,
  type StopJobRes,
  type UploadAccepted,
  type UploadHeader,
  type UploadReq,
  type UploadRes,
  DeleteJobRes,
} from "../../shared/proto/joblet.js";
import { JOB_TRAILER, encodeJobTrailer } from "../../shared/job-trailer.js";
import { generatePki, roleFromOU, type Pki } from "../../shared/tls/certs.js";

/** What a test may override; every handler not given fails with UNIMPLEMENTED. */
export interface FakeHandlers {
  runJob?: (req: RunJobReq) => Job | Promise<Job>;
  getJobStatus?: (id: string) => Job | Promise<Job>;
  stopJob?: (id: string) => StopJobRes | Promise<StopJobRes>;
  deleteJob?: (id: string) => DeleteJobRes | Promise<DeleteJobRes>;
  listJobs?: () => Job[] | Promise<Job[]>;
  /**
   * Writes chunks to the call and resolves when the stream should end; `signal` aborts when the client cancels.
   * Resolving with a job ends the stream with it in the trailers, as the daemon does (shared/job-trailer.ts).
   */
  getJobLogs?: (req: GetJobLogsReq, send: (chunk: DataChunk) => Promise<void>, signal: AbortSignal) => Promise<void | Job>;
  runJobWithUploads?: FakeUploadHandlers;
}

/** How the fake answers RunJobWithUploads; every message received is recorded in a FakeUploadCall. */
export interface FakeUploadHandlers {
  /** Answers the header: the accepted reply, or throws FakeStatus to refuse the upload before any data. */
  accept(header: UploadHeader): UploadAccepted | Promise<UploadAccepted>;
  /** Answers once the client has half-closed: the started job (sent as `job`), or throws FakeStatus. */
  start(received: readonly UploadReq[]): Job | Promise<Job>;
  /**
   * Sees each message as it arrives; throwing FakeStatus fails the call there (as the daemon does on an
   * invalid entry); `pause()` stops reading, so the client's writes back up.
   */
  onMessage?(msg: UploadReq, call: { pause(): void }): void;
}

/** What one RunJobWithUploads call delivered; the fake fills it in as the call goes on. */
export interface FakeUploadCall {
  /** Every message, in order. */
  readonly messages: UploadReq[];
  /** The client half-closed its side. */
  halfClosed: boolean;
  /** The client cancelled the call (or its connection went away) before the fake finished it. */
  cancelled: boolean;
}

/** An error a handler throws to answer with a gRPC status. */
export class FakeStatus extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
    /** Sent as trailing metadata "joblet-hint", as the daemon does. */
    readonly hint?: string,
  ) {
    super(message);
  }
}

const VIEWER_RPCS = new Set(["getJobStatus", "listJobs", "getJobLogs"]);

/** A job with every field set to its zero value, overridden by `fields`. */
export function fakeJob(fields: Partial<Job> = {}): Job {
  return {
    id: "0d5c6f3a-1111-4222-8333-444455556666",
    command: "echo",
    args: ["hi"],
    maxCPU: 0,
    cpuCores: "",
    maxMemory: 0,
    maxIOBPS: 0,
    status: "RUNNING",
    startTime: "2025-01-02T03:04:05Z",
    endTime: "",
    exitCode: 0,
    signal: "",
    oomKilled: false,
    reason: "",
    usage: undefined,
    createTime: "2025-01-02T03:04:04Z",
    timeoutMs: 0,
    timedOut: false,
    workdir: "",
    network: "",
    upload: undefined,
    ...fields,
  };
}

/** A running fake daemon; `close()` stops it and removes its files. */
export class FakeDaemon {
  private constructor(
    readonly server: grpc.Server,
    readonly port: number,
    readonly dir: string,
    readonly pki: Pki,
    /** rnx-config.yml with nodes `default` (admin) and `viewer`. */
    readonly configPath: string,
    /** Every request received, as [rpc, request], in order. */
    readonly calls: Array<[string, unknown]>,
  ) {}

  /** Starts a daemon on 127.0.0.1 with the given handlers. */
  static async start(handlers: FakeHandlers, opts: { pki?: Pki; host?: string; port?: number } = {}): Promise<FakeDaemon> {
    const pki = opts.pki ?? (await sharedPki());
    const server = new grpc.Server();
    const calls: Array<[string, unknown]> = [];
    server.addService(JobletServiceService, implement(handlers, calls));
    const creds = grpc.ServerCredentials.createSsl(
      Buffer.from(pki.caCertPem),
      [{ private_key: Buffer.from(pki.serverKeyPem), cert_chain: Buffer.from(pki.serverCertPem) }],
      true,
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${opts.host ?? "127.0.0.1"}:${opts.port ?? 0}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    const dir = mkdtempSync(path.join(os.tmpdir(), "rnx-test-"));
    const configPath = path.join(dir, "rnx-config.yml");
    writeFileSync(configPath, rnxConfigYaml(pki, `localhost:${port}`), { mode: 0o600 });
    return new FakeDaemon(server, port, dir, pki, configPath, calls);
  }

  /** Stops the server at once (open streams are cancelled) and removes the config directory. */
  async close(): Promise<void> {
    this.server.forceShutdown();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The YAML of an rnx config with an admin node `default` and a viewer node `viewer` at `address`. */
export function rnxConfigYaml(pki: Pki, address: string): string {
  return stringify({
    version: "3.0",
    nodes: {
      default: { address, cert: pki.adminCertPem, key: pki.adminKeyPem, ca: pki.caCertPem },
      viewer: { address, cert: pki.viewerCertPem, key: pki.viewerKeyPem, ca: pki.caCertPem },
    },
  });
}

let pkiPromise: Promise<Pki> | undefined;

/** One PKI per test process: generation is cheap, but sharing it keeps tests independent of its cost. */
export function sharedPki(): Promise<Pki> {
  pkiPromise ??= generatePki({ address: "localhost" });
  return pkiPromise;
}

function roleOf(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } }): string {
  return roleFromOU(call.getAuthContext().sslPeerCertificate?.subject?.OU) ?? "none";
}

function check(rpc: string, role: string): void {
  if (role === "admin") return;
  if (role === "viewer" && VIEWER_RPCS.has(rpc)) return;
  throw new FakeStatus(grpc.status.PERMISSION_DENIED, `role "${role}" may not call ${rpc}`);
}

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof FakeStatus) {
    const metadata = new grpc.Metadata();
    if (err.hint) metadata.set("joblet-hint", err.hint);
    return { code: err.code, details: err.message, metadata };
  }
  return { code: grpc.status.INTERNAL, details: String(err) };
}

function implement(h: FakeHandlers, calls: Array<[string, unknown]>): JobletServiceServer {
  const unary =
    <Req, Res>(rpc: string, fn: ((req: Req) => Res | Promise<Res>) | undefined) =>
    (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      calls.push([rpc, call.request]);
      void (async () => {
        try {
          check(rpc, roleOf(call));
          if (!fn) throw new FakeStatus(grpc.status.UNIMPLEMENTED, `${rpc} not faked`);
          cb(null, await fn(call.request));
        } catch (err) {
          cb(toStatus(err));
        }
      })();
    };
  return {
    runJob: unary("runJob", h.runJob),
    getJobStatus: unary("getJobStatus", h.getJobStatus && ((r: { id: string }) => h.getJobStatus!(r.id))),
    stopJob: unary("stopJob", h.stopJob && ((r: { id: string }) => h.stopJob!(r.id))),
    deleteJob: unary("deleteJob", h.deleteJob && ((r: { id: string }) => h.deleteJob!(r.id))),
    listJobs: unary("listJobs", h.listJobs && (async () => ({ jobs: await h.listJobs!() }))),
    runJobWithUploads: (call: grpc.ServerDuplexStream<UploadReq, UploadRes>) => {
      const record: FakeUploadCall = { messages: [], halfClosed: false, cancelled: false };
      calls.push(["runJobWithUploads", record]);
      let finished = false;
      const fail = (err: unknown) => {
        if (finished) return;
        finished = true;
        call.emit("error", toStatus(err));
      };
      call.on("cancelled", () => {
        if (!finished) record.cancelled = true;
      });
      try {
        check("runJobWithUploads", roleOf(call));
        if (!h.runJobWithUploads) throw new FakeStatus(grpc.status.UNIMPLEMENTED, "runJobWithUploads not faked");
      } catch (err) {
        fail(err);
        return;
      }
      const handlers = h.runJobWithUploads;
      // Answers go out in the order their messages came, whatever each handler awaits.
      let answers = Promise.resolve();
      const answer = (fn: () => Promise<void>) => {
        answers = answers.then(fn).catch(fail);
      };
      call.on("data", (msg: UploadReq) => {
        if (finished) return;
        record.messages.push(msg);
        try {
          handlers.onMessage?.(msg, call);
        } catch (err) {
          fail(err);
          return;
        }
        if (msg.part?.$case === "header") {
          const header = msg.part.header;
          answer(async () => {
            const accepted = await handlers.accept(header);
            if (!finished) call.write({ part: { $case: "accepted", accepted } });
          });
        }
      });
      call.on("end", () => {
        record.halfClosed = true;
        answer(async () => {
          const job: RunJobRes = await handlers.start(record.messages);
          if (finished) return;
          finished = true;
          call.write({ part: { $case: "job", job } });
          call.end();
        });
      });
    },
    getJobLogs: (call: grpc.ServerWritableStream<GetJobLogsReq, DataChunk>) => {
      calls.push(["getJobLogs", call.request]);
      const cancelled = new AbortController();
      call.on("cancelled", () => cancelled.abort());
      void (async () => {
        try {
          check("getJobLogs", roleOf(call));
          if (!h.getJobLogs) throw new FakeStatus(grpc.status.UNIMPLEMENTED, "getJobLogs not faked");
          const final = await h.getJobLogs(call.request, (chunk) =>
            new Promise<void>((resolve) => {
              if (call.write(chunk)) resolve();
              else call.once("drain", () => resolve());
            }),
            cancelled.signal,
          );
          const trailer = final ? encodeJobTrailer(final) : undefined;
          const trailers = new grpc.Metadata();
          if (trailer) trailers.set(JOB_TRAILER, trailer);
          call.end(trailers);
        } catch (err) {
          call.emit("error", toStatus(err));
        }
      })();
    },
  };
}
