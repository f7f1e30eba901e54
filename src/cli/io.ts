// The process's standard streams and environment as commands see them, so tests can substitute their own,
// and the one write helper that respects backpressure.
import { once } from "node:events";
import { fstatSync } from "node:fs";

/** A writable output with the terminal facts Node attaches to process.stdout/stderr. */
export type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** What a command may touch besides the network. */
export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: NodeJS.ProcessEnv;
}

/** The real process streams. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** Writes `data` and, when the stream's buffer is full, waits for 'drain' so a slow reader slows the source. */
export async function writeAll(out: NodeJS.WritableStream, data: Uint8Array | string): Promise<void> {
  if (!out.write(data)) await once(out, "drain");
}

/**
 * Writes `parts` in order as one write (corked: a socket or pipe gets one writev) and waits for 'drain' only
 * once more than `aheadBytes` are queued in the stream. Ahead of a pipe (64 KiB on Linux) the queue lets the
 * writes that pile up while the reader is behind go out together in one writev, and rnx keeps reading the
 * network meanwhile, instead of stopping after every chunk until the pipe has room.
 */
export async function writeParts(out: NodeJS.WritableStream, parts: readonly Uint8Array[], aheadBytes: number): Promise<void> {
  const w = out as NodeJS.WritableStream & { cork?(): void; uncork?(): void; writableLength?: number; _writev?: unknown };
  let ok = true;
  if (parts.length === 1) ok = out.write(parts[0]!);
  else if (typeof w._writev !== "function") {
    // A stream that writes each buffer on its own even when corked: stdout redirected to a file is Node's
    // SyncWriteStream, one write(2) per buffer, and a 256 KiB message arrives as ~30 views. One copy into one
    // buffer costs less than the system calls it saves (`rnx log ID > file`: 760 ms of writeSync per GiB).
    ok = out.write(Buffer.concat(parts));
  } else {
    w.cork?.();
    // Nothing is flushed while corked, so the last write's answer covers them all.
    for (const p of parts) ok = out.write(p);
    w.uncork?.();
  }
  // A write that returned false set the stream's need for 'drain': it comes once the queue is empty.
  if (!ok && (w.writableLength ?? Infinity) > aheadBytes) await once(out, "drain");
}

/**
 * Where a job's stdout and stderr go: rnx's own, except that both go to rnx's stdout stream when rnx's
 * stdout and stderr are the same file, pipe or terminal (`2>&1`, an interactive shell). Through one stream
 * the job's order holds by itself: nothing waits for one stream to drain before the other is written, and
 * the writes of one turn of the event loop go out together (follow.ts).
 */
export function jobSinks(io: CliIo): { stdout: Output; stderr: Output } {
  const merge = io.stdout === process.stdout && io.stderr === process.stderr && sameOpenFile(1, 2);
  return { stdout: io.stdout, stderr: merge ? io.stdout : io.stderr };
}

/**
 * True when file descriptors `a` and `b` refer to the same file (device and inode; a terminal's device
 * number too). Not on Windows, where consoles and pipes report no inode.
 */
export function sameOpenFile(a: number, b: number): boolean {
  if (process.platform === "win32") return false;
  try {
    const x = fstatSync(a);
    const y = fstatSync(b);
    return x.ino !== 0 && x.dev === y.dev && x.ino === y.ino && x.rdev === y.rdev;
  } catch {
    return false;
  }
}

/**
 * Resolves once everything written to `out` has been handed to the system (at once when nothing is queued):
 * before writing to the other stream, so that two streams into one destination keep the job's order. Waiting
 * for 'drain' would not do: it comes only after a write went over the stream's mark, and a smaller write
 * still in flight was overtaken by the other stream's next one (`2>&1` into a pipe mixed lines up).
 */
export async function drained(out: NodeJS.WritableStream): Promise<void> {
  if (((out as { writableLength?: number }).writableLength ?? 0) === 0) return;
  // Writes complete in order: the callback of an empty one comes after all before it.
  await new Promise<void>((resolve) => out.write(NOTHING, () => resolve()));
}

const NOTHING = Buffer.alloc(0);

/** True when `out` should get colours: a terminal, and NO_COLOR unset or empty (no-color.org). */
export function useColor(out: Output, env: NodeJS.ProcessEnv): boolean {
  return out.isTTY === true && !env.NO_COLOR && env.TERM !== "dumb";
}

/** The width to cut tables to: the terminal's, else $COLUMNS, else undefined (no cutting). */
export function outputWidth(out: Output, env: NodeJS.ProcessEnv): number | undefined {
  if (out.isTTY && out.columns) return out.columns;
  const cols = Number(env.COLUMNS);
  return Number.isInteger(cols) && cols > 0 ? cols : undefined;
}
