// Bad input against the real daemon: thousands of random and malformed requests to every RPC over the real
// mutual-TLS gRPC channel (valid admin certificate), encoded by hand so a field can hold what no well-behaved
// client sends (NUL bytes, invalid UTF-8, strings up to the 4 MiB message limit, thousands of entries,
// negative and 64-bit numbers). Every answer must be a well-formed status the API documents — never
// INTERNAL, never a dropped connection — and afterwards the daemon must still run jobs and hold nothing
// half-made: no job stuck starting, no container, cgroup, bundle, exit file or work dir without its job.
//
// The PRNG seed is printed; rerun a failure with JOBLET_FUZZ_SEED=<seed> (JOBLET_FUZZ_LOG=<file> keeps the
// daemon's log). Each input the fuzzer found to be mishandled is pinned by a deterministic test at the end.
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import {
  DataChunk,
  DeleteJobRes,
  GetJobStatusRes,
  Jobs,
  RunJobReq,
  RunJobRes,
  StopJobRes,
  type Job,
  type JobletServiceClient,
} from "../../src/shared/proto/joblet.js";
import { TestDaemon, unary } from "./harness.js";

/** Requests sent at most, and the time box for sending them. */
const MAX_REQUESTS = 3000;
const TIME_BOX_MS = 60_000;
/**
 * How long one request may take, ms. Every job the fuzzer starts ends within seconds, so a log follow ends
 * too; the margin is for multi-megabyte requests queued on the one HTTP/2 connection of a loaded machine.
 */
const DEADLINE_MS = 90_000;
/** Requests in flight at once. */
const CONCURRENCY = 12;
/** The daemon's (and gRPC's default) largest accepted message, bytes. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** The statuses a request may end with; anything else (INTERNAL above all) is a bug. */
const ALLOWED = new Set([status.OK, status.INVALID_ARGUMENT, status.NOT_FOUND, status.FAILED_PRECONDITION, status.RESOURCE_EXHAUSTED]);
const FINAL = new Set(["COMPLETED", "FAILED", "STOPPED"]);
const SERVICE = "/joblet.JobletService";

const seed = process.env.JOBLET_FUZZ_SEED ? Number(process.env.JOBLET_FUZZ_SEED) : randomInt(2 ** 31);

let d: TestDaemon;
let client: JobletServiceClient;

before(async () => {
  d = await TestDaemon.start({ joblet: { maxConcurrentJobs: 4, stopGracePeriod: "1s" } });
  client = d.client();
});
after(async () => {
  if (process.env.JOBLET_FUZZ_LOG) writeFileSync(process.env.JOBLET_FUZZ_LOG, d.log);
  client?.close();
  await d?.destroy();
});

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A string field's value on the wire: text (encoded as UTF-8) or raw bytes (possibly not UTF-8). */
type Str = string | Uint8Array;

/** A RunJobReq as this fuzzer builds it: any field may hold what the generated encoder would refuse. */
interface FuzzRunReq {
  command: Str;
  args: Str[];
  maxCPU: number;
  cpuCores: Str;
  maxMemory: number;
  maxIOBPS: number;
  timeoutMs: bigint;
  env: Str[];
  workdir: Str;
  network: Str;
}

class Gen {
  readonly r: () => number;
  constructor(s: number) {
    this.r = prng(s);
  }

  int(n: number): number {
    return Math.floor(this.r() * n);
  }

