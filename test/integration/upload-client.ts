// A raw RunJobWithUploads client for the upload tests: builds protocol messages (well-formed or not), sends a
// scripted list of them over the real gRPC stream with back-pressure, and returns what the server answered
// (the `accepted`, the started job, or the gRPC error). Also runs bin/rnx from a chosen working directory,
// since the README examples name their uploads relative to it.
import { spawn } from "node:child_process";
import path from "node:path";
import { status as grpcStatus, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import {
  RunJobReq,
  UploadKind,
  UploadReq,
  type JobletServiceClient,
  type RunJobRes,
  type UploadAccepted,
  type UploadRes,
} from "../../src/shared/proto/joblet.js";
import { ROOT, type CliResult, type TestDaemon } from "./harness.js";

/** Size of one `data` message, bytes (the CLI's chunk size). */
export const CHUNK_BYTES = 256 * 1024;

/** The header message of an upload running `job`. */
export function header(job: Partial<RunJobReq>, totalBytes: number, totalEntries: number): UploadReq {
  return UploadReq.fromPartial({ part: { $case: "header", header: { job: RunJobReq.fromPartial(job), totalBytes, totalEntries } } });
}

/** An `entry` message; `kind` may be any number, so that invalid kinds can be sent. */
export function entry(p: string, kind: UploadKind, opts: { mode?: number; size?: number; linkTarget?: string } = {}): UploadReq {
  return UploadReq.fromPartial({
    part: { $case: "entry", entry: { path: p, kind, mode: opts.mode ?? 0o644, size: opts.size ?? 0, linkTarget: opts.linkTarget ?? "" } },
  });
}

/** A `data` message. */
export function data(bytes: Buffer): UploadReq {
  return { part: { $case: "data", data: bytes } };
}

/** The `end` message. */
export function end(): UploadReq {
  return { part: { $case: "end", end: {} } };
}

/** `bytes` as `data` messages of at most CHUNK_BYTES each. */
export function chunks(bytes: Buffer): UploadReq[] {
  const out: UploadReq[] = [];
  for (let off = 0; off < bytes.length; off += CHUNK_BYTES) out.push(data(bytes.subarray(off, off + CHUNK_BYTES)));
  return out;
}

/** One thing to upload, as the tests describe it. */
export type UploadItem =
  | { kind: "file"; path: string; content: Buffer | string; mode?: number }
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "symlink"; path: string; target: string };

/** A well-formed upload of `items` (header with the true totals, entries, data, end) running `job`. */
export function plan(job: Partial<RunJobReq>, items: UploadItem[]): UploadReq[] {
  const body: UploadReq[] = [];
  let totalBytes = 0;
  for (const it of items) {
    if (it.kind === "file") {
      const content = Buffer.from(it.content);
      totalBytes += content.length;
      body.push(entry(it.path, UploadKind.FILE, { mode: it.mode ?? 0o644, size: content.length }), ...chunks(content));
    } else if (it.kind === "dir") {
      body.push(entry(it.path, UploadKind.DIRECTORY, { mode: it.mode ?? 0o755 }));
    } else {
      body.push(entry(it.path, UploadKind.SYMLINK, { mode: 0o777, linkTarget: it.target }));
    }
  }
  return [header(job, totalBytes, items.length), ...body, end()];
}

/** What the server answered one upload stream. */
export interface UploadOutcome {
  accepted?: UploadAccepted;
  job?: RunJobRes;
  /** The call's error (undefined when it ended with OK). */
  error?: ServiceError;
  /** Every response in order. */
  responses: UploadRes[];
  /** How many of the scripted messages were written before the call ended or the script finished. */
  written: number;
}

/** How a scripted upload sends its messages and ends. */
export interface ScriptOptions {
  /** Wait for `accepted` after the first message (the header) before sending the rest (default true). */
  waitAccepted?: boolean;
  /** After the last message: half-close (default), cancel the call (a client that went away), or nothing. */
  finish?: "halfClose" | "cancel";
  /** Runs after the last message is written and before `finish` (e.g. wait for bytes to reach the host). */
  beforeFinish?: (accepted: UploadAccepted | undefined) => Promise<void>;
  /** The whole exchange must end within this, ms (default 30 s); else the call is cancelled and this throws. */
  timeoutMs?: number;
}

/**
 * Sends `msgs` on one RunJobWithUploads call of `client` and returns what the server answered. Stops writing
 * as soon as the call has ended (the server refused something); never throws for a gRPC error.
 */
export function sendScript(client: JobletServiceClient, msgs: UploadReq[], opts: ScriptOptions = {}): Promise<UploadOutcome> {
  const call = client.runJobWithUploads();
  const out: UploadOutcome = { responses: [], written: 0 };
  let ended = false;
  let onAccepted: (() => void) | undefined;
  let onEnded: (() => void) | undefined;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      call.cancel();
      reject(new Error(`upload call did not end within ${opts.timeoutMs ?? 30_000} ms (${out.written}/${msgs.length} messages written, ${out.responses.length} responses)`));
    }, opts.timeoutMs ?? 30_000);
    const finish = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      onAccepted?.();
      onEnded?.();
      resolve();
    };
    call.on("data", (res: UploadRes) => {
      out.responses.push(res);
      if (res.part?.$case === "accepted") {
        out.accepted = res.part.accepted;
        onAccepted?.();
      } else if (res.part?.$case === "job") out.job = res.part.job;
    });
    call.on("error", (err: ServiceError) => {
      out.error = err;
      finish();
    });
    call.on("status", (st: StatusObject) => {
      if (st.code !== grpcStatus.OK && !out.error) out.error = Object.assign(new Error(st.details), { code: st.code, details: st.details, metadata: st.metadata });
      // 'error' (if any) comes first; let it land, then end.
      setImmediate(finish);
    });
  });

  const write = (msg: UploadReq) =>
    new Promise<void>((resolve) => {
      if (ended) return resolve();
      out.written++;
      if (call.write(msg)) return resolve();
      onEnded = resolve;
      call.once("drain", () => {
        onEnded = undefined;
        resolve();
      });
    });

  const script = (async () => {
    for (const [i, msg] of msgs.entries()) {
      if (ended) return;
      await write(msg);
      if (i === 0 && (opts.waitAccepted ?? true)) {
        await new Promise<void>((resolve) => {
          if (out.accepted || ended) return resolve();
          onAccepted = resolve;
        });
        onAccepted = undefined;
      }
    }
    if (ended) return;
    await opts.beforeFinish?.(out.accepted);
    if (ended) return;
    if ((opts.finish ?? "halfClose") === "cancel") call.cancel();
    else call.end();
  })();
  return Promise.all([script, done]).then(() => out);
}

/** Runs bin/rnx with `d`'s client config from the working directory `cwd`. */
export function rnxIn(d: TestDaemon, cwd: string, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  const argv = [path.join(ROOT, "bin", "rnx"), "--config", d.rnxConfigFile, ...args];
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, argv, { cwd, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    proc.stdout.on("data", (b: Buffer) => out.push(b));
    proc.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`timed out: rnx ${args.join(" ")} (in ${cwd})\nstdout: ${Buffer.concat(out)}\nstderr: ${Buffer.concat(err)}`));
    }, timeoutMs);
    proc.once("error", reject);
    proc.once("close", (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBytes.toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), stdoutBytes });
    });
  });
}
