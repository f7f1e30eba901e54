// Persistence of job records behind one interface; SQLite is the implementation (an in-memory database
// serves tests through the same class).
import type { JobRecord } from "./record.js";

/** Fields that change after a job is created. */
export type JobPatch = Partial<
  Pick<JobRecord, "status" | "startTime" | "endTime" | "exitCode" | "signal" | "oomKilled" | "reason" | "stopRequested" | "usage" | "timedOut" | "upload">
>;

/** Where job records live. Implementations must make each call durable before returning. */
export interface JobStore {
  insert(job: JobRecord): void;
  get(id: string): JobRecord | undefined;
  /** Up to `limit` IDs starting with `prefix`. */
  idsWithPrefix(prefix: string, limit: number): string[];
  /** All jobs, oldest first. Finished jobs' records may be shared between calls: they are frozen, read-only. */
  list(): JobRecord[];
  /** Jobs not yet in a final state, oldest first. */
  listUnfinished(): JobRecord[];
  countUnfinished(): number;
  update(id: string, patch: JobPatch): void;
  /** Deletes the record; true if it existed. */
  delete(id: string): boolean;
  /**
   * IDs of finished jobs to prune: all but the `keep` that ended last, and those that ended before
   * `endedBefore` (RFC 3339; undefined = no age limit).
   */
  finishedToPrune(keep: number, endedBefore: string | undefined): string[];
  close(): void;
}