  chance(p: number): boolean {
    return this.r() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  /** Printable ASCII, `n` characters. */
  ascii(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(32 + this.int(95));
    return s;
  }

  /** Any code points, lone surrogates included (the encoder turns those into U+FFFD). */
  unicode(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCodePoint(this.pick([this.int(0x80), this.int(0x800), this.int(0x10000), 0x10000 + this.int(0x100000)]));
    return s;
  }

  /** Byte sequences that are not UTF-8: stray continuation, truncated, overlong, surrogate, 0xff. */
  badUtf8(): Uint8Array {
    const bad = this.pick([[0x80], [0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff, 0xfe], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]);
    const pre = Buffer.from(this.pick(["", "true", "a/b", "A=", "0-1"]));
    return Uint8Array.from([...pre, ...bad, ...Buffer.from(this.ascii(this.int(4)))]);
  }

  /** A random string-field value of any kind; `huge` allows strings up to past the message limit. */
  text(huge = true): Str {
    switch (this.int(huge ? 12 : 7)) {
      case 0:
        return "";
      case 1:
        return this.ascii(1 + this.int(40));
      case 2:
        return this.unicode(1 + this.int(20));
      case 3:
        return `${this.ascii(this.int(8))}\0${this.ascii(this.int(8))}`;
      case 4:
        return this.badUtf8();
      case 5:
        return this.pick(["..", ".", "/", "../../etc/passwd", "/etc/shadow", "a/../..", "a//b", "./a", "a/b/", "\n", "$(reboot)", "`id`", "; rm -rf /", "%s%n%x", "\u202eevil", "\ufffd", "-", "--help"]);
      case 6:
        return this.ascii(this.int(12));
      case 7:
        // Around the validators' limits: 4 KiB (command), 128 KiB (an argument).
        return "x".repeat(this.pick([255, 256, 1023, 1024, 1025, 4095, 4096, 4097, 128 * 1024 - 1, 128 * 1024, 128 * 1024 + 1]));
      case 8:
        return this.chance(0.3) ? "y".repeat(this.int(MAX_MESSAGE_BYTES + 1024)) : this.ascii(200 + this.int(2000));
      default:
        return this.ascii(this.int(12));
    }
  }

  int32(): number {
    return this.pick([0, 0, 1, -1, 3, 4, 5, 50, 100, 101, 1000, 100_000, 2 ** 31 - 1, -(2 ** 31), this.int(2 ** 32) - 2 ** 31, this.int(200)]);
  }

  uint64(): bigint {
    // Up to 2^64-1: a uint64 field may hold more than a JavaScript number represents exactly (2^53).
    return this.chance(0.95)
      ? this.pick([0n, 0n, 1n, 5n, 50n, 1000n, 60_000n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n, BigInt(this.int(2 ** 31))])
      : this.pick([2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]);
  }

  /** Bytes that are not a valid protobuf message: random, truncated, or with a field's length past the end. */
  garbage(): Buffer {
    switch (this.int(4)) {
      case 0:
        return Buffer.from(Array.from({ length: 1 + this.int(64) }, () => this.int(256)));
      case 1:
        return Buffer.from([0x0a, 0x10, 0x41]);
      case 2:
        return Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
      default:
        return Buffer.from([0x0a, 0x04, 0x74, 0x72, 0x75, 0x65, 0x0f]);
    }
  }

  cpuCores(): Str {
    return this.chance(0.7)
      ? this.pick(["", "0", "1", "0-1", "1-0", "0,1", "1,0,1", "2", "0-2", "8191", "8192", "99999999999", "0,,1", " 0", "0-", "-", "-1", "a", "0-1,", "0x1", "٣"])
      : this.text();
  }

  env(huge = true): Str {
    return this.chance(0.6)
      ? this.pick(["A=b", "FOO=", "PATH=/evil", "LD_PRELOAD=/work/x.so", "HOME=/", "JOBLET_JOB_ID=fake", "=b", "1A=x", "A", "A B=c", "Ä=x", "A=\0", huge ? `A=${"v".repeat(200 * 1024)}` : "B=1"])
      : this.text(huge);
  }

  workdir(): Str {
    return this.chance(0.6)
      ? this.pick(["", "a", "a/b/c", "a/", "a//b", "..", "../x", "a/../../x", "/abs", "./a", "a/./b", `${"d/".repeat(300)}x`, "x".repeat(1025), "tmp", "proc"])
      : this.text();
  }

  network(): Str {
    return this.chance(0.8) ? this.pick(["", "", "host", "none", "HOST", "bridge", " none", "none\0"]) : this.text();
  }

  /** A run request: mostly a valid, quick one (`true`) with a few fields replaced by random values. */
  runReq(): FuzzRunReq {
    const req: FuzzRunReq = {
      command: this.pick(["true", "/bin/true", "/usr/bin/true", "echo"]),
      args: [],
      maxCPU: 0,
      cpuCores: "",
      maxMemory: 0,
      maxIOBPS: 0,
      timeoutMs: 0n,
      env: [],
      workdir: "",
      network: "",
    };
    // Few requests stay valid: each valid one starts a job, which costs the daemon far more than a refusal.
    const mutations = this.pick([0, 1, 1, 2, 2, 2, 3, 3, 4, 4]);
    for (let i = 0; i < mutations; i++) {
      switch (this.int(12)) {
        case 0:
          req.command = this.chance(0.5) ? this.text() : this.pick(["", "/usr", "/etc/passwd", "nonexistent-program", "/work", "../bin/true", "true ", "/proc/self/exe"]);
          break;
        case 1:
          req.args = Array.from({ length: this.pick([1, 2, 10, 100, 4096, 4097]) }, () => (this.chance(0.9) ? this.ascii(this.int(10)) : this.text(false)));
          break;
        case 2:
          req.maxCPU = this.int32();
          break;
        case 3:
          req.cpuCores = this.cpuCores();
          break;
        case 4:
          req.maxMemory = this.int32();
          break;
        case 5:
          req.maxIOBPS = this.int32();
          break;
        case 6:
          req.timeoutMs = this.uint64();
          break;
        case 7:
          req.env = Array.from({ length: this.pick([1, 2, 5, 1024, 1025]) }, () => this.env(false));
          break;
        case 8:
          req.workdir = this.workdir();
          break;
        case 9:
          req.network = this.network();
          break;
        case 10:
          req.args = [this.text()];
          break;
        default:
          req.env = [this.env()];
      }
    }
    // Most requests also get one field that no validator may accept, so few start a job: each job costs
    // the daemon ~20 ms of runc CPU and several processes, a refusal almost nothing.
    if (this.chance(0.85)) this.breakField(req);
    return req;
  }

  /** Sets one field of `req` to a value that must be refused with INVALID_ARGUMENT. */
  breakField(req: FuzzRunReq): void {
    switch (this.int(10)) {
      case 0:
        req.command = this.pick(["", "tr\0ue", this.badUtf8(), "x".repeat(4097)]);
        break;
      case 1:
        req.args = [...req.args, this.pick(["a\0b", this.badUtf8(), "\ufffd"])];
        break;
      case 2:
        req.maxCPU = -1 - this.int(2 ** 31 - 1);
        break;
      case 3:
        req.maxMemory = this.pick([-1, 1, 2, 3, -(2 ** 31)]);
        break;
      case 4:
        req.maxIOBPS = -1 - this.int(1000);
        break;
      case 5:
        req.cpuCores = this.pick(["a", "0-", "1-0", "8192", "0,,1", this.badUtf8()]);
        break;
      case 6:
        req.env = [...req.env, this.pick(["=x", "1A=x", "NOEQUALS", "A B=c", "A=\0", this.badUtf8()])];
        break;
      case 7:
        req.workdir = this.pick(["..", "../x", "/abs", "a/../..", "./a", "a//b", "a\0b", this.badUtf8()]);
        break;
      case 8:
        req.network = this.pick(["bridge", "HOST", " none", "none\0", this.badUtf8()]);
        break;
      default:
        req.args = Array.from({ length: 4097 }, () => "a");
    }
  }

  /** A job ID field: a known ID or a prefix of one, or anything else. */
  id(known: readonly string[]): Str {
    if (known.length && this.chance(0.5)) {
      const id = this.pick(known);
      return this.chance(0.7) ? id : id.slice(0, 1 + this.int(id.length));
    }
    return this.chance(0.4)
      ? this.pick(["", "0", "f", "-", "ffffffff", "00000000-0000-0000-0000-000000000000", "ABCDEF", "g", "0".repeat(37), "../x", "*"])
      : this.text();
  }
}

/** Protobuf encoding of a FuzzRunReq, field numbers as in proto/joblet.proto. */
function encodeRun(req: FuzzRunReq): Buffer {
  const w = new BinaryWriter();
  const str = (tag: number, v: Str) => {
    if (typeof v === "string") w.uint32(tag).string(v);
    else w.uint32(tag).bytes(v);
  };
  // Each field written even when empty/zero: a decoder must take explicit defaults too.
  str(10, req.command);
  for (const a of req.args) str(18, a);
  w.uint32(24).int32(req.maxCPU);
  str(34, req.cpuCores);
  w.uint32(40).int32(req.maxMemory);
  w.uint32(48).int32(req.maxIOBPS);
  w.uint32(800).uint64(req.timeoutMs);
  for (const e of req.env) str(810, e);
  str(818, req.workdir);
  str(826, req.network);
  return Buffer.from(w.finish());
}

/** Protobuf encoding of a message with one string field 1 (GetJobStatusReq, StopJobReq, DeleteJobReq) and GetJobLogsReq's offset. */
function encodeId(id: Str, fromOffset?: bigint): Buffer {
  const w = new BinaryWriter();
  if (typeof id === "string") w.uint32(10).string(id);
  else w.uint32(10).bytes(id);
  if (fromOffset !== undefined) w.uint32(800).uint64(fromOffset);
  return Buffer.from(w.finish());
}

/** How one request ended. */
interface Outcome {
  rpc: string;
  code: status;
  details: string;
  /** The request, shortened for a report. */
  request: string;
  /** A job the request started, if any. */
  jobId?: string;
}

const raw = (b: Buffer) => b;

/** Sends one unary request as bytes; decodes an OK answer with `decode` (so it must be well-formed). */
function callUnary(rpc: string, body: Buffer, decode: (b: Buffer) => unknown): Promise<{ code: status; details: string; res?: unknown }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest<Buffer, Buffer>(`${SERVICE}/${rpc}`, raw, raw, body, new Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err, res) => {
      if (err) return resolve({ code: err.code, details: err.details });
      try {
        resolve({ code: status.OK, details: "", res: decode(res!) });
      } catch (e) {
        resolve({ code: status.DATA_LOSS, details: `malformed ${rpc} response: ${(e as Error).message}` });
      }
    });
  });
}

