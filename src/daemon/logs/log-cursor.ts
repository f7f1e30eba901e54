// Sequential decoding of one k8s-file log from a known record boundary, reading large blocks (not lines),
// keeping the unfinished last line for the next read and extending the file's shared offset index. Ranges
// that retention dropped (holes, see holes.ts) are never decoded: the cursor jumps over them, keeping the
// output offsets of everything after a hole what they were before it was punched.
import { open, type FileHandle } from "node:fs/promises";
import { JobletError } from "../../shared/errors.js";
import { holeFrom, HoleWatch, type LogGap, type LogHole } from "./holes.js";
import { K8sScan, MAX_LINE_BYTES } from "./k8sfile.js";
import { indexFor, type OffsetIndex } from "./offset-index.js";

/** Bytes per read while catching up; 1 MiB amortises the syscall and the per-read bookkeeping. */
export const READ_BLOCK_BYTES = 1 << 20;
// A follower that caught up, or a reader of a small file, reads small blocks (the little a job writes between
// wake-ups) and grows them when a read fills the block, so thousands of idle followers do not each hold a
// 1 MiB buffer.
const FIRST_TAIL_BLOCK_BYTES = 64 << 10;

const EMPTY = Buffer.alloc(0);
// A punched range reads as zeros in whole filesystem blocks; 4 KiB is the smallest block size we punch at.
const ZERO_BLOCK_BYTES = 4096;
const ZERO_BLOCK = Buffer.alloc(ZERO_BLOCK_BYTES);

/**
 * What one read found; valid only until the next `next()` call (the buffer and scan are reused). The caller
 * may overwrite `buf` below `scan.consumedBytes` (the bytes after it are the start of the next batch).
 */
export interface CursorBatch {
  /** The bytes scanned; record positions in `scan` index into it. */
  buf: Buffer;
  /** The valid records of `buf`. */
  scan: K8sScan;
  /** Output offset of the first record's first byte. */
  offset: number;
  /** Lines skipped as malformed (including over-long lines). */
  malformedLines: number;
  /** False when the read found no complete line: the cursor is at the end of the complete records. */
  advanced: boolean;
  /** Set (with no records) when the cursor jumped over a hole instead of reading: the output it skipped. */
  gap: LogGap | null;
  /** The read filled its whole buffer: the file most likely holds more right after it (a follower is behind). */
  filled: boolean;
}

/** A read position in one open log file: file position and output offset of the next unread line. */
export class LogCursor {
  private filePos: number;
  private outputOffset: number;
  // Bytes at filePos.. already read that do not yet end in a newline (an incomplete last record): a view into
  // `block` (moved to its front by the next read, which appends to it) or, after releaseBuffer, a small copy.
  private carry: Buffer = EMPTY;
  // Set while discarding an over-long line: file position up to which its bytes were read and dropped.
  private skipReadPos: number | null = null;
  private block: Buffer | null = null;
  private blockBytes = READ_BLOCK_BYTES;
  private readonly scan = new K8sScan();

  private constructor(
    private readonly fh: FileHandle,
    private readonly index: OffsetIndex,
    private readonly holes: HoleWatch,
    start: { filePos: number; offset: number },
    sizeBytes: number,
  ) {
    this.filePos = start.filePos;
    this.outputOffset = start.offset;
    if (sizeBytes - start.filePos < FIRST_TAIL_BLOCK_BYTES) this.blockBytes = FIRST_TAIL_BLOCK_BYTES;
  }

