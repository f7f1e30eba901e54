// ListJobs responses: each job's wire form is kept, by the job's record, for as long as that record lives.
// The store hands out the same frozen record for a finished job on every list() (store/sqlite.ts), so a list
// of 10,000 finished jobs is encoded once, not on every call; a running job's record is new on each call
// and is encoded again (its entry goes with it). Byte-identical to Jobs.encode (the test compares them).
import { Job, type Jobs } from "../../shared/proto/joblet.js";
import type { JobRecord } from "../store/record.js";
import { toJob } from "./mappers.js";

/** A Jobs message whose jobs are still records; serializeJobs writes their wire form. */
export interface JobRecords {
  readonly records: readonly JobRecord[];
}

/** The field tag of Jobs.jobs: field 1, length-delimited (1 << 3 | 2). */
const JOBS_FIELD_TAG = 0x0a;

/** Each record's encoded Job. Weak: a record no longer listed (deleted, changed, running) takes its bytes along. */
const encoded = new WeakMap<JobRecord, Uint8Array>();

/** `record` as the wire's Job, encoded (cached by the record's identity: records are never changed in place). */
function jobBytes(record: JobRecord): Uint8Array {
  let bytes = encoded.get(record);
  if (!bytes) {
    bytes = Job.encode(toJob(record)).finish();
    encoded.set(record, bytes);
  }
  return bytes;
}

/** Bytes of `n` as a protobuf varint. */
function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** Writes `n` as a varint at `pos` of `buf`; returns the position after it. */
function putVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** The Jobs message (wire form) listing `msg.records` in order. */
export function serializeJobs(msg: JobRecords | Jobs): Buffer {
  const parts = "records" in msg ? msg.records.map(jobBytes) : msg.jobs.map((j) => Job.encode(j).finish());
  let total = 0;
  for (const p of parts) total += 1 + varintLength(p.length) + p.length;
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const p of parts) {
    buf[pos++] = JOBS_FIELD_TAG;
    pos = putVarint(buf, pos, p.length);
    buf.set(p, pos);
    pos += p.length;
  }
  return buf;
}