/** Sends one GetJobLogs request as bytes and reads the whole stream (every chunk must decode). */
function callLogs(body: Buffer): Promise<{ code: status; details: string }> {
  return new Promise((resolve) => {
    const s: ClientReadableStream<Buffer> = client.makeServerStreamRequest<Buffer, Buffer>(`${SERVICE}/GetJobLogs`, raw, raw, body, new Metadata(), { deadline: Date.now() + DEADLINE_MS });
    let bad = "";
    s.on("data", (b: Buffer) => {
      try {
        DataChunk.decode(b);
      } catch (e) {
        bad = (e as Error).message;
      }
    });
    s.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details }));
    s.on("end", () => resolve(bad ? { code: status.DATA_LOSS, details: `malformed chunk: ${bad}` } : { code: status.OK, details: "" }));
  });
}

/** A short, printable description of a value for failure reports. */
function show(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === "bigint") return `${x}n`;
    if (x instanceof Uint8Array) return `bytes(${Buffer.from(x).toString("hex")})`;
    if (typeof x === "string" && x.length > 60) return `${JSON.stringify(x.slice(0, 30)).slice(1, -1)}…(${x.length} chars)`;
    if (Array.isArray(x) && x.length > 6) return [...x.slice(0, 3), `…(${x.length} items)`];
    return x;
  });
}

