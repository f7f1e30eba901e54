// Copies a job's output to rnx's stdout and stderr, chunk by chunk, until the daemon ends the stream (the job
// has ended and everything was delivered). Bytes are written as received (binary-safe), each to the stream
// it came from, waiting for 'drain' once 1 MiB is queued, so a slow terminal or pipe slows the transfer instead
// of filling memory.
//
// If the connection drops mid-way (a daemon restart; jobs outlive the daemon under conmon), it reconnects and
// resumes from the byte offset after the last one written, so nothing is repeated or lost.
import { setTimeout as sleep } from "node:timers/promises";
import { isJobletError } from "../shared/errors.js";
import { Stream, type DataChunk } from "../shared/proto/joblet.js";
import type { DataChunkParts } from "../shared/wire-codec.js";
import { drained, writeParts, type Output } from "./io.js";

/** Where the two streams go, and where reconnect notes go. */
export interface FollowSinks {
  readonly stdout: Output;
  readonly stderr: Output;
  /** rnx's own messages (reconnecting…); usually process.stderr. */
  readonly notes: Output;
}

/** The one method follow needs; RnxClient has it (its payloads come as several views: DataChunkParts). */
export interface LogSource {
  logs(id: string, fromOffset?: number): AsyncIterable<DataChunk | DataChunkParts>;
}

/** Options for `followLogs`. */
export interface FollowOptions {
  /** Byte offset to start from. */
  readonly fromOffset?: number;
  /** Reconnect even if the first attempt fails (the caller already reached the daemon, e.g. run after RunJob). */
  readonly reachable?: boolean;
  /** Waits between reconnect attempts, milliseconds; the last one repeats until the budget is spent. */
  readonly retryDelaysMs?: readonly number[];
  /** How long to keep reconnecting after the connection was lost, milliseconds. */
  readonly retryBudgetMs?: number;
  /** Output queued in a sink, bytes, beyond which no more is pulled from the source until it drains. */
  readonly writeAheadBytes?: number;
}

// Short, capped waits: a daemon restart takes about a second, and several may come in a row (a crash loop).
const DEFAULT_RETRY_DELAYS_MS = [250, 500, 1000];
const DEFAULT_RETRY_BUDGET_MS = 60_000;
// 1 MiB: four of the daemon's 256 KiB chunks; waiting for 'drain' after each chunk (Node's 16 KiB mark) cost
// `rnx log | wc -c` ~10 % of its throughput (bench/README.md).
const DEFAULT_WRITE_AHEAD_BYTES = 1 << 20;

/** Follows job `id`'s output into `sinks`; resolves with the total bytes written when the stream ends. */
export async function followLogs(source: LogSource, id: string, sinks: FollowSinks, opts: FollowOptions = {}): Promise<number> {
  let next = opts.fromOffset ?? 0;
  let written = 0;
  // Offsets are trusted only while they match what was written: a server without offsets sends 0 for every
  // chunk, and then a resume would be impossible and de-duplication would drop output.
  let offsetsTrusted = true;
  let reached = opts.reachable ?? false;
  const delays = opts.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const budgetMs = opts.retryBudgetMs ?? DEFAULT_RETRY_BUDGET_MS;
  const aheadBytes = opts.writeAheadBytes ?? DEFAULT_WRITE_AHEAD_BYTES;
  let attempt = 0;
  let lostAt = 0;
  let lastSink: Output | undefined;
  const turn = new TurnCork();
  try {
    for (;;) {
      let first = true;
      try {
        for await (const chunk of source.logs(id, next)) {
          reached = true;
          attempt = 0;
          let payload: readonly Uint8Array[] = Array.isArray(chunk.payload) ? chunk.payload : [chunk.payload];
          let length = 0;
          for (const p of payload) length += p.length;
          if (offsetsTrusted && chunk.offset > next) {
            // A jump forward: the server dropped that much of the job's output (its per-job log cap).
            sinks.notes.write(`rnx: ${chunk.offset - next} bytes of job ${id}'s output were dropped here by the server's log size cap\n`);
            next = chunk.offset;
          } else if (offsetsTrusted && chunk.offset !== next) {
            // After a reconnect the server may start inside the last chunk written: skip what was written.
            const overlaps = first && chunk.offset < next && chunk.offset + length > next;
            if (overlaps) {
              payload = dropFront(payload, next - chunk.offset);
              length -= next - chunk.offset;
            } else offsetsTrusted = false;
          }
          first = false;
          if (length === 0) continue;
          const sink = chunk.stream === Stream.STDERR ? sinks.stderr : sinks.stdout;
          // Output queued for one stream goes out before the other's: both may be the same pipe (2>&1).
          if (lastSink !== sink && lastSink !== undefined) {
            turn.release();
            await drained(lastSink);
          }
          lastSink = sink;
          turn.hold(sink);
          await writeParts(sink, payload, aheadBytes);
          written += length;
          next += length;
        }
        return written;
      } catch (err) {
        if (attempt === 0) lostAt = Date.now();
        const retryable = reached && offsetsTrusted && isJobletError(err, "UNAVAILABLE") && Date.now() - lostAt < budgetMs;
        if (!retryable) throw err;
        turn.release();
        if (attempt === 0) sinks.notes.write(`rnx: lost the connection while following job ${id}; reconnecting…\n`);
        await sleep(delays[Math.min(attempt, delays.length - 1)]!);
        attempt++;
      }
    }
  } finally {
    // Nothing may stay held once following ends: rnx exits when its output has reached the system.
    turn.release();
  }
}

/**
 * Holds the writes to one sink until the end of the current turn of the event loop (cork, then uncork from
 * setImmediate), so that the chunks decoded from one network read leave in one writev instead of one
 * write(2) each: output that alternates between stdout and stderr line by line comes as a chunk per line.
 * Only sinks that can write several buffers at once (pipes, sockets, terminals) are held; a file (Node's
 * SyncWriteStream) writes each buffer by itself anyway.
 */
class TurnCork {
  private held: (Output & { uncork(): void }) | undefined;
  private timer: NodeJS.Immediate | undefined;

  /** Holds `sink`'s writes until the end of this turn (releasing another sink held before). */
  hold(sink: Output): void {
    if (this.held === sink) return;
    this.release();
    const w = sink as Output & { cork?(): void; uncork?(): void; _writev?: unknown };
    if (typeof w.cork !== "function" || typeof w.uncork !== "function" || typeof w._writev !== "function") return;
    w.cork();
    this.held = w as Output & { uncork(): void };
    this.timer = setImmediate(() => this.release());
  }

  /** Lets the held sink write what it holds now. */
  release(): void {
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = undefined;
    const held = this.held;
    this.held = undefined;
    held?.uncork();
  }
}

/** `parts` without their first `bytes` bytes (views, no copy). */
function dropFront(parts: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of parts) {
    if (bytes >= p.length) {
      bytes -= p.length;
      continue;
    }
    out.push(bytes > 0 ? p.subarray(bytes) : p);
    bytes = 0;
  }
  return out;
}