  /**
   * Opens `filePath` at the known record boundary closest before output offset `nearOffset` (the end of the
   * decoded records when it lies beyond them; a hole's end counts as known); null when the file does not exist.
   */
  static async open(filePath: string, nearOffset: number): Promise<LogCursor | null> {
    let fh: FileHandle;
    try {
      fh = await open(filePath, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw new JobletError("INTERNAL", `log file ${filePath}: expected a readable file, got ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      const st = await fh.stat();
      const index = indexFor(filePath, st.dev, st.ino, st.size);
      const holes = await HoleWatch.load(filePath);
      let start = index.locate(nearOffset);
      // A hole ending at or before nearOffset is a record boundary with a known offset: no need to decode
      // up to it. One holding nearOffset is not used, so that the jump over it is reported as a gap.
      for (const h of holes.holes) {
        if (h.outputEnd <= nearOffset && h.fileEnd > start.filePos) start = { filePos: h.fileEnd, offset: h.outputEnd };
      }
      return new LogCursor(fh, index, holes, start, st.size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Output offset of the next line to decode (= output bytes decoded up to the cursor). */
  get offset(): number {
    return this.outputOffset;
  }

  /**
   * Reads the next block and decodes its complete lines, or jumps over the hole the cursor is at (a batch
   * with `gap` and no records). Invalidates the previous batch's record views.
   */
  async next(): Promise<CursorBatch> {
    const at = holeFrom(this.holes.holes, this.filePos);
    if (at !== undefined && at.fileStart <= this.filePos) return this.jump(at, 0);
    const block = this.blockWithCarry();
    const carryBytes = this.carry.length;
    const readPos = this.skipReadPos ?? this.filePos + carryBytes;
    let want = block.length - carryBytes;
    const ahead = holeFrom(this.holes.holes, readPos);
    if (ahead !== undefined) {
      // Holes start at record boundaries, so an unfinished line never runs into one; if it does (a sidecar
      // out of step with the log), the line cannot be completed and is dropped as malformed.
      if (ahead.fileStart <= readPos) return this.jump(ahead, 1);
      want = Math.min(want, ahead.fileStart - readPos);
    }
    const { bytesRead } = await this.fh.read(block, carryBytes, want, readPos);
    let fresh = block.subarray(carryBytes, carryBytes + bytesRead);
    // Retention replaces the sidecar before it punches, so the sidecar as seen after this read lists every
    // punch that could have touched the bytes read. Blocks of zeros (what a punched range reads as) force a
    // re-read of it whatever its stat says. If the holes changed, the bytes are read again with the new list.
    if (await this.holes.refresh(hasZeroBlock(fresh, readPos))) return this.next();
    if (bytesRead === want && this.blockBytes < READ_BLOCK_BYTES) this.blockBytes *= 4;
    if (bytesRead === 0) return this.emptyBatch(false);
    // Not at the end while a full read came back: the file may hold more past it (or a hole to jump over).
    const filled = bytesRead === want;
    let advanced = filled;
    let malformedLines = 0;

    if (this.skipReadPos !== null) {
      const nl = fresh.indexOf(0x0a);
      if (nl < 0) {
        this.skipReadPos += bytesRead;
        return this.emptyBatch(true);
      }
      // The over-long line ends here: it contributed no output, so the offset is unchanged.
      this.filePos = this.skipReadPos + nl + 1;
      this.skipReadPos = null;
      fresh = fresh.subarray(nl + 1);
      this.index.advance(this.filePos, this.outputOffset);
      advanced = true;
    }

    // The carry sits right before the fresh bytes (blockWithCarry); while skipping, there is none.
    const data = carryBytes === 0 ? fresh : block.subarray(0, carryBytes + bytesRead);
    const scan = this.scan.scan(data);
    malformedLines += scan.malformedLines;
    const batchOffset = this.outputOffset;
    let offset = batchOffset;
    const index = this.index;
    for (let i = 0; i < scan.count; i++) {
      const fileStart = this.filePos + scan.lineStart[i]!;
      if (fileStart >= index.nextPointFilePos) index.addPoint(fileStart, offset);
      offset += scan.dataEnd[i]! - scan.dataStart[i]!;
    }
    if (scan.consumedBytes > 0) advanced = true;
    this.filePos += scan.consumedBytes;
    this.outputOffset = offset;
    index.advance(this.filePos, this.outputOffset);

    const rest = data.subarray(scan.consumedBytes);
    if (rest.length > MAX_LINE_BYTES) {
      // Malformed whatever follows (the decoder rejects such lines too): drop it instead of buffering it.
      malformedLines++;
      this.skipReadPos = this.filePos + rest.length;
      this.carry = EMPTY;
      advanced = true;
    } else {
      this.carry = rest.length === 0 ? EMPTY : rest;
    }
    return { buf: data, scan, offset: batchOffset, malformedLines, advanced, gap: null, filled };
  }

  // Moves past hole h (which holds the cursor's position): its records are never decoded, the output offset
  // becomes the hole's end, and what was skipped is reported.
  private jump(h: LogHole, malformedLines: number): CursorBatch {
    const gap: LogGap = { outputStart: Math.min(this.outputOffset, h.outputEnd), outputEnd: h.outputEnd };
    this.filePos = h.fileEnd;
    this.outputOffset = h.outputEnd;
    this.carry = EMPTY;
    this.skipReadPos = null;
    this.index.addPoint(this.filePos, this.outputOffset);
    this.index.advance(this.filePos, this.outputOffset);
    this.scan.count = 0;
    return { buf: EMPTY, scan: this.scan, offset: this.outputOffset, malformedLines, advanced: true, gap, filled: false };
  }

  private emptyBatch(advanced: boolean): CursorBatch {
    this.scan.count = 0;
    return { buf: EMPTY, scan: this.scan, offset: this.outputOffset, malformedLines: 0, advanced, gap: null, filled: advanced };
  }

  /** Drops the read buffer while the caller waits for growth; the next read starts with a small one. */
  releaseBuffer(): void {
    // The unfinished last line is kept (copied: it is usually a few bytes of a 64 KiB–1 MiB block).
    if (this.carry.length > 0) this.carry = Buffer.from(this.carry);
    this.block = null;
    this.blockBytes = FIRST_TAIL_BLOCK_BYTES;
  }

  // The read buffer with the carry moved to its front, so that the next read appends to it instead of the
  // two being concatenated (a copy of every block). The buffer is reused while its size fits: blockBytes,
  // doubled until it holds twice the carry (a line longer than a block is completed over several reads).
  private blockWithCarry(): Buffer {
    const carry = this.carry;
    let size = this.blockBytes;
    while (size < 2 * carry.length) size *= 2;
    let block = this.block;
    if (block === null || block.length !== size) {
      block = Buffer.allocUnsafe(size);
      carry.copy(block, 0);
      this.block = block;
    } else if (carry.length > 0 && carry.buffer !== block.buffer) {
      carry.copy(block, 0);
    } else if (carry.length > 0 && carry.byteOffset !== block.byteOffset) {
      // A view of this block (the tail of the last batch): memmove to the front.
      const from = carry.byteOffset - block.byteOffset;
      block.copyWithin(0, from, from + carry.length);
    }
    this.carry = carry.length === 0 ? EMPTY : block.subarray(0, carry.length);
    return block;
  }

  /** Closes the file. */
  async close(): Promise<void> {
    await this.fh.close();
  }
}

// True if buf, read from file position filePos, holds a whole file block (4 KiB aligned) of zeros.
function hasZeroBlock(buf: Buffer, filePos: number): boolean {
  const end = filePos + buf.length;
  for (let p = Math.ceil(filePos / ZERO_BLOCK_BYTES) * ZERO_BLOCK_BYTES; p + ZERO_BLOCK_BYTES <= end; p += ZERO_BLOCK_BYTES) {
    const i = p - filePos;
    // Log text is never NUL at a random position unless the job writes NULs: the first byte rules out most blocks.
    if (buf[i] === 0 && buf.compare(ZERO_BLOCK, 0, ZERO_BLOCK_BYTES, i, i + ZERO_BLOCK_BYTES) === 0) return true;
  }
  return false;
}
