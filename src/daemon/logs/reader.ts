// Reading a job's output from its conmon k8s-file log, from any output offset, optionally following the file
// as conmon appends. Each call reads the file independently and only when its consumer asks for the next
// chunk, so a slow consumer slows only itself; the offset index is the only thing readers share.
//
// Ranges dropped by retention (holes, see retention.ts) are skipped: output offsets after a hole are what
// they were before it was punched, so chunk offsets jump forward at a hole, and that jump (also reported
// through `onGap`) is how a client learns that output was dropped. A chunk never spans a hole.
import { JobletError, invalidArgument } from "../../shared/errors.js";
import { GrowthWaiter } from "./growth-waiter.js";
import type { LogGap } from "./holes.js";
import { STDOUT, type LogStream } from "./k8sfile.js";
import { LogCursor } from "./log-cursor.js";
import { BufferPool } from "./chunk-pool.js";

/** A piece of a job's output from one stream; `offset` is the output position of `data[0]`. */
export interface LogChunk {
  stream: LogStream;
  offset: number;
  data: Buffer;
  /**
   * True when the reader already holds the output of the next chunk: it comes before the reader waits for
   * the job to write more (it may still read the file first). False for the last chunk before a wait or the
   * end. A consumer may hold a chunk with `more` to send it together with the next ones (api/log-stream.ts).
   */
  more?: boolean;
}

/** How `readLog` reads. */
export interface ReadLogOptions {
  /** Keep waiting for output after the end of the file until `isDone` (default false: read what is there). */
  follow?: boolean;
  /**
   * Whether the job's output is complete (conmon exited). Following ends only after it returned true and a
   * read made after that found nothing new. Default: never done (follow until aborted).
   */
  isDone?: () => boolean | Promise<boolean>;
  /**
   * Subscribes `wake` to be called when `isDone` may have turned true (the job ended); returns the
   * unsubscribe. A follower waiting at the end of the file then ends at once: a job that ends without
   * writing does not touch the file, and only the next poll (`pollMs`) would notice.
   */
  subscribeDone?: (wake: () => void) => () => void;
  /** Ends the generator (without an error) and releases the file and watchers. */
  signal?: AbortSignal;
  /** Largest payload per chunk, in bytes (default DEFAULT_MAX_CHUNK_BYTES, 256 KiB). */
  maxChunkBytes?: number;
  /** Interval of the polling fallback while following, in ms (default 100). */
  pollMs?: number;
  /** Told how many malformed lines were skipped, each time some are. */
  onMalformedLines?: (count: number) => void;
  /**
   * Told of output retention dropped that this reader skips (only the part at or after `fromOffset`),
   * after the chunks before the gap were yielded and before any chunk after it.
   */
  onGap?: (gap: LogGap) => void;
}

export type { LogGap };

/**
 * Default payload cap per chunk, bytes: 256 KiB. Each chunk becomes one gRPC message, and per-message work
 * (two async generators, grpc-js's write path, a frame, the client's decode and write) is most of the
 * daemon's CPU when streaming a large log: against 64 KiB, 256 KiB chunks cut the daemon's CPU per GiB of
 * `rnx log` replay from 1.33-1.63 s to 1.05-1.27 s (bench/README.md, "Log throughput").
 */
export const DEFAULT_MAX_CHUNK_BYTES = 256 << 10;
/** Largest accepted `maxChunkBytes`: gRPC's default message limit is 4 MiB. */
export const MAX_CHUNK_BYTES_LIMIT = 4 << 20;
const DEFAULT_POLL_MS = 100;
// Enough for one streaming client: api/log-stream.ts lets 1 MiB (4 chunks) wait in grpc-js, plus the one
// being sent and the one being filled (1.5 MiB at most kept while idle).
const POOLED_CHUNKS = 6;
const chunkBuffers = new BufferPool(DEFAULT_MAX_CHUNK_BYTES, POOLED_CHUNKS);

/**
 * Hands `chunk`'s buffer back for reuse by later chunks, once its bytes were copied or sent (the caller must
 * not touch `chunk.data` afterwards). Optional: a chunk never released is garbage collected as usual.
 */
export function releaseChunk(chunk: LogChunk): void {
  chunkBuffers.give(chunk.data);
}

