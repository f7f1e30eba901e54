// Retention of job logs: a per-job size cap and a daemon-wide disk budget, without ever shifting an offset.
//
// Policy. A job's log is written by conmon, not the daemon, and must stay appendable and readable by offset
// while it is capped, so nothing is truncated or rewritten. When the bytes a log keeps on disk (its size
// minus its holes) exceed `maxBytes`, the daemon keeps the first `headBytes` of the file and its last
// `maxBytes - headBytes` (minus a slack of 1/8 of that, at most 1 MiB, so that the next cut comes only
// after that much more output), each rounded out to whole records, and frees the middle by punching a hole
// (fallocate(2) PUNCH_HOLE|KEEP_SIZE, aligned inward to 4 KiB blocks): the file keeps its size, conmon keeps
// appending at its end, and every file position stays valid. As the job writes more, the hole grows (the
// part between the kept head and the new tail is punched each time), so a capped log has one hole.
// Before punching, the dropped range is decoded and recorded in the sidecar `<log>.holes` (written to a
// temp file, synced, and renamed first): file range, output range, record count. Readers skip holes; the
// output offset of every byte after a hole is what it was before the punch, so a client that resumes or
// follows sees chunk offsets jump forward by exactly the number of output bytes dropped.
//
// The daemon-wide budget (`enforceBudget`) counts the blocks allocated to all `*.log` files of a directory;
// over budget, it cuts the largest logs first down to their head plus a minimal tail (1 MiB by default),
// until the total fits, leaving protected logs (running jobs, say) to the per-job cap alone. What it could
// not free is returned, for the caller to report. `diskFree` tells how much room the filesystem has left.
//
// A full disk must not stop retention, yet recording a hole needs a new block for the sidecar: each log
// directory keeps a 64 KiB reserve file, deleted to make room when a sidecar write fails with ENOSPC and
// recreated after the next cut.
import { statfsSync } from "node:fs";
import { open, readdir, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { invalidArgument, JobletError } from "../../shared/errors.js";
import { holesPathFor, readHoles, readHolesSync, writeHoles, type LogHole } from "./holes.js";
import { scanToBoundary, type Boundary } from "./log-span.js";
import { dropIndex } from "./offset-index.js";
import { alignedInside, checkPunchSupport, punchHole, PUNCH_ALIGN_BYTES } from "./punch.js";

/** Smallest tail (`maxBytes - headBytes`) a cap may keep: several of conmon's 8 KiB records. */
export const MIN_CAP_TAIL_BYTES = 64 << 10;
/** Tail that `enforceBudget` leaves to each log it cuts, unless told otherwise. */
export const DEFAULT_BUDGET_TAIL_BYTES = 1 << 20;
// Largest slack below the cap's tail after a cut: bounds how far under the cap a cut log starts again.
const MAX_SLACK_BYTES = 1 << 20;
// A sidecar is replaced at most this often per log, so that any two versions differ in their ctime (kept at
// jiffy granularity, 1-10 ms) even if the filesystem reuses the inode: readers detect changes by stat.
const MIN_SIDECAR_INTERVAL_MS = 20;
/** Name of the reserve file in a log directory (not a `*.log`, so no budget counts it). */
export const RESERVE_FILE = ".joblet-log-reserve";
// Room for a few sidecar writes (a block each, plus a directory block).
const RESERVE_BYTES = 64 << 10;

/** Per-job log cap settings, in bytes of the log file. */
export interface LogCapOptions {
  /** Most bytes one job's log keeps on disk (its size minus its holes). */
  maxBytes: number;
  /** Bytes at the start of the log that are always kept. */
  headBytes: number;
}

/** What one enforcement did. */
export interface CapResult {
  /** Output bytes newly dropped by this call (0 when nothing was cut). */
  droppedOutputBytes: number;
  /** Holes punched or extended by this call. */
  holes: number;
}

/** What a budget enforcement did and what is left. */
export interface BudgetResult {
  /** Bytes of allocated blocks freed by this call. */
  freedBytes: number;
  /** Allocated bytes of all logs afterwards. */
  usedBytes: number;
  /** How far `usedBytes` is still over the budget (0 when within it). */
  shortfallBytes: number;
  /** Logs cut by this call, with the output bytes each newly dropped. */
  cut: { file: string; droppedOutputBytes: number }[];
}

const NOTHING: CapResult = Object.freeze({ droppedOutputBytes: 0, holes: 0 });

/** Keeps each job's log within a size cap by punching out its middle; see the policy at the top of this file. */
export class LogCap {
  /** The cap, in bytes kept on disk per log. */
  readonly maxBytes: number;
  /** Bytes at the start of each log always kept. */
  readonly headBytes: number;
  // Tail kept after a cut: the cap's tail less the slack.
  private readonly cutTailBytes: number;

  constructor(opts: LogCapOptions) {
    const { maxBytes, headBytes } = opts;
    if (!Number.isSafeInteger(headBytes) || headBytes < 0) throw invalidArgument("headBytes", "a non-negative integer of bytes", headBytes);
    if (!Number.isSafeInteger(maxBytes) || maxBytes - headBytes < MIN_CAP_TAIL_BYTES) {
      throw invalidArgument("maxBytes", `an integer of bytes at least headBytes (${headBytes}) + ${MIN_CAP_TAIL_BYTES}`, maxBytes);
    }
    this.maxBytes = maxBytes;
    this.headBytes = headBytes;
    const tailBytes = maxBytes - headBytes;
    this.cutTailBytes = tailBytes - Math.min(Math.floor(tailBytes / 8), MAX_SLACK_BYTES);
  }

  /**
   * Cuts the log at `file` down to the cap if it keeps more than `maxBytes`. Idempotent; a missing file is
   * nothing to do. Costs one stat while the file is under the cap (or was cut and has not outgrown it);
   * a cut decodes the newly dropped range once.
   */
  async enforce(file: string): Promise<CapResult> {
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return NOTHING;
      throw fileError(file, "a log file to stat", err);
    }
    if (st.size <= this.maxBytes) return NOTHING;
    const known = knownHoles.get(file);
    if (known !== undefined && known.ino === st.ino && st.size - known.holeFileBytes <= this.maxBytes) return NOTHING;
    return withFileLock(file, () => cutMiddle(file, this.headBytes, this.cutTailBytes, this.maxBytes));
  }
}

