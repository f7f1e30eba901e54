// Decoder (and, for tests and tools, encoder) of conmon's `k8s-file` log format. conmon writes each piece of
// a job's stdout or stderr as one line: `<RFC3339Nano time> <stdout|stderr> <F|P> <data>\n`. `F` means the
// job's data had a newline at that point, `P` a partial line (conmon splits at its read buffer, 8 KiB, and
// whenever a read ends without a newline). Data never contains `\n` and may be empty; any other byte
// (`\r`, `\0`, spaces, invalid UTF-8) is stored as is, so decoding is byte-exact.
//
// The decoded "output" of a job is the concatenation of the decoded bytes of all records in file order,
// both streams together; a byte's offset is its position in that concatenation.

/** Which of a job's streams a record came from. */
export type LogStream = "stdout" | "stderr";

/** One decoded record: the job's bytes it carries and where it sits in the file and in the output. */
export interface K8sRecord {
  stream: LogStream;
  /** The decoded bytes: the record's data, plus `\n` for an `F` record (a view into the input buffer). */
  data: Buffer;
  /** True for a `P` record (no newline appended). */
  partial: boolean;
  /** File position of the record's first byte (the timestamp). */
  fileStart: number;
  /** File position just past the record's `\n`. */
  fileEnd: number;
  /** Output offset of `data[0]` (of where it would be, for an empty partial record). */
  offset: number;
}

/** What one call of `decodeK8sRecords` found. */
export interface K8sBatch {
  /** The valid records, in file order. */
  records: K8sRecord[];
  /** Bytes of the input that were complete lines (valid or not); the rest is an incomplete last line. */
  consumedBytes: number;
  /** Output offset just past the last decoded record (= the offset the next line starts at). */
  endOffset: number;
  /** Complete lines that were not valid records: skipped, contributing no output. */
  malformedLines: number;
}

const NL = 0x0a;
const SPACE = 0x20;
// conmon's timestamps are 35 bytes (`2026-11-27T20:46:40.942287139+00:00`); other writers use `Z` or fewer
// fraction digits. A token outside these bounds is not a timestamp.
const MIN_TIME_BYTES = 20;
const MAX_TIME_BYTES = 40;

/**
 * Decodes the complete lines of `buf`, whose first byte is at file position `fileStart` and output offset
 * `outputStart` (it must start at a line start); an incomplete last line is left unconsumed. Malformed
 * lines are skipped and counted, never thrown on: a corrupted line must not make a log unreadable.
 */
export function decodeK8sRecords(buf: Buffer, fileStart = 0, outputStart = 0): K8sBatch {
  const records: K8sRecord[] = [];
  let lineStart = 0;
  let offset = outputStart;
  let malformedLines = 0;
  for (;;) {
    const nl = buf.indexOf(NL, lineStart);
    if (nl < 0) break;
    const rec = parseLine(buf, lineStart, nl, fileStart, offset);
    if (rec === null) malformedLines++;
    else {
      records.push(rec);
      offset += rec.data.length;
    }
    lineStart = nl + 1;
  }
  return { records, consumedBytes: lineStart, endOffset: offset, malformedLines };
}

// Parses buf[start, nl) (nl is the line's `\n`); null when the line is not a valid record.
function parseLine(buf: Buffer, start: number, nl: number, fileStart: number, offset: number): K8sRecord | null {
  const timeLimit = Math.min(nl, start + MAX_TIME_BYTES + 1);
  let sp = start;
  while (sp < timeLimit && buf[sp] !== SPACE) sp++;
  const timeBytes = sp - start;
  if (timeBytes < MIN_TIME_BYTES || timeBytes > MAX_TIME_BYTES) return null;
  // `YYYY-MM-DDT`: a cheap shape check that rejects garbage without parsing dates.
  if (buf[start + 4] !== 0x2d || buf[start + 7] !== 0x2d || buf[start + 10] !== 0x54) return null;
  // sp: space; sp+1..sp+6: stream; sp+7: space; sp+8: flag; sp+9: space before data, or the `\n`.
  if (sp + 9 > nl) return null;
  if (buf[sp + 1] !== 0x73 || buf[sp + 2] !== 0x74 || buf[sp + 3] !== 0x64) return null; // "std"
  let stream: LogStream;
  if (buf[sp + 4] === 0x6f && buf[sp + 5] === 0x75 && buf[sp + 6] === 0x74) stream = "stdout";
  else if (buf[sp + 4] === 0x65 && buf[sp + 5] === 0x72 && buf[sp + 6] === 0x72) stream = "stderr";
  else return null;
  if (buf[sp + 7] !== SPACE) return null;
  const flag = buf[sp + 8];
  if (flag !== 0x46 && flag !== 0x50) return null; // F, P
  const partial = flag === 0x50;
  let dataStart: number;
  if (sp + 9 === nl) dataStart = nl; // `stdout F\n`: empty data written without the separating space
  else if (buf[sp + 9] === SPACE) dataStart = sp + 10;
  else return null;
  // For F the file's own `\n` is the newline the record stands for: the view includes it, no copy needed.
  const data = buf.subarray(dataStart, partial ? nl : nl + 1);
  return { stream, data, partial, fileStart: fileStart + start, fileEnd: fileStart + nl + 1, offset };
}

/** Formats a time as conmon does: RFC3339 with nanoseconds and a numeric UTC offset. */
export function formatK8sTime(time: Date): string {
  return `${time.toISOString().slice(0, 23)}000000+00:00`;
}

/** Encodes one record line (`data` must not contain `\n`); used by tests and tools, conmon writes real logs. */
export function encodeK8sRecord(stream: LogStream, data: Buffer, partial: boolean, time = new Date()): Buffer {
  if (data.includes(NL)) throw new Error("encodeK8sRecord: data must not contain a newline");
  return Buffer.concat([Buffer.from(`${formatK8sTime(time)} ${stream} ${partial ? "P" : "F"} `), data, Buffer.from("\n")]);
}

/**
 * Encodes bytes a job wrote to one stream as conmon would: one `F` record per `\n`-terminated line, a `P`
 * record for a trailing remainder, and `P` records for pieces longer than `maxDataBytes`.
 */
export function encodeK8sOutput(stream: LogStream, bytes: Buffer, maxDataBytes = 8192, time = new Date()): Buffer {
  const lines: Buffer[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const nl = bytes.indexOf(NL, pos);
    const lineEnd = nl < 0 ? bytes.length : nl;
    while (lineEnd - pos > maxDataBytes) {
      lines.push(encodeK8sRecord(stream, bytes.subarray(pos, pos + maxDataBytes), true, time));
      pos += maxDataBytes;
    }
    lines.push(encodeK8sRecord(stream, bytes.subarray(pos, lineEnd), nl < 0, time));
    pos = nl < 0 ? bytes.length : nl + 1;
  }
  return Buffer.concat(lines);
}
