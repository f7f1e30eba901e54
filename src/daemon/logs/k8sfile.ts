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
/** Length of conmon's timestamps: `2026-11-27T20:46:40.942287139+00:00`. */
const CONMON_TIME_BYTES = 35;

/**
 * A line longer than this (without its newline) is malformed by definition: conmon splits data at its
 * 8 KiB read buffer, so real records are a few KiB. Readers rely on the bound to drop a corrupted stretch
 * without newlines instead of buffering it; the decoder applies it too, so that every reader decodes the
 * same lines whatever the block boundaries it read them with.
 */
export const MAX_LINE_BYTES = 8 << 20;

/**
 * Decodes the complete lines of `buf`, whose first byte is at file position `fileStart` and output offset
 * `outputStart` (it must start at a line start); an incomplete last line is left unconsumed. Malformed
 * lines are skipped and counted, never thrown on: a corrupted line must not make a log unreadable.
 */
export function decodeK8sRecords(buf: Buffer, fileStart = 0, outputStart = 0): K8sBatch {
  const scan = new K8sScan().scan(buf);
  const records: K8sRecord[] = [];
  let offset = outputStart;
  for (let i = 0; i < scan.count; i++) {
    const dataStart = scan.dataStart[i]!;
    const dataEnd = scan.dataEnd[i]!;
    const partial = scan.partial[i] === 1;
    records.push({
      stream: scan.stream[i] === STDOUT ? "stdout" : "stderr",
      data: buf.subarray(dataStart, dataEnd),
      partial,
      fileStart: fileStart + scan.lineStart[i]!,
      fileEnd: fileStart + (partial ? dataEnd + 1 : dataEnd),
      offset,
    });
    offset += dataEnd - dataStart;
  }
  return { records, consumedBytes: scan.consumedBytes, endOffset: offset, malformedLines: scan.malformedLines };
}

/** Stream code of stdout in a K8sScan. */
export const STDOUT = 0;
/** Stream code of stderr in a K8sScan. */
export const STDERR = 1;

/**
 * The valid records of one buffer in struct-of-arrays form, positions relative to the buffer: the
 * allocation-free twin of decodeK8sRecords for readers that go through millions of records (an object and
 * a Buffer view per record cost more than parsing it). Reusable; the arrays grow as needed.
 */
export class K8sScan {
  /** Valid records found. */
  count = 0;
  /** Bytes that were complete lines (valid or not). */
  consumedBytes = 0;
  /** Complete lines that were not valid records. */
  malformedLines = 0;
  /** STDOUT or STDERR per record. */
  stream = new Uint8Array(256);
  /** 1 for a `P` record. */
  partial = new Uint8Array(256);
  /** Index of the record's first byte (its timestamp). */
  lineStart = new Int32Array(256);
  /** Index of the record's first data byte. */
  dataStart = new Int32Array(256);
  /** Index just past the decoded bytes: past the `\n` for an `F` record, at it for a `P` record. */
  dataEnd = new Int32Array(256);

  /** Scans the complete lines of `buf` (which must start at a line start), replacing previous results. */
  scan(buf: Buffer): this {
    let count = 0;
    let lineStart = 0;
    let malformed = 0;
    for (;;) {
      const nl = buf.indexOf(NL, lineStart);
      if (nl < 0) break;
      const header = nl - lineStart > MAX_LINE_BYTES ? -1 : parseHeader(buf, lineStart, nl);
      if (header < 0) malformed++;
      else {
        if (count === this.stream.length) this.grow();
        // header = dataStart * 4 + stream * 2 + partial (see parseHeader)
        const partial = header % 2;
        const dataStart = Math.floor(header / 4);
        this.stream[count] = Math.floor(header / 2) % 2;
        this.partial[count] = partial;
        this.lineStart[count] = lineStart;
        this.dataStart[count] = dataStart;
        // For F the file's own `\n` is the newline the record stands for: decoded bytes are a plain range.
        this.dataEnd[count] = partial === 1 ? nl : nl + 1;
        count++;
      }
      lineStart = nl + 1;
    }
    this.count = count;
    this.consumedBytes = lineStart;
    this.malformedLines = malformed;
    return this;
  }

  private grow(): void {
    const n = this.stream.length * 2;
    const grown = <T extends Uint8Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.stream = grown(this.stream, (k) => new Uint8Array(k));
    this.partial = grown(this.partial, (k) => new Uint8Array(k));
    this.lineStart = grown(this.lineStart, (k) => new Int32Array(k));
    this.dataStart = grown(this.dataStart, (k) => new Int32Array(k));
    this.dataEnd = grown(this.dataEnd, (k) => new Int32Array(k));
  }
}

// Parses the header of buf[start, nl) (nl is the line's `\n`). Returns -1 for a malformed line, else
// dataStart * 4 + stream * 2 + partial packed in one number, so the hot loop allocates nothing.
function parseHeader(buf: Buffer, start: number, nl: number): number {
  let sp = start + CONMON_TIME_BYTES;
  // conmon's own timestamps are all 35 bytes (`2026-11-27T20:46:40.942287139+00:00`, `-05:00` west of UTC): a
  // line whose byte 35 is a space and whose first 35 have that punctuation is taken to start with one, without
  // scanning them for the first space (that scan was a third of the decoder's time for 100-byte lines).
  // Anything else is scanned.
  const sign = buf[start + 29];
  if (
    sp >= nl ||
    buf[sp] !== SPACE ||
    buf[start + 13] !== 0x3a || // :
    buf[start + 16] !== 0x3a ||
    buf[start + 19] !== 0x2e || // .
    (sign !== 0x2b && sign !== 0x2d) || // + or -
    buf[start + 32] !== 0x3a
  ) {
    const timeLimit = Math.min(nl, start + MAX_TIME_BYTES + 1);
    sp = start;
    while (sp < timeLimit && buf[sp] !== SPACE) sp++;
  }
  const timeBytes = sp - start;
  if (timeBytes < MIN_TIME_BYTES || timeBytes > MAX_TIME_BYTES) return -1;
  // `YYYY-MM-DDT`: a cheap shape check that rejects garbage without parsing dates.
  if (buf[start + 4] !== 0x2d || buf[start + 7] !== 0x2d || buf[start + 10] !== 0x54) return -1;
  // sp: space; sp+1..sp+6: stream; sp+7: space; sp+8: flag; sp+9: space before data, or the `\n`.
  if (sp + 9 > nl) return -1;
  if (buf[sp + 1] !== 0x73 || buf[sp + 2] !== 0x74 || buf[sp + 3] !== 0x64) return -1; // "std"
  let stream: number;
  if (buf[sp + 4] === 0x6f && buf[sp + 5] === 0x75 && buf[sp + 6] === 0x74) stream = STDOUT;
  else if (buf[sp + 4] === 0x65 && buf[sp + 5] === 0x72 && buf[sp + 6] === 0x72) stream = STDERR;
  else return -1;
  if (buf[sp + 7] !== SPACE) return -1;
  const flag = buf[sp + 8];
  if (flag !== 0x46 && flag !== 0x50) return -1; // F, P
  let dataStart: number;
  if (sp + 9 === nl) dataStart = nl; // `stdout F\n`: empty data written without the separating space
  else if (buf[sp + 9] === SPACE) dataStart = sp + 10;
  else return -1;
  return dataStart * 4 + stream * 2 + (flag === 0x50 ? 1 : 0);
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
