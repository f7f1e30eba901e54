// ListJobs responses: each job's wire form is kept, by the job's record, for as long as that record lives.
// The store hands out the same frozen record for a finished job on every list() (store/sqlite.ts), so a list
// of 10,000 finished jobs is encoded once, not on every call; a running job's record is new on each call
// and is encoded again (its entry goes with it). Byte-identical to Jobs.encode (the test compares them).
import { Job, type Jobs } from "../../shared/proto/joblet.js";
import { TAG_JOBS_JOBS, putVarint, varintLength } from "../../shared/wire-codec.js";
import type { JobRecord } from "../store/record.js";
import { toJob } from "./mappers.js";

/** A Jobs message whose jobs are still records; serializeJobs writes their wire form. */
export interface JobRecords {
  readonly records: readonly JobRecord[];
}

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

/** The Jobs message (wire form) listing `msg.records` in order. */
export function serializeJobs(msg: JobRecords | Jobs): Buffer {
  const parts = "records" in msg ? msg.records.map(jobBytes) : msg.jobs.map((j) => Job.encode(j).finish());
  let total = 0;
  for (const p of parts) total += 1 + varintLength(p.length) + p.length;
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const p of parts) {
    buf[pos++] = TAG_JOBS_JOBS;
    pos = putVarint(buf, pos, p.length);
    buf.set(p, pos);
    pos += p.length;
  }
  return buf;
}
