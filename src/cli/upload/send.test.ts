// The upload protocol against a scripted in-process stream: message order, chunking, backpressure, and
// every way the upload can fail. The same flow over real gRPC is in cli.e2e.test.ts.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { JobletError } from "../../shared/errors.js";
import { UploadKind, type RunJobReq, type RunJobRes, type UploadReq, type UploadRes } from "../../shared/proto/joblet.js";
import { fakeJob } from "../test-support/fake-daemon.js";
import { UploadCall, type UploadStream } from "./call.js";
import { CHUNK_BYTES, uploadAndRun } from "./send.js";
import { planUpload } from "./walk.js";

const JOB_ID = "0d5c6f3a-1111-4222-8333-444455556666";
const REQ: RunJobReq = { command: "python3", args: ["x.py"], maxCPU: 0, cpuCores: "", maxMemory: 0, maxIOBPS: 0, timeoutMs: 0, env: [], workdir: "", network: "" };
const ACCEPTED: UploadRes = { part: { $case: "accepted", accepted: { jobId: JOB_ID, maxBytes: 1 << 30, maxEntries: 100_000 } } };
const STARTED: UploadRes = { part: { $case: "job", job: fakeJob({ id: JOB_ID }) as RunJobRes } };

/**
 * A stand-in for grpc-js's ClientDuplexStream: records writes, answers like a server would (accepted after
 * the header, the job after half-close) unless a test scripts otherwise, and can report a full buffer.
 */
class ScriptedStream extends EventEmitter implements UploadStream {
  readonly written: UploadReq[] = [];
  halfClosed = false;
  cancelled = false;
  /** Every write returns false (buffer full) until the test emits 'drain'. */
  full = false;
  /** Writes made while an earlier write's 'drain' was still owed. */
  writesWhileBlocked = 0;
  private owed = false;
  onHeader: () => void = () => setImmediate(() => this.emit("data", ACCEPTED));
  onEnd: () => void = () => setImmediate(() => this.emit("data", STARTED));
  onWrite: (msg: UploadReq) => void = () => {};

  write(msg: UploadReq): boolean {
    if (this.owed) this.writesWhileBlocked++;
    this.written.push(msg);
    if (msg.part?.$case === "header") this.onHeader();
    this.onWrite(msg);
    if (this.full) this.owed = true;
    return !this.full;
  }
  drain(): void {
    this.owed = false;
    this.emit("drain");
  }
  end(): void {
    this.halfClosed = true;
    this.onEnd();
  }
  cancel(): void {
    this.cancelled = true;
    this.emit("error", { code: 1, details: "Cancelled on client" });
  }
  fail(code: number, details: string): void {
    this.emit("error", { code, details });
  }
}

/** Errors as the client maps them: here just the status code and text, so tests can see what arrived. */
const mapError = (err: unknown) => {
  const e = err as { code: number; details: string };
  return new JobletError("INTERNAL", `status ${e.code}: ${e.details}`);
};

function cases(written: readonly UploadReq[]): string[] {
  return written.map((m) => m.part?.$case ?? "none");
}

async function rejection(promise: Promise<unknown>): Promise<JobletError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof JobletError, String(err));
    return err;
  }
  assert.fail("expected a rejection");
}