/** Sends request number `i` (its kind and content drawn from `g`). */
async function fuzzOne(g: Gen, known: string[]): Promise<Outcome> {
  const kind = g.pick(["RunJob", "RunJob", "RunJob", "GetJobStatus", "StopJob", "DeleteJob", "GetJobLogs", "ListJobs", "garbage"]);
  switch (kind) {
    case "garbage": {
      // Not a message at all, to any RPC.
      const rpc = g.pick(["RunJob", "GetJobStatus", "StopJob", "DeleteJob", "ListJobs"]);
      const body = g.garbage();
      const r = await callUnary(rpc, body, () => undefined);
      return { rpc: `${rpc} (not protobuf)`, code: r.code, details: r.details, request: `bytes(${body.toString("hex")})` };
    }
    case "RunJob": {
      const req = g.runReq();
      const r = await callUnary(kind, encodeRun(req), (b) => RunJobRes.decode(b));
      const jobId = (r.res as RunJobRes | undefined)?.id;
      return { rpc: kind, code: r.code, details: r.details, request: show(req), ...(jobId && { jobId }) };
    }
    case "GetJobStatus":
    case "StopJob":
    case "DeleteJob": {
      const id = g.id(known);
      const decode = { GetJobStatus: GetJobStatusRes.decode, StopJob: StopJobRes.decode, DeleteJob: DeleteJobRes.decode }[kind];
      const r = await callUnary(kind, encodeId(id), (b) => decode(b));
      return { rpc: kind, code: r.code, details: r.details, request: show({ id }) };
    }
    case "GetJobLogs": {
      const id = g.id(known);
      const fromOffset = g.chance(0.95) ? g.pick([0n, 0n, 1n, 3n, 100n, 2n ** 31n, 2n ** 40n]) : g.uint64();
      const r = await callLogs(encodeId(id, fromOffset));
      return { rpc: kind, code: r.code, details: r.details, request: show({ id, fromOffset }) };
    }
    default: {
      const r = await callUnary("ListJobs", Buffer.alloc(0), (b) => Jobs.decode(b));
      return { rpc: kind, code: r.code, details: r.details, request: "{}" };
    }
  }
}