/**
 * Keeps the blocks allocated to the `*.log` files of `logsDir` within `budgetBytes`: while over, cuts the
 * log with the most allocated bytes down to its first `headBytes` and last `minTailBytes` (default 1 MiB),
 * then the next largest, skipping logs in `protect` (job IDs, i.e. file names without `.log`, or full log
 * paths). Returns what it freed and, if it could not get within the budget, by how much it is still over.
 */
export async function enforceBudget(
  logsDir: string,
  budgetBytes: number,
  protect: ReadonlySet<string>,
  opts: { headBytes: number; minTailBytes?: number },
): Promise<BudgetResult> {
  if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0) throw invalidArgument("budgetBytes", "a non-negative integer of bytes", budgetBytes);
  const headBytes = opts.headBytes;
  if (!Number.isSafeInteger(headBytes) || headBytes < 0) throw invalidArgument("headBytes", "a non-negative integer of bytes", headBytes);
  const tailBytes = opts.minTailBytes ?? DEFAULT_BUDGET_TAIL_BYTES;
  if (!Number.isSafeInteger(tailBytes) || tailBytes < MIN_CAP_TAIL_BYTES) {
    throw invalidArgument("minTailBytes", `an integer of bytes, at least ${MIN_CAP_TAIL_BYTES}`, tailBytes);
  }
  let names: string[];
  try {
    names = (await readdir(logsDir)).filter((n) => n.endsWith(".log"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") names = [];
    else throw fileError(logsDir, "a readable log directory", err);
  }
  const logs: { file: string; allocatedBytes: number; protected: boolean }[] = [];
  let usedBytes = 0;
  for (const name of names) {
    const file = path.join(logsDir, name);
    const allocatedBytes = await allocatedBytesOf(file);
    if (allocatedBytes === null) continue;
    usedBytes += allocatedBytes;
    logs.push({ file, allocatedBytes, protected: protect.has(name.slice(0, -".log".length)) || protect.has(file) });
  }
  const result: BudgetResult = { freedBytes: 0, usedBytes, shortfallBytes: 0, cut: [] };
  logs.sort((a, b) => b.allocatedBytes - a.allocatedBytes);
  for (const log of logs) {
    if (result.usedBytes <= budgetBytes) break;
    if (log.protected || log.allocatedBytes <= headBytes + tailBytes) continue;
    const cut = await withFileLock(log.file, () => cutMiddle(log.file, headBytes, tailBytes, headBytes + tailBytes));
    const after = await allocatedBytesOf(log.file);
    const freed = Math.max(0, log.allocatedBytes - (after ?? 0));
    result.freedBytes += freed;
    result.usedBytes -= freed;
    if (cut.holes > 0) result.cut.push({ file: log.file, droppedOutputBytes: cut.droppedOutputBytes });
  }
  result.shortfallBytes = Math.max(0, result.usedBytes - budgetBytes);
  return result;
}

/** Output bytes retention dropped from the log at `file` so far (the sum over its holes); 0 without any. */
export function droppedOutputBytes(file: string): number {
  return readHolesSync(file).reduce((sum, h) => sum + (h.outputEnd - h.outputStart), 0);
}

/** Deletes the log at `file` and its holes sidecar (missing ones are fine), and forgets what is cached about it. */
export async function removeLog(file: string): Promise<void> {
  await withFileLock(file, async () => {
    try {
      await rm(file, { force: true });
      await rm(holesPathFor(file), { force: true });
    } catch (err) {
      throw fileError(file, "a removable log file", err);
    }
    knownHoles.delete(file);
    dropIndex(file);
  });
}

/** Bytes free for unprivileged use on the filesystem holding `dir` (statfs f_bavail × f_bsize). */
export function diskFree(dir: string): number {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch (err) {
    throw fileError(dir, "a directory to statfs", err);
  }
}

// What retention last saw of a log's holes, so that a capped log under its cap costs one stat. Retention is
// the only writer of sidecars, and every write goes through here. Bounded like the offset index cache.
const MAX_KNOWN = 4096;
const knownHoles = new Map<string, { ino: number; holeFileBytes: number; writtenAtMs: number }>();

function remember(file: string, ino: number, holes: readonly LogHole[], writtenAtMs: number): void {
  knownHoles.delete(file);
  knownHoles.set(file, { ino, holeFileBytes: holeFileBytes(holes), writtenAtMs });
  if (knownHoles.size > MAX_KNOWN) knownHoles.delete(knownHoles.keys().next().value!);
}

const holeFileBytes = (holes: readonly LogHole[]): number => holes.reduce((sum, h) => sum + (h.fileEnd - h.fileStart), 0);

// One retention operation per log at a time (enforce, budget and removal may overlap in the daemon).
const locks = new Map<string, Promise<unknown>>();

async function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(file) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const settled = run.catch(() => undefined);
  locks.set(file, settled);
  try {
    return await run;
  } finally {
    if (locks.get(file) === settled) locks.delete(file);
  }
}