/**
 * Yields the output of the log at `filePath` from output offset `fromOffset` on, in file order, as chunks
 * of one stream of at most `maxChunkBytes` each, skipping the output retention dropped (a `fromOffset`
 * inside a dropped range starts at its end). Without `follow` it ends at the end of the complete
 * records (nothing when `fromOffset` is beyond them) and throws NOT_FOUND if the file does not exist; with
 * `follow` it waits for the file to appear and for the output to reach `fromOffset`. Options are checked
 * (INVALID_ARGUMENT) on the first `next()`. A consumer that stops early must call `return()` (a `break` in
 * `for await` does) to release the file.
 */
export async function* readLog(
  filePath: string,
  fromOffset: number,
  opts: ReadLogOptions = {},
): AsyncGenerator<LogChunk, void, undefined> {
  if (!Number.isSafeInteger(fromOffset) || fromOffset < 0) {
    throw invalidArgument("fromOffset", "a non-negative integer", fromOffset);
  }
  const maxChunkBytes = opts.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes < 1 || maxChunkBytes > MAX_CHUNK_BYTES_LIMIT) {
    throw invalidArgument("maxChunkBytes", `an integer from 1 to ${MAX_CHUNK_BYTES_LIMIT}`, maxChunkBytes);
  }
  const pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  if (!Number.isFinite(pollMs) || pollMs <= 0) throw invalidArgument("pollMs", "a positive number of ms", pollMs);
  const follow = opts.follow ?? false;
  const isDone = opts.isDone ?? (() => false);
  const signal = opts.signal;
  if (signal?.aborted) return;

  const waiter = follow ? new GrowthWaiter(filePath, pollMs, signal) : null;
  const unsubscribeDone = waiter === null ? undefined : opts.subscribeDone?.(() => waiter.poke());
  const builder = new ChunkBuilder(maxChunkBytes);
  const ready: LogChunk[] = [];
  let cursor: LogCursor | null = null;
  // True once isDone() returned true: the next read that finds nothing new is the end.
  let doneSeen = false;
  try {
    for (;;) {
      if (cursor === null) {
        cursor = await LogCursor.open(filePath, fromOffset);
        if (signal?.aborted) return;
        if (cursor === null && !follow) {
          throw new JobletError("NOT_FOUND", `log file ${filePath}: expected a conmon k8s-file log, got no such file`);
        }
        waiter?.watchFor(cursor !== null);
      }
      const batch = cursor === null ? null : await cursor.next();
      if (signal?.aborted) return;
      if (batch !== null && batch.malformedLines > 0) opts.onMalformedLines?.(batch.malformedLines);
      // Behind the writer: no change events until the reader catches up (growth-waiter.ts).
      if (batch?.filled) waiter?.pause();

      if (batch?.gap != null) {
        // Whatever is pending ends at the hole: output on both sides of it must not share a chunk.
        const before = builder.take();
        if (before !== null) {
          yield before;
          if (signal?.aborted) return;
        }
        const outputStart = Math.max(batch.gap.outputStart, fromOffset);
        if (batch.gap.outputEnd > outputStart) opts.onGap?.({ outputStart, outputEnd: batch.gap.outputEnd });
        continue;
      }

      if (batch !== null && batch.advanced) {
        const { buf, scan } = batch;
        let offset = batch.offset;
        // Consecutive records of one stream are moved together in place (their data over the headers
        // between them; the batch's buffer is ours until the next read) and handed to the builder as one
        // range: one copyWithin per record is much cheaper than one copy call into the chunk per record.
        let runStart = 0;
        let runEnd = 0;
        let runOffset = 0;
        let runStream = -1;
        for (let i = 0; i <= scan.count; i++) {
          let start = 0;
          let end = 0;
          let stream = -1;
          if (i < scan.count) {
            start = scan.dataStart[i]!;
            end = scan.dataEnd[i]!;
            stream = scan.stream[i]!;
            if (offset < fromOffset) {
              // Only the records between the index point and fromOffset: skip them, split the one holding it.
              const skip = Math.min(fromOffset - offset, end - start);
              start += skip;
              offset += skip;
            }
            if (start === end) continue;
            if (stream === runStream) {
              if (start !== runEnd) buf.copyWithin(runEnd, start, end);
              runEnd += end - start;
              offset += end - start;
              continue;
            }
          }
          if (runStream !== -1) {
            builder.add(runStream === STDOUT ? "stdout" : "stderr", runOffset, buf, runStart, runEnd, ready);
            if (ready.length > 0) {
              // Output the builder still holds is handed out before any wait (below): it follows for sure.
              for (let k = 0; k < ready.length; k++) {
                const chunk = ready[k]!;
                chunk.more = k < ready.length - 1 || builder.pending;
                yield chunk;
                if (signal?.aborted) return;
              }
              ready.length = 0;
            }
          }
          runStream = stream;
          runStart = start;
          runEnd = end;
          runOffset = offset;
          offset += end - start;
        }
        continue;
      }

      // At the end of the complete records: hand out what is pending before waiting or ending.
      const last = builder.take();
      if (last !== null) {
        yield last;
        if (signal?.aborted) return;
      }
      if (!follow || doneSeen) return;
      doneSeen = await isDone();
      if (signal?.aborted) return;
      if (doneSeen) continue; // one more read: output written before the job ended is in the file now
      cursor?.releaseBuffer();
      builder.releaseBuffer();
      await waiter!.wait();
      if (signal?.aborted) return;
    }
  } finally {
    unsubscribeDone?.();
    builder.releaseBuffer();
    waiter?.close();
    await cursor?.close();
  }
}

