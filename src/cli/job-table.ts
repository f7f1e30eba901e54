// The `rnx list` table: ID (short form), STATUS, START, DURATION, COMMAND, oldest first (sortJobs) so the newest
// job is next to the prompt. Borderless like `docker ps`; the COMMAND column is cut so each row fits the terminal.
import { cutToWidth, displayWidth, formatDurationMs, formatTime, jobDurationMs, oneLine, paintStatus, shellJoin, shortId } from "./format.js";
import type { JobRow } from "./job-rows.js";
import { COLUMN_GAP, plainTable } from "./table.js";

/** Options for `renderJobTable`. */
export interface JobTableOptions {
  /** Cut rows to this many columns; undefined = never cut (output is not a terminal). */
  readonly width?: number;
  readonly color: boolean;
  /** "Now" for the duration of running jobs, milliseconds since the epoch. */
  readonly nowMs: number;
}

const HEAD = ["ID", "STATUS", "START", "DURATION", "COMMAND"];

/** Jobs sorted oldest first: by creation (or start) time, then ID for a stable order. */
export function sortJobs<T extends JobRow>(jobs: readonly T[]): T[] {
  // Each time parsed once, not twice per comparison (~70 ms of `rnx list` with 10,000 jobs).
  const keyed = jobs.map((j) => ({ j, when: Date.parse(j.createTime || j.startTime) || 0 }));
  const before = (a: (typeof keyed)[number], b: (typeof keyed)[number]) => a.when - b.when || (a.j.id < b.j.id ? -1 : a.j.id > b.j.id ? 1 : 0);
  // Joblet's daemon sends them oldest first already: then one pass instead of a sort.
  let sorted = true;
  for (let i = 1; i < keyed.length && sorted; i++) sorted = before(keyed[i - 1]!, keyed[i]!) <= 0;
  if (!sorted) keyed.sort(before);
  return keyed.map((k) => k.j);
}

/** The table as text, ending in a newline; rows in the order given (`rnx list` sorts them with sortJobs first). */
export function renderJobTable(jobs: readonly JobRow[], opts: JobTableOptions): string {
  const rows = jobs.map((j) => {
    const ms = jobDurationMs(j.startTime, j.endTime, opts.nowMs);
    // Escapes and newlines in a job's command line must not reach the terminal nor split its row.
    return [shortId(j.id), j.status, formatTime(j.startTime), ms === undefined ? "-" : formatDurationMs(ms), oneLine(shellJoin([j.command, ...j.args]))];
  });
  if (opts.width !== undefined) {
    // Fixed columns keep their natural width; COMMAND gets what is left of the line (at least 10).
    const widest = (c: number) => rows.reduce((w, r) => Math.max(w, displayWidth(r[c]!)), displayWidth(HEAD[c]!));
    const fixed = [0, 1, 2, 3].reduce((sum, c) => sum + widest(c) + COLUMN_GAP, 0);
    const room = Math.max(10, opts.width - fixed - 1);
    for (const r of rows) r[4] = cutToWidth(r[4]!, room);
  }
  if (opts.color) for (const r of rows) r[1] = paintStatus(r[1]!);
  return plainTable(HEAD, rows, opts.color);
}