/**
 * Drops everything of `file` except its first `headBytes` and last `tailBytes` (rounded out to records),
 * if it keeps more than `triggerBytes`; existing holes stay and merge with new ones. Must run under the
 * file's lock.
 */
async function cutMiddle(file: string, headBytes: number, tailBytes: number, triggerBytes: number): Promise<CapResult> {
  let fh: FileHandle;
  try {
    fh = await open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return NOTHING;
    throw fileError(file, "a readable log file", err);
  }
  try {
    const st = await fh.stat();
    const holes = await readHoles(file);
    const previous = knownHoles.get(file);
    const firstSight = previous === undefined || previous.ino !== st.ino;
    remember(file, st.ino, holes, previous?.writtenAtMs ?? 0);
    const keptBytes = st.size - holeFileBytes(holes);
    if (keptBytes <= triggerBytes) {
      if (firstSight) await repunchIfAllocated(file, holes, st.blocks * 512, keptBytes);
      return NOTHING;
    }
    const dir = path.dirname(file);
    await checkPunchSupport(dir);

    // Everything in file bytes [headBytes, size - tailBytes) goes, except what already is a hole. Each stretch
    // between holes is decoded from its start, a record boundary with a known offset (0, or a hole's end).
    const dropFrom = headBytes;
    const dropTo = st.size - tailBytes;
    const added: LogHole[] = [];
    let segStart: Boundary = { filePos: 0, offset: 0 };
    for (let i = 0; i <= holes.length; i++) {
      const segEnd = i < holes.length ? holes[i]!.fileStart : st.size;
      const lo = Math.max(segStart.filePos, dropFrom);
      const hi = Math.min(segEnd, dropTo);
      if (lo < hi) {
        const a = (await scanToBoundary(fh, segStart, lo, segEnd)).end;
        if (a.filePos >= lo && a.filePos < hi) {
          const b = await scanToBoundary(fh, a, hi, segEnd);
          if (b.end.filePos > a.filePos) {
            added.push({ fileStart: a.filePos, fileEnd: b.end.filePos, outputStart: a.offset, outputEnd: b.end.offset, records: b.records });
          }
        }
      }
      if (i < holes.length) segStart = { filePos: holes[i]!.fileEnd, offset: holes[i]!.outputEnd };
    }
    if (added.length === 0) return NOTHING;

    const merged = mergeHoles([...holes, ...added]);
    // Sidecar first, durably: from here on readers skip these ranges, so punching them cannot show garbage.
    const waitMs = (knownHoles.get(file)?.writtenAtMs ?? 0) + MIN_SIDECAR_INTERVAL_MS - Date.now();
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    await writeHolesEvenIfFull(file, merged);
    remember(file, st.ino, merged, Date.now());
    // Each changed hole is punched whole: that frees the block where an old hole meets its extension, and
    // re-punching already freed blocks costs little.
    try {
      for (const h of merged) {
        if (added.some((a) => a.fileStart >= h.fileStart && a.fileEnd <= h.fileEnd)) await punchHole(file, h.fileStart, h.fileEnd);
      }
    } catch (err) {
      // Recorded but not (all) punched: forgetting the log makes the next enforce check its blocks and punch again.
      knownHoles.delete(file);
      throw err;
    }
    await ensureReserve(dir);
    return { droppedOutputBytes: added.reduce((sum, h) => sum + (h.outputEnd - h.outputStart), 0), holes: added.length };
  } finally {
    await fh.close();
  }
}

