// Sequential decoding of one k8s-file log from a known record boundary, reading large blocks (not lines),
// keeping the unfinished last line for the next read and extending the file's shared offset index.
import { open, type FileHandle } from "node:fs/promises";
import { JobletError } from "../../shared/errors.js";
import { K8sScan, MAX_LINE_BYTES } from "./k8sfile.js";
import { indexFor, type OffsetIndex } from "./offset-index.js";

/** Bytes per read while catching up; 1 MiB amortises the syscall and the per-read bookkeeping. */
export const READ_BLOCK_BYTES = 1 << 20;
// A follower that caught up, or a reader of a small file, reads small blocks (the little a job writes between
// wake-ups) and grows them when a read fills the block, so thousands of idle followers do not each hold a
// 1 MiB buffer.
const FIRST_TAIL_BLOCK_BYTES = 64 << 10;

const EMPTY = Buffer.alloc(0);

/** What one read found; valid only until the next `next()` call (the buffer and scan are reused). */
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
}

/** A read position in one open log file: file position and output offset of the next unread line. */
export class LogCursor {
  private filePos: number;
  private outputOffset: number;
  // Bytes at filePos.. already read that do not yet end in a newline (an incomplete last record).
  private carry: Buffer = EMPTY;
  // Set while discarding an over-long line: file position up to which its bytes were read and dropped.
  private skipReadPos: number | null = null;
  private block: Buffer | null = null;
  private blockBytes = READ_BLOCK_BYTES;
  private readonly scan = new K8sScan();

  private constructor(
    private readonly fh: FileHandle,
    private readonly index: OffsetIndex,
    start: { filePos: number; offset: number },
    sizeBytes: number,
  ) {
    this.filePos = start.filePos;
    this.outputOffset = start.offset;
    if (sizeBytes - start.filePos < FIRST_TAIL_BLOCK_BYTES) this.blockBytes = FIRST_TAIL_BLOCK_BYTES;
  }

  /**
   * Opens `filePath` at the known record boundary closest before output offset `nearOffset` (the end of the
   * decoded records when it lies beyond them); null when the file does not exist.
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
      return new LogCursor(fh, index, index.locate(nearOffset), st.size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Output offset of the next line to decode (= output bytes decoded up to the cursor). */
  get offset(): number {
    return this.outputOffset;
  }

  /** Reads the next block and decodes its complete lines. Invalidates the previous batch's record views. */
  async next(): Promise<CursorBatch> {
    if (this.block === null || this.block.length !== this.blockBytes) this.block = Buffer.allocUnsafe(this.blockBytes);
    const block = this.block;
    const readPos = this.skipReadPos ?? this.filePos + this.carry.length;
    const { bytesRead } = await this.fh.read(block, 0, block.length, readPos);
    if (bytesRead === block.length && this.blockBytes < READ_BLOCK_BYTES) this.blockBytes *= 4;
    if (bytesRead === 0) return this.emptyBatch(false);
    let fresh = block.subarray(0, bytesRead);
    // Not at the end while a full block came back: the file may hold more than one block past readPos.
    let advanced = bytesRead === block.length;
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

    const data = this.carry.length === 0 ? fresh : Buffer.concat([this.carry, fresh]);
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
      // Copied: the block is reused by the next read.
      this.carry = rest.length === 0 ? EMPTY : Buffer.from(rest);
    }
    return { buf: data, scan, offset: batchOffset, malformedLines, advanced };
  }

  private emptyBatch(advanced: boolean): CursorBatch {
    this.scan.count = 0;
    return { buf: EMPTY, scan: this.scan, offset: this.outputOffset, malformedLines: 0, advanced };
  }

  /** Drops the read buffer while the caller waits for growth; the next read starts with a small one. */
  releaseBuffer(): void {
    this.block = null;
    this.blockBytes = FIRST_TAIL_BLOCK_BYTES;
  }

  /** Closes the file. */
  async close(): Promise<void> {
    await this.fh.close();
  }
}