describe("uploadAndRun", () => {
  let dir: string;
  let big: Buffer;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "rnx-send-"));
    mkdirSync(path.join(dir, "tree", "sub"), { recursive: true });
    big = randomBytes(2 * CHUNK_BYTES + 12_345);
    writeFileSync(path.join(dir, "tree", "big.bin"), big);
    writeFileSync(path.join(dir, "tree", "sub", "small.txt"), "small\n");
    writeFileSync(path.join(dir, "tree", "sub", "empty"), "");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("header with totals, accepted, entries with their bytes in 256 KiB chunks, end, half-close, the job", async () => {
    const plan = await planUpload({ paths: [path.join(dir, "tree")] });
    const stream = new ScriptedStream();
    const events: string[] = [];
    let dataBytes = 0;
    const job = await uploadAndRun(new UploadCall(stream, mapError, "joblet at test"), REQ, plan, {
      onAccepted: (a) => events.push(`accepted ${a.jobId}`),
      onData: (n) => (dataBytes += n),
      onSent: () => events.push(`sent, half-closed: ${stream.halfClosed}`),
    });
    assert.equal(job.id, JOB_ID);
    assert.deepEqual(events, [`accepted ${JOB_ID}`, "sent, half-closed: true"]);
    assert.equal(dataBytes, big.length + 6);
    assert.ok(!stream.cancelled);
    assert.deepEqual(cases(stream.written), ["header", "entry", "entry", "data", "data", "data", "entry", "entry", "entry", "data", "end"]);
    const header = stream.written[0]!.part as Extract<UploadReq["part"], { $case: "header" }>;
    assert.deepEqual(header.header, { job: REQ, totalBytes: big.length + 6, totalEntries: 5 });
    const entries = stream.written.flatMap((m) => (m.part?.$case === "entry" ? [m.part.entry] : []));
    assert.deepEqual(
      entries.map((e) => [e.path, e.kind, e.size]),
      [
        ["tree", UploadKind.DIRECTORY, 0],
        ["tree/big.bin", UploadKind.FILE, big.length],
        ["tree/sub", UploadKind.DIRECTORY, 0],
        ["tree/sub/empty", UploadKind.FILE, 0],
        ["tree/sub/small.txt", UploadKind.FILE, 6],
      ],
    );
    const chunks = stream.written.flatMap((m) => (m.part?.$case === "data" ? [m.part.data] : []));
    assert.deepEqual(chunks.map((c) => c.length), [CHUNK_BYTES, CHUNK_BYTES, 12_345, 6]);
    assert.ok(Buffer.concat(chunks.slice(0, 3)).equals(big), "the data reassembles to the file");
    assert.equal(chunks[3]!.toString(), "small\n");
  });

  test("a refusal of the header: nothing but the header was sent, and the server's error is the result", async () => {
    const plan = await planUpload({ paths: [path.join(dir, "tree")] });
    const stream = new ScriptedStream();
    stream.onHeader = () => setImmediate(() => stream.fail(8, "upload of 786 KiB exceeds uploads.maxTotalMB (0 MB)"));
    const err = await rejection(uploadAndRun(new UploadCall(stream, mapError, "joblet at test"), REQ, plan));
    assert.equal(err.message, "status 8: upload of 786 KiB exceeds uploads.maxTotalMB (0 MB)");
    assert.deepEqual(cases(stream.written), ["header"]);
  });

  test("backpressure: after a write the buffer did not take, nothing more is written until 'drain'", async () => {
    const plan = await planUpload({ paths: [path.join(dir, "tree")] });
    const stream = new ScriptedStream();
    stream.full = true;
    let drains = 0;
    stream.onWrite = () =>
      setTimeout(() => {
        drains++;
        stream.drain();
      }, 2);
    const job = await uploadAndRun(new UploadCall(stream, mapError, "joblet at test"), REQ, plan);
    assert.equal(job.id, JOB_ID);
    assert.equal(stream.writesWhileBlocked, 0);
    assert.equal(drains, stream.written.length);
  });

  test("the server failing the call while rnx waits for 'drain' ends the wait with the server's error", async () => {
    const plan = await planUpload({ paths: [path.join(dir, "tree")] });
    const stream = new ScriptedStream();
    stream.onWrite = (msg) => {
      if (msg.part?.$case === "data") {
        stream.full = true;
        setImmediate(() => stream.fail(3, 'entry "tree/big.bin": more data than its size'));
      }
    };
    const err = await rejection(uploadAndRun(new UploadCall(stream, mapError, "joblet at test"), REQ, plan));
    assert.equal(err.message, 'status 3: entry "tree/big.bin": more data than its size');
    assert.deepEqual(cases(stream.written), ["header", "entry", "entry", "data"]);
  });

  test("a file that shrank since the walk: refused naming it, the call cancelled, no wrong byte count sent", async () => {
    const file = path.join(dir, "shrinks.bin");
    writeFileSync(file, randomBytes(1000));
    const plan = await planUpload({ paths: [file] });
    truncateSync(file, 10);
    const stream = new ScriptedStream();
    const err = await rejection(uploadAndRun(new UploadCall(stream, mapError, "joblet at test"), REQ, plan));
    assert.equal(err.code, "FAILED_PRECONDITION");
    assert.equal(err.message, `--upload: "${file}" changed while it was being uploaded (1000 bytes when listed, 10 now)`);
    assert.match(err.hint!, new RegExp(`job ${JOB_ID} did not start`));
    assert.ok(stream.cancelled, "the call is cancelled, so the server drops the job");
    assert.deepEqual(cases(stream.written), ["header", "entry"]);
  });

  test("a file that grows or disappears while uploading is refused too", async () => {
    const grows = path.join(dir, "grows.bin");
    writeFileSync(grows, randomBytes(CHUNK_BYTES + 1));
    const plan = await planUpload({ paths: [grows] });
    const stream = new ScriptedStream();
    stream.onWrite = (msg) => {
      if (msg.part?.$case === "data") writeFileSync(grows, randomBytes(3 * CHUNK_BYTES));
    };
    const err = await rejection(uploadAndRun(new UploadCall(stream, mapError, "joblet at test"), REQ, plan));
    assert.match(err.message, /grows\.bin" changed while it was being uploaded \(262145 bytes when listed, 786432 after reading\)$/);
    assert.ok(!cases(stream.written).includes("end"));
    assert.ok(stream.cancelled);

    const gone = path.join(dir, "gone.txt");
    writeFileSync(gone, "x");
    const plan2 = await planUpload({ paths: [gone] });
    unlinkSync(gone);
    const err2 = await rejection(uploadAndRun(new UploadCall(new ScriptedStream(), mapError, "joblet at test"), REQ, plan2));
    assert.match(err2.message, /gone\.txt" changed while it was being uploaded \(it is gone\)$/);
  });

  test("a server that answers out of order is an internal error naming what came", async () => {
    const plan = await planUpload({ paths: [path.join(dir, "tree", "sub")] });
    const stream = new ScriptedStream();
    stream.onHeader = () => setImmediate(() => stream.emit("data", STARTED));
    const err = await rejection(uploadAndRun(new UploadCall(stream, mapError, "joblet at test"), REQ, plan));
    assert.equal(err.message, "joblet at test answered RunJobWithUploads out of order: expected accepted, got job");
    const ends = new ScriptedStream();
    ends.onEnd = () => setImmediate(() => ends.emit("end"));
    const err2 = await rejection(uploadAndRun(new UploadCall(ends, mapError, "joblet at test"), REQ, plan));
    assert.equal(err2.message, "joblet at test answered RunJobWithUploads out of order: expected job, got the end of the call");
  });
});

describe("UploadCall.receive", () => {
  test("an answer that does not come in time is DEADLINE_EXCEEDED, and the call is cancelled", async () => {
    const stream = new ScriptedStream();
    const call = new UploadCall(stream, mapError, "joblet at test");
    const err = await rejection(call.receive(20));
    assert.equal(err.message, "status 4: no answer within 20 ms");
    assert.ok(stream.cancelled);
    const later = await rejection(call.send({ part: { $case: "end", end: {} } }));
    assert.equal(later, err, "the first failure is the call's failure");
  });

  test("messages that arrived before a failure are still delivered, then the failure", async () => {
    const stream = new ScriptedStream();
    const call = new UploadCall(stream, mapError, "joblet at test");
    stream.emit("data", ACCEPTED);
    stream.fail(13, "boom");
    assert.deepEqual(await call.receive(1000), ACCEPTED);
    assert.equal((await rejection(call.receive(1000))).message, "status 13: boom");
  });
});