// Writes the sidecar; on a full disk, gives up the directory's reserve for it.
async function writeHolesEvenIfFull(file: string, holes: readonly LogHole[]): Promise<void> {
  try {
    await writeHoles(file, holes);
  } catch (err) {
    if (((err as Error).cause as NodeJS.ErrnoException | undefined)?.code !== "ENOSPC") throw err;
    await rm(path.join(path.dirname(file), RESERVE_FILE), { force: true });
    await writeHoles(file, holes);
  }
}

// Recreates the directory's reserve if it is missing; best effort (the disk may still be too full).
async function ensureReserve(dir: string): Promise<void> {
  const p = path.join(dir, RESERVE_FILE);
  try {
    if ((await stat(p)).size === RESERVE_BYTES) return;
  } catch {
    // Missing: created below.
  }
  try {
    // Written, not truncated to size: a sparse reserve would hold no blocks (the write reserves them).
    await writeFile(p, Buffer.alloc(RESERVE_BYTES), { mode: 0o600 });
  } catch {
    await rm(p, { force: true }).catch(() => undefined);
  }
}

// Holes sorted by file position with touching ones joined (their output ranges touch too).
function mergeHoles(holes: LogHole[]): LogHole[] {
  const sorted = [...holes].sort((a, b) => a.fileStart - b.fileStart);
  const out: LogHole[] = [];
  for (const h of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.fileEnd === h.fileStart && last.outputEnd === h.outputStart) {
      out[out.length - 1] = { fileStart: last.fileStart, fileEnd: h.fileEnd, outputStart: last.outputStart, outputEnd: h.outputEnd, records: last.records + h.records };
    } else out.push(h);
  }
  return out;
}

// A crash between writing the sidecar and punching leaves recorded holes unpunched: seen for the first time
// by this process, a log with more blocks allocated than its kept bytes explain gets its holes punched again.
async function repunchIfAllocated(file: string, holes: readonly LogHole[], allocatedBytes: number, keptBytes: number): Promise<void> {
  if (holes.length === 0) return;
  // Partial blocks at each hole's edges stay allocated; 1 MiB covers delayed allocation and preallocation.
  const explainedBytes = keptBytes + holes.length * 2 * PUNCH_ALIGN_BYTES + (1 << 20);
  if (allocatedBytes <= explainedBytes) return;
  for (const h of holes) {
    const r = alignedInside(h.fileStart, h.fileEnd);
    if (r.end > r.start) await punchHole(file, h.fileStart, h.fileEnd);
  }
}

async function allocatedBytesOf(file: string): Promise<number | null> {
  try {
    return (await stat(file)).blocks * 512;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw fileError(file, "a log file to stat", err);
  }
}

function fileError(file: string, expected: string, err: unknown): JobletError {
  return new JobletError("INTERNAL", `${file}: expected ${expected}, got ${(err as Error).message}`, { cause: err });
}