/**
 * The output bytes of the complete records of the log at `filePath` so far, output dropped by retention
 * included (it is the offset the next byte will have); 0 if the log does not exist.
 */
export async function totalOutputBytes(filePath: string): Promise<number> {
  // Opening near the largest offset starts at the index frontier: only the new part of the file is decoded.
  const cursor = await LogCursor.open(filePath, Number.MAX_SAFE_INTEGER);
  if (cursor === null) return 0;
  try {
    while ((await cursor.next()).advanced) {
      // Each read decodes one more block; the cursor keeps the running offset and extends the index.
    }
    return cursor.offset;
  } finally {
    await cursor.close();
  }
}

const SMALL_COPY_BYTES = 16;

// Merges consecutive records of one stream into chunks of at most maxChunkBytes, copying the bytes out of
// the cursor's reused read buffer.
class ChunkBuilder {
  private buf: Buffer | null = null;
  private len = 0;
  private stream: LogStream = "stdout";
  private offset = 0;

  constructor(private readonly maxChunkBytes: number) {}

  // Appends src[start, end) (output offset `offset`, contiguous with what is pending) and pushes completed
  // chunks to out.
  add(stream: LogStream, offset: number, src: Buffer, start: number, end: number, out: LogChunk[]): void {
    let pos = start;
    while (pos < end) {
      if (this.len > 0 && this.stream !== stream) out.push(this.take()!);
      if (this.len === 0) {
        this.stream = stream;
        this.offset = offset + (pos - start);
        this.buf ??= this.maxChunkBytes === chunkBuffers.bytes ? chunkBuffers.take() : Buffer.allocUnsafe(this.maxChunkBytes);
      }
      const n = Math.min(end - pos, this.maxChunkBytes - this.len);
      const buf = this.buf!;
      if (n <= SMALL_COPY_BYTES) {
        // Any copy call costs more than a short loop.
        for (let k = 0; k < n; k++) buf[this.len + k] = src[pos + k]!;
      } else src.copy(buf, this.len, pos, pos + n);
      this.len += n;
      pos += n;
      if (this.len === this.maxChunkBytes) out.push(this.take()!);
    }
  }

  /** True while output is held that no chunk has handed out yet. */
  get pending(): boolean {
    return this.len > 0;
  }

  // Hands the (empty) chunk buffer back to the pool while nothing is pending: an idle follower holds none.
  releaseBuffer(): void {
    if (this.len > 0 || this.buf === null) return;
    chunkBuffers.give(this.buf);
    this.buf = null;
  }

  // The pending chunk, or null if none.
  take(): LogChunk | null {
    if (this.len === 0) return null;
    const buf = this.buf!;
    let data: Buffer;
    if (this.len * 2 < buf.length) {
      // A small chunk (a follower's few new bytes): copy it out and keep the buffer for the next one.
      data = Buffer.from(buf.subarray(0, this.len));
    } else {
      data = buf.subarray(0, this.len);
      this.buf = null;
    }
    const chunk: LogChunk = { stream: this.stream, offset: this.offset, data, more: false };
    this.len = 0;
    return chunk;
  }
}
