// One upload into a job's /work (RunJobWithUploads): feeds entries and data to the writer one at a time,
// gives up on a client that goes quiet, and ends in exactly one of two ways: complete (the job starts) or
// fail (the job is recorded FAILED or STOPPED and its work dir removed; nothing half-written is ever used).
import { statfsSync } from "node:fs";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { JobletError, invalidArgument } from "../../shared/errors.js";
import { formatBytes } from "../../shared/units.js";
import type { JobRecord, JobUpload } from "../store/record.js";
import { UploadWriter, type UploadEntryIn } from "../uploads/writer.js";

/** What the client declared in the upload's header. */
export interface DeclaredUpload {
  /** Sum of the files' sizes, bytes. */
  bytes: number;
  /** Files, directories and symlinks together. */
  entries: number;
}

/** Free space an upload must leave on the jobs dir's file system (the state dir's logs and database often share it), bytes. */
export const UPLOAD_DISK_RESERVE_BYTES = 64 * 1024 * 1024;
/** A client that sends nothing for this long loses its upload, milliseconds. */
export const UPLOAD_IDLE_MS = 60_000;

/** What the session calls when it ends; each is called at most once, and only one of the two. */
export interface UploadSessionHooks {
  /** Every byte arrived: record `upload` and start the job. */
  complete(upload: JobUpload): Promise<JobRecord>;
  /** The upload is abandoned for `reason`: record it and remove the work dir. Must not throw. */
  fail(reason: string): void;
}

/**
 * Refuses an upload the server will not take, before any byte of it is sent: over uploads.maxTotalMB or
 * uploads.maxEntries, larger than /work (filesystem.workSizeMB), or than the disk has room for.
 */
export function checkDeclaredUpload(declared: DeclaredUpload, config: DaemonConfig, freeDiskBytes: number): void {
  const { maxBytes, maxEntries } = config.uploads;
  if (!Number.isSafeInteger(declared.bytes) || declared.bytes < 0) {
    throw invalidArgument("header.totalBytes", "the total size of the files to upload, in bytes", declared.bytes);
  }
  if (!Number.isSafeInteger(declared.entries) || declared.entries < 0) {
    throw invalidArgument("header.totalEntries", "the number of files, directories and symlinks to upload", declared.entries);
  }
  if (maxBytes === 0 || maxEntries === 0) {
    throw new JobletError("FAILED_PRECONDITION", "this server does not accept uploads (uploads.maxTotalMB or uploads.maxEntries is 0)");
  }
  const what = `the upload (${formatBytes(declared.bytes)} in ${declared.entries} entries)`;
  if (declared.bytes > maxBytes) {
    throw new JobletError("RESOURCE_EXHAUSTED", `${what} is larger than this server accepts per job: uploads.maxTotalMB = ${maxBytes / 1024 / 1024} (${formatBytes(maxBytes)})`, {
      hint: "upload less (leave out build output, .git, virtual environments) or ask the operator to raise uploads.maxTotalMB",
    });
  }
  if (declared.entries > maxEntries) {
    throw new JobletError("RESOURCE_EXHAUSTED", `${what} has more entries than this server accepts per job: uploads.maxEntries = ${maxEntries}`, {
      hint: "upload fewer files (an archive unpacked by the job counts as one) or ask the operator to raise uploads.maxEntries",
    });
  }
  const workBytes = config.limits.workSizeBytes;
  if (workBytes > 0 && declared.bytes > workBytes) {
    throw new JobletError("RESOURCE_EXHAUSTED", `${what} does not fit in the job's /work: filesystem.workSizeMB = ${workBytes / 1024 / 1024}`);
  }
  if (declared.bytes + UPLOAD_DISK_RESERVE_BYTES > freeDiskBytes) {
    throw new JobletError(
      "RESOURCE_EXHAUSTED",
      `${what} does not fit on the server's disk: ${formatBytes(freeDiskBytes)} free, and ${formatBytes(UPLOAD_DISK_RESERVE_BYTES)} are kept for logs and state`,
    );
  }
}

/** Bytes available to unprivileged writers on the file system holding `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** An upload in progress. Calls are serialised; after the session has ended every call is refused. */
export class UploadSession {
  /** Settles once the session has completed or failed (never rejects). */
  readonly settled: Promise<void>;
  private readonly writer: UploadWriter;
  private chain: Promise<unknown> = Promise.resolve();
  private ended: string | undefined;
  private markSettled!: () => void;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly jobId: string,
    workDir: string,
    readonly declared: DeclaredUpload,
    owner: { uid: number; gid: number } | undefined,
    private readonly hooks: UploadSessionHooks,
    private readonly idleMs = UPLOAD_IDLE_MS,
  ) {
    this.writer = new UploadWriter(workDir, { ...(owner && { owner }), declaredBytes: declared.bytes, declaredEntries: declared.entries });
    this.settled = new Promise((resolve) => (this.markSettled = resolve));
    this.touch();
  }

  /** Why the session ended without completing, or undefined while it runs or after it completed. */
  get failure(): string | undefined {
    return this.ended === "completed" ? undefined : this.ended;
  }

  /** Starts the next entry (a file's data follows with `data`). */
  entry(e: UploadEntryIn): Promise<void> {
    return this.step(() => this.writer.begin(e));
  }

  /** The next bytes of the current file. */
  data(bytes: Uint8Array): Promise<void> {
    return this.step(() => this.writer.write(bytes));
  }

  /** The client sent `end`: checks the upload is whole, then starts the job and resolves with its record. */
  complete(): Promise<JobRecord> {
    return this.step(async () => {
      const totals = await this.writer.finish();
      this.end("completed");
      return this.hooks.complete(totals);
    });
  }

  /** Abandons the upload (bad input from the client, a broken stream); idempotent. */
  fail(reason: string): Promise<void> {
    this.enqueue(() => this.abandon(reason)).catch(() => undefined);
    return this.settled;
  }

  /** Abandons the upload from outside the call (a stop, the daemon shutting down), after the step in progress. */
  cancel(reason: string): void {
    void this.fail(reason);
  }

  /** Runs `fn` after the previous step, unless the session has ended; any error abandons the upload. */
  private step<T>(fn: () => Promise<T>): Promise<T> {
    return this.enqueue(async () => {
      if (this.ended !== undefined) {
        throw new JobletError("FAILED_PRECONDITION", `the upload of job ${this.jobId} has ended: ${this.failure ?? "it is complete"}`);
      }
      this.touch();
      try {
        return await fn();
      } catch (err) {
        if (this.ended === undefined) await this.abandon(reasonOf(err));
        throw err;
      }
    });
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async abandon(reason: string): Promise<void> {
    if (this.ended !== undefined) return;
    this.end(reason);
    await this.writer.abort().catch(() => undefined);
    this.hooks.fail(reason);
    this.markSettled();
  }

  private end(how: string): void {
    this.ended = how;
    clearTimeout(this.idleTimer);
    if (how === "completed") {
      // The job's start is awaited by complete(); stops wait for it through the job service's own bookkeeping.
      this.markSettled();
    }
  }

  private touch(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.cancel(`upload abandoned: nothing received from the client for ${this.idleMs / 1000} s`), this.idleMs);
    this.idleTimer.unref();
  }
}

/** The job's recorded reason for a failed upload. */
function reasonOf(err: unknown): string {
  return `upload refused: ${err instanceof Error ? err.message : String(err)}`;
}
