// Finding record boundaries of a k8s-file log by file position, with the output offset at each: what
// retention needs to turn "about the first N bytes of the file" into a range of whole records whose output
// bytes it can count. Decodes exactly as LogCursor does (same line splitting, same treatment of malformed
// and over-long lines), so the offsets it computes are the offsets readers compute.
import type { FileHandle } from "node:fs/promises";
import { K8sScan, MAX_LINE_BYTES } from "./k8sfile.js";
import { READ_BLOCK_BYTES } from "./log-cursor.js";

/** A line boundary of a log: the line starting at file position `filePos` has its first output byte at `offset`. */
export interface Boundary {
  readonly filePos: number;
  readonly offset: number;
}

/** Where a scan stopped and how many valid records it passed. */
export interface SpanScan {
  end: Boundary;
  records: number;
}

const NL = 0x0a;
const EMPTY = Buffer.alloc(0);

/**
 * Decodes the log open as `fh` from line boundary `from` and stops at the first line boundary at or after
 * file position `target`, reading no byte at or past `limitPos` (a hole's start, or the file size). When
 * there is none before `limitPos` (the last line is unfinished), it stops at the last boundary it found.
 */
export async function scanToBoundary(fh: FileHandle, from: Boundary, target: number, limitPos: number): Promise<SpanScan> {
  if (target <= from.filePos) return { end: from, records: 0 };
  const scan = new K8sScan();
  const block = Buffer.allocUnsafe(READ_BLOCK_BYTES);
  // pos: file position of the first unconsumed byte (always a line boundary); carry: bytes read from pos on.
  let pos = from.filePos;
  let offset = from.offset;
  let records = 0;
  let carry = EMPTY;
  let skipping = false;
  let readPos = from.filePos;
  while (readPos < limitPos) {
    const { bytesRead } = await fh.read(block, 0, Math.min(block.length, limitPos - readPos), readPos);
    if (bytesRead === 0) break;
    let fresh = block.subarray(0, bytesRead);
    const freshPos = readPos;
    readPos += bytesRead;
    if (skipping) {
      // The rest of an over-long line: malformed, no output; the boundary is after its newline.
      const nl = fresh.indexOf(NL);
      if (nl < 0) continue;
      skipping = false;
      pos = freshPos + nl + 1;
      if (pos >= target) return { end: { filePos: pos, offset }, records };
      fresh = fresh.subarray(nl + 1);
    }
    const data = carry.length === 0 ? fresh : Buffer.concat([carry, fresh]);
    // The first boundary at or after target follows the first newline at or after target - 1.
    const nl = data.indexOf(NL, target - pos - 1);
    const found = nl >= 0;
    scan.scan(found ? data.subarray(0, nl + 1) : data);
    for (let i = 0; i < scan.count; i++) offset += scan.dataEnd[i]! - scan.dataStart[i]!;
    records += scan.count;
    pos += scan.consumedBytes;
    if (found) return { end: { filePos: pos, offset }, records };
    const rest = data.subarray(scan.consumedBytes);
    if (rest.length > MAX_LINE_BYTES) {
      skipping = true;
      carry = EMPTY;
    } else carry = Buffer.from(rest);
  }
  return { end: { filePos: pos, offset }, records };
}
