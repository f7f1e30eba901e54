// ListJobs decoded for `rnx list`'s table: only the fields the table shows, sorts and filters by. The generated
// decoder builds every field of every Job (usage with 64-bit counters, uploads) through a reader object and a
// TextDecoder call per string: with 10,000 jobs ~36 ms of a short-lived rnx plus the garbage it leaves.
// `--json` prints whole jobs and still uses the generated decoder.
import type { Job } from "../shared/proto/joblet.js";
import { TAG_JOBS_JOBS } from "../shared/wire-codec.js";

/** The fields of a Job that the `rnx list` table uses. */
export type JobRow = Pick<Job, "id" | "status" | "command" | "args" | "startTime" | "endTime" | "createTime">;

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/**
 * Field numbers of proto/joblet.proto: the Job fields a row keeps. jobRow switches on them: a table from field
 * number to property name is shorter but measured ~2 ms slower over 10,000 jobs (median of 9 alternating
 * runs each), its stores being by computed key.
 */
const JOB_ID = 1;
const JOB_COMMAND = 2;
const JOB_ARGS = 3;
const JOB_STATUS = 8;
const JOB_START_TIME = 9;
const JOB_END_TIME = 10;
const JOB_CREATE_TIME = 104;

/** Where the reader is in the buffer being decoded (one decode at a time; nothing here awaits). */
let at = 0;

/** Reads a varint of at most 32 significant bits at `at` (tags and lengths); throws past `end`. */
function uint32(buf: Buffer, end: number): number {
  // Nearly all are one byte (field numbers under 16, lengths under 128).
  if (at < end && buf[at]! < 0x80) return buf[at++]!;
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at >= end) throw new Error("truncated varint");
    const b = buf[at++]!;
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return value;
  }
  throw new Error("varint too long for a tag or length");
}

/** Skips a field of wire type `type` at `at`. */
function skip(buf: Buffer, end: number, type: number): void {
  if (type === VARINT) {
    // Up to 10 bytes (64-bit values); only their end matters.
    for (;;) {
      if (at >= end) throw new Error("truncated varint");
      if (buf[at++]! < 0x80) break;
    }
  } else if (type === I64) at += 8;
  else if (type === LEN) {
    const length = uint32(buf, end); // read first: `at += uint32()` would add to the value `at` had before
    at += length;
  }
  else if (type === I32) at += 4;
  else throw new Error(`unsupported wire type ${type}`);
  if (at > end) throw new Error("truncated field");
}

/**
 * Buffer's own UTF-8 decoder, which buf.toString("utf8", …) reaches through two more calls (~5 ms of 10,000
 * jobs): not in Node's typings, but on every Buffer since Node 0.x (protobuf.js decodes strings with it too).
 */
const utf8Slice = (Buffer.prototype as Buffer & { utf8Slice?: (start: number, end: number) => string }).utf8Slice;

/** The length-delimited field at `at` as UTF-8 text (invalid bytes become U+FFFD, as the generated decoder does). */
function string(buf: Buffer, end: number): string {
  const length = uint32(buf, end);
  const stop = at + length;
  if (stop > end) throw new Error("truncated string");
  const text = length === 0 ? "" : utf8Slice ? utf8Slice.call(buf, at, stop) : buf.toString("utf8", at, stop);
  at = stop;
  return text;
}

/** One Job message occupying [at, end). */
function jobRow(buf: Buffer, end: number): JobRow {
  const row: JobRow = { id: "", status: "", command: "", args: [], startTime: "", endTime: "", createTime: "" };
  while (at < end) {
    const tag = uint32(buf, end);
    const field = Math.floor(tag / 8);
    const type = tag & 7;
    if (type !== LEN) {
      skip(buf, end, type);
      continue;
    }
    switch (field) {
      case JOB_ID:
        row.id = string(buf, end);
        break;
      case JOB_COMMAND:
        row.command = string(buf, end);
        break;
      case JOB_ARGS:
        row.args.push(string(buf, end));
        break;
      case JOB_STATUS:
        row.status = string(buf, end);
        break;
      case JOB_START_TIME:
        row.startTime = string(buf, end);
        break;
      case JOB_END_TIME:
        row.endTime = string(buf, end);
        break;
      case JOB_CREATE_TIME:
        row.createTime = string(buf, end);
        break;
      default:
        skip(buf, end, type);
    }
  }
  return row;
}

/** The rows of a ListJobs response (a `Jobs` message); throws on a malformed message. */
export function decodeJobRows(buf: Buffer): JobRow[] {
  const rows: JobRow[] = [];
  at = 0;
  const end = buf.length;
  while (at < end) {
    const tag = uint32(buf, end);
    if (tag === TAG_JOBS_JOBS) {
      const length = uint32(buf, end);
      const stop = at + length;
      if (stop > end) throw new Error("truncated job");
      rows.push(jobRow(buf, stop));
      at = stop;
    } else skip(buf, end, tag & 7);
  }
  return rows;
}
