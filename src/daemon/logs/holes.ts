// The holes sidecar of a log: `<log>.holes`, JSON `{"version":1,"holes":[...]}`, listing the ranges of the
// log whose records retention dropped (see retention.ts). The retention writer replaces it atomically (temp
// file, fsync, rename, fsync of the directory) BEFORE it punches a range, so whoever reads the sidecar after
// reading log bytes knows whether those bytes may have been punched. Holes are only ever added or extended,
// never removed, while the log exists: an unreadable or missing sidecar never shrinks what a reader knows.
import { readFileSync, statSync } from "node:fs";
import { open, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import { JobletError } from "../../shared/errors.js";

/**
 * One dropped range: the complete records in file bytes [fileStart, fileEnd) (both record boundaries) held
 * output bytes [outputStart, outputEnd). The range actually punched is block-aligned and lies inside it.
 */
export interface LogHole {
  readonly fileStart: number;
  readonly fileEnd: number;
  readonly outputStart: number;
  readonly outputEnd: number;
  /** Valid records the range held (malformed lines are not counted). */
  readonly records: number;
}

/** Suffix appended to a log's path to name its sidecar. */
export const HOLES_SUFFIX = ".holes";

/** The sidecar path of the log at `logPath`. */
export function holesPathFor(logPath: string): string {
  return logPath + HOLES_SUFFIX;
}

/**
 * Parses and checks sidecar text: holes sorted by file position, not overlapping, each with non-negative
 * integer fields, fileStart < fileEnd, outputStart <= outputEnd, and output ranges in the same order.
 */
export function parseHoles(text: string, sidecarPath: string): LogHole[] {
  const bad = (what: string): JobletError =>
    new JobletError("INTERNAL", `log holes file ${sidecarPath}: expected {"version":1,"holes":[...]}, got ${what}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad("text that is not JSON");
  }
  if (typeof doc !== "object" || doc === null || (doc as { version?: unknown }).version !== 1) throw bad("another version");
  const list = (doc as { holes?: unknown }).holes;
  if (!Array.isArray(list)) throw bad("no holes array");
  const holes: LogHole[] = [];
  let prev: LogHole | null = null;
  for (const [i, h] of list.entries()) {
    const fields = ["fileStart", "fileEnd", "outputStart", "outputEnd", "records"] as const;
    for (const f of fields) {
      const v = (h as Record<string, unknown>)?.[f];
      if (!Number.isSafeInteger(v) || (v as number) < 0) throw bad(`holes[${i}].${f} = ${JSON.stringify(v)}`);
    }
    const hole = h as LogHole;
    if (hole.fileStart >= hole.fileEnd || hole.outputStart > hole.outputEnd) throw bad(`holes[${i}] with an empty or reversed range`);
    if (prev !== null && (hole.fileStart < prev.fileEnd || hole.outputStart < prev.outputEnd)) {
      throw bad(`holes[${i}] overlapping or before holes[${i - 1}]`);
    }
    holes.push({ fileStart: hole.fileStart, fileEnd: hole.fileEnd, outputStart: hole.outputStart, outputEnd: hole.outputEnd, records: hole.records });
    prev = hole;
  }
  return holes;
}

/** The holes of the log at `logPath`; none when it has no sidecar. */
export function readHolesSync(logPath: string): LogHole[] {
  const p = holesPathFor(logPath);
  let text: string;
  try {
    text = readFileSync(p, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new JobletError("INTERNAL", `log holes file ${p}: expected a readable file, got ${(err as Error).message}`, { cause: err });
  }
  return parseHoles(text, p);
}

/** Async twin of readHolesSync. */
export async function readHoles(logPath: string): Promise<LogHole[]> {
  const p = holesPathFor(logPath);
  let text: string;
  try {
    text = await readFile(p, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new JobletError("INTERNAL", `log holes file ${p}: expected a readable file, got ${(err as Error).message}`, { cause: err });
  }
  return parseHoles(text, p);
}

/**
 * Replaces the sidecar of `logPath` with `holes`, durably: once this resolves, a crash cannot bring back an
 * older list, so punching the listed ranges afterwards is safe.
 */
export async function writeHoles(logPath: string, holes: readonly LogHole[]): Promise<void> {
  const p = holesPathFor(logPath);
  const tmp = `${p}.tmp-${process.pid}`;
  const text = `${JSON.stringify({ version: 1, holes })}\n`;
  try {
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, p);
    // The rename itself is durable only once the directory is synced.
    const dir = await open(path.dirname(p), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new JobletError("INTERNAL", `log holes file ${p}: expected to write it, got ${(err as Error).message}`, { cause: err });
  }
}

/** The first hole with fileEnd > filePos (the one holding filePos, or the next one after it), if any. */
export function holeFrom(holes: readonly LogHole[], filePos: number): LogHole | undefined {
  let lo = 0;
  let hi = holes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (holes[mid]!.fileEnd <= filePos) lo = mid + 1;
    else hi = mid;
  }
  return holes[lo];
}

/**
 * A reader's view of one log's holes, refreshed cheaply: a stat of the sidecar, and a re-read only when its
 * identity (inode, size, mtime, ctime) changed or the caller has a reason to doubt it (`force`).
 */
export class HoleWatch {
  private key = "";

  private constructor(
    private readonly logPath: string,
    private list: readonly LogHole[],
  ) {}

  /** Loads the holes of `logPath` (none if it has no sidecar yet). */
  static async load(logPath: string): Promise<HoleWatch> {
    const watch = new HoleWatch(logPath, []);
    await watch.refresh(true);
    return watch;
  }

  /** The known holes, sorted by file position. */
  get holes(): readonly LogHole[] {
    return this.list;
  }

  /** Re-reads the sidecar if it changed (or if `force`); true when the hole list changed. */
  async refresh(force = false): Promise<boolean> {
    const p = holesPathFor(this.logPath);
    // Readers call this after every read of the log (1024 times per GiB, and on every wake-up of a follower),
    // and most logs have no sidecar. An asynchronous stat that fails costs ~50 µs of CPU (a thread-pool trip
    // and an Error with a stack); a synchronous one of a local file that returns undefined costs ~3 µs.
    const st = statSync(p, { bigint: true, throwIfNoEntry: false });
    // No sidecar (never punched, or the log was removed while we read it): holes never disappear.
    if (st === undefined) return false;
    const key = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    if (key === this.key && !force) return false;
    const next = await readHoles(this.logPath);
    this.key = key;
    if (next.length === 0) return false;
    const changed = next.length !== this.list.length || next.some((h, i) => h.fileEnd !== this.list[i]!.fileEnd || h.fileStart !== this.list[i]!.fileStart);
    this.list = next;
    return changed;
  }
}

/** Output a reader skipped because retention dropped it: bytes [outputStart, outputEnd) of the output. */
export interface LogGap {
  outputStart: number;
  outputEnd: number;
}