const listJobs = () => unary<Jobs>((cb) => client.listJobs({}, cb)).then((r) => r.jobs);

test(`fuzz: up to ${MAX_REQUESTS} random and malformed requests in ${TIME_BOX_MS / 1000} s get only documented statuses`, async () => {
  console.log(`fuzz seed ${seed} (rerun with JOBLET_FUZZ_SEED=${seed})`);
  // One generator per worker, seeded from the run's seed: the requests are reproducible, their interleaving
  // (and so which job IDs are known when) is not.
  const known: string[] = [];
  const outcomes: Outcome[] = [];
  const deadline = Date.now() + TIME_BOX_MS;
  let sent = 0;
  // A daemon that stopped answering (crashed) ends the run: the rest would only repeat UNAVAILABLE.
  let unavailable = 0;
  const worker = async (w: number) => {
    const g = new Gen(seed * 31 + w);
    while (sent < MAX_REQUESTS && Date.now() < deadline && unavailable < 20) {
      sent++;
      const o = await fuzzOne(g, known);
      if (o.jobId) known.push(o.jobId);
      if (o.code === status.UNAVAILABLE) unavailable++;
      outcomes.push(o);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  const elapsedMs = Math.round(performance.now() - t0);

  // The summary: per RPC, how many requests ended with each status.
  const table = new Map<string, Map<string, number>>();
  for (const o of outcomes) {
    const row = table.get(o.rpc) ?? new Map<string, number>();
    row.set(status[o.code]!, (row.get(status[o.code]!) ?? 0) + 1);
    table.set(o.rpc, row);
  }
  console.log(`fuzz: ${outcomes.length} requests in ${elapsedMs} ms (${CONCURRENCY} in flight), ${known.length} jobs started`);
  for (const [rpc, row] of [...table].sort()) console.log(`  ${rpc}: ${[...row].map(([c, n]) => `${c} ${n}`).join(", ")}`);

  const bad = outcomes.filter((o) => !ALLOWED.has(o.code));
  const groups = new Map<string, Outcome[]>();
  for (const o of bad) {
    const key = `${o.rpc} ${status[o.code]}: ${o.details.replace(/\d+(\.\d+)?s|:\d{2,5}\b/g, "…").slice(0, 100)}`;
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  const report = [...groups].map(([k, os]) => `${os.length}× ${k}\n    e.g. ${os[0]!.request.slice(0, 300)}`).join("\n");
  // A daemon that died leaves its last words (not JSON log lines) on stderr.
  const lastWords = d.log.split("\n").filter((l) => l && !l.startsWith("{")).slice(-12).join("\n");
  assert.ok(unavailable < 20, `the daemon stopped answering (seed ${seed}); its last words:\n${lastWords}\n\nrequests so far:\n${report}`);
  assert.equal(bad.length, 0, `${bad.length} requests ended with a status the API does not document (seed ${seed}):\n${report}`);
  assert.ok(outcomes.length >= 1000, `only ${outcomes.length} requests in the time box`);
  assert.ok(known.length >= 10, `only ${known.length} fuzzed requests started a job: the fuzzer does not reach the runtime`);
  // Every refusal names what was wrong: a field for INVALID_ARGUMENT.
  for (const o of outcomes.filter((x) => x.code === status.INVALID_ARGUMENT)) {
    assert.match(o.details, /^[A-Za-z]+(\[\d+\])?: /, `INVALID_ARGUMENT without a field name: ${o.details.slice(0, 200)} for ${o.request.slice(0, 200)}`);
  }
  assert.doesNotMatch(d.log, /"msg":"internal error"/, "the daemon logged an internal error");
});

test("after the fuzz: the daemon still runs a job, and no job, container, cgroup, bundle, exit file or work dir is half-made", async () => {
  // Stop whatever the fuzzer started that still runs, then wait until every job is final.
  for (const j of await listJobs()) {
    if (j.status === "RUNNING") {
      await unary((cb) => client.stopJob({ id: j.id }, cb)).catch((err: ServiceError) => {
        if (err.code !== status.FAILED_PRECONDITION) throw err;
      });
    }
  }
  let jobs: Job[] = [];
  for (const end = Date.now() + 30_000; ; await sleep(200)) {
    jobs = await listJobs();
    if (jobs.every((j) => FINAL.has(j.status))) break;
    assert.ok(Date.now() < end, `jobs not final: ${jobs.filter((j) => !FINAL.has(j.status)).map((j) => `${j.id} ${j.status}`).join(", ")}`);
  }
  assert.ok(!jobs.some((j) => j.status === "INITIALIZING"));
  for (const j of jobs) assert.notEqual(j.endTime, "", `job ${j.id} is ${j.status} without an end time`);

  const state = path.join(d.dir, "state");
  const ids = new Set(jobs.map((j) => j.id));
  assert.deepEqual(d.runtimeContainers(), [], "containers left in the runtime");
  assert.deepEqual(d.leftoverCgroups(), [], "job cgroups left");
  assert.deepEqual(readdirSync(d.bundlesDir()), [], "bundles left in the run dir");
  assert.deepEqual(readdirSync(path.join(state, "exits")), [], "exit files left in state/exits");
  const orphanDirs = readdirSync(path.join(state, "jobs")).filter((id) => !ids.has(id));
  assert.deepEqual(orphanDirs, [], "work dirs without a job record");
  const orphanLogs = readdirSync(path.join(state, "logs")).filter((f) => !ids.has(f.replace(/\.log$/, "")));
  assert.deepEqual(orphanLogs, [], "logs without a job record");

  // The daemon still serves: a valid job runs and its output arrives.
  const ok = await unary<RunJobRes>((cb) => client.runJob(RunJobReq.fromPartial({ command: "echo", args: ["ok"] }), cb));
  const out = await new Promise<string>((resolve, reject) => {
    const bufs: Buffer[] = [];
    const s = client.getJobLogs({ id: ok.id, fromOffset: 0 });
    s.on("data", (ch: DataChunk) => bufs.push(Buffer.from(ch.payload)));
    s.on("error", reject);
    s.on("end", () => resolve(Buffer.concat(bufs).toString()));
  });
  assert.equal(out, "ok\n");
  for (let j = await unary<Job>((cb) => client.getJobStatus({ id: ok.id }, cb)); ; await sleep(50)) {
    if (j.endTime) {
      assert.equal(j.status, "COMPLETED");
      break;
    }
    j = await unary<Job>((cb) => client.getJobStatus({ id: ok.id }, cb));
  }
  assert.ok(existsSync(path.join(state, "jobs", ok.id)));
});

describe("inputs the fuzzer found, one at a time (each on its own daemon, the one that killed it last)", () => {
  let d2: TestDaemon;
  let c2: JobletServiceClient;
  before(async () => {
    d2 = await TestDaemon.start();
    c2 = d2.client();
  });
  after(async () => {
    c2?.close();
    await d2?.destroy();
  });

  /** Sends `body` as `rpc` and returns the status it ended with. */
  const send = (rpc: string, body: Buffer) =>
    new Promise<{ code: status; details: string }>((resolve) =>
      c2.makeUnaryRequest<Buffer, Buffer>(`${SERVICE}/${rpc}`, raw, raw, body, new Metadata(), { deadline: Date.now() + 10_000 }, (err) =>
        resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: "" }),
      ),
    );

  /** The status a GetJobLogs stream ended with, and how long it took. */
  const logsStatus = (body: Buffer, deadlineMs: number) =>
    new Promise<{ code: status; details: string; ms: number }>((resolve) => {
      const t0 = performance.now();
      const s = c2.makeServerStreamRequest<Buffer, Buffer>(`${SERVICE}/GetJobLogs`, raw, raw, body, new Metadata(), { deadline: Date.now() + deadlineMs });
      s.on("data", () => undefined);
      s.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details, ms: performance.now() - t0 }));
      s.on("end", () => resolve({ code: status.OK, details: "", ms: performance.now() - t0 }));
    });

  test("GetJobLogs refusals end the stream with their status at once: unknown ID → NOT_FOUND, malformed ID → INVALID_ARGUMENT", async () => {
    const cases: [string, status, RegExp][] = [
      ["ffffffff", status.NOT_FOUND, /no job with ID ffffffff/],
      ["a//b", status.INVALID_ARGUMENT, /^id: /],
    ];
    for (const [id, code, re] of cases) {
      const r = await logsStatus(encodeId(id, 0n), 5_000);
      assert.equal(r.code, code, `GetJobLogs ${JSON.stringify(id)}: ${status[r.code]} after ${Math.round(r.ms)} ms: ${r.details}`);
      assert.match(r.details, re);
    }
  });

  test("a workdir part longer than 255 bytes (NAME_MAX) is INVALID_ARGUMENT naming workdir, and no job is recorded", async () => {
    const jobsBefore = (await unary<Jobs>((cb) => c2.listJobs({}, cb))).jobs.length;
    const r = await send("RunJob", encodeRun({ ...quick(), workdir: `a/${"x".repeat(256)}` }));
    assert.equal(r.code, status.INVALID_ARGUMENT, `${status[r.code]}: ${r.details}`);
    assert.match(r.details, /^workdir: /);
    assert.equal((await unary<Jobs>((cb) => c2.listJobs({}, cb))).jobs.length, jobsBefore, "the refused request left a job record");
    // The control: 255 bytes is a legal name.
    const ok = await send("RunJob", encodeRun({ ...quick(), workdir: `a/${"x".repeat(255)}` }));
    assert.equal(ok.code, status.OK, ok.details);
  });

  test("uint64 values above 2^53 (timeoutMs, fromOffset) are INVALID_ARGUMENT naming the field, not INTERNAL", async () => {
    for (const timeoutMs of [2n ** 53n + 1n, 2n ** 64n - 1n]) {
      const r = await send("RunJob", encodeRun({ ...quick(), timeoutMs }));
      assert.equal(r.code, status.INVALID_ARGUMENT, `timeoutMs ${timeoutMs}: ${status[r.code]}: ${r.details}`);
      assert.match(r.details, /^timeoutMs: /);
    }
    const r = await logsStatus(encodeId("ffffffff", 2n ** 64n - 1n), 5_000);
    assert.equal(r.code, status.INVALID_ARGUMENT, `fromOffset 2^64-1: ${status[r.code]}: ${r.details}`);
    assert.match(r.details, /^fromOffset: /);
  });

  test("bytes that are not a protobuf message are INVALID_ARGUMENT, not INTERNAL", async () => {
    for (const body of [Buffer.from([0x0a, 0x10, 0x41]), Buffer.from([0xff, 0xff, 0xff, 0x01, 0x02])]) {
      for (const rpc of ["RunJob", "GetJobStatus"]) {
        const r = await send(rpc, body);
        assert.equal(r.code, status.INVALID_ARGUMENT, `${rpc} bytes(${body.toString("hex")}): ${status[r.code]}: ${r.details}`);
      }
    }
  });

  test("a cpuCores value with non-ASCII text is INVALID_ARGUMENT and the daemon keeps serving", async () => {
    const r = await send("RunJob", encodeRun({ ...quick(), cpuCores: "é" }));
    assert.equal(r.code, status.INVALID_ARGUMENT, `${status[r.code]}: ${r.details}`);
    assert.match(r.details, /^cpuCores: /);
    await unary((cb) => c2.listJobs({}, cb));
  });
});

/** A valid request for a job that ends at once. */
function quick(): FuzzRunReq {
  return { command: "true", args: [], maxCPU: 0, cpuCores: "", maxMemory: 0, maxIOBPS: 0, timeoutMs: 0n, env: [], workdir: "", network: "" };
}
