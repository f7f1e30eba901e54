// The upload's progress line on stderr: shown only on a terminal and only once the upload has taken more
// than a second (a small upload prints nothing), rewritten in place with \r, ended with a newline.
import { formatBytes, formatDurationMs } from "../format.js";
import type { Output } from "../io.js";

/** How long an upload runs before its progress line appears, milliseconds. */
export const PROGRESS_DELAY_MS = 1000;
/** How often the line is redrawn, milliseconds; also while no byte moves, so a stall shows as a falling rate. */
export const PROGRESS_INTERVAL_MS = 250;

/** "rnx: uploading 120.5 MiB of 1.0 GiB (12%), 45.2 MiB/s"; the rate is the average since the start. */
export function formatUploadProgress(sentBytes: number, totalBytes: number, elapsedMs: number): string {
  const percent = totalBytes > 0 ? Math.floor((sentBytes * 100) / totalBytes) : 100;
  return `rnx: uploading ${formatBytes(sentBytes)} of ${formatBytes(totalBytes)} (${percent}%), ${formatRate(sentBytes, elapsedMs)}`;
}

/** "rnx: uploaded 1.0 GiB in 22.1s, 45.2 MiB/s". */
export function formatUploadDone(totalBytes: number, elapsedMs: number): string {
  return `rnx: uploaded ${formatBytes(totalBytes)} in ${formatDurationMs(elapsedMs)}, ${formatRate(totalBytes, elapsedMs)}`;
}

function formatRate(bytes: number, elapsedMs: number): string {
  return `${formatBytes(elapsedMs > 0 ? Math.round((bytes * 1000) / elapsedMs) : 0)}/s`;
}

/** Options for `UploadProgress`; the defaults are the real clock and timer. */
export interface UploadProgressOptions {
  /** Milliseconds since the epoch. */
  readonly nowMs?: () => number;
  /** Redraw interval, milliseconds; 0 = no timer (the caller calls `tick`). */
  readonly intervalMs?: number;
}

/** The progress of one upload; silent unless `out` is a terminal. */
export class UploadProgress {
  private readonly nowMs: () => number;
  private readonly intervalMs: number;
  private startMs = 0;
  private sentBytes = 0;
  private shown = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: Output,
    private readonly totalBytes: number,
    opts: UploadProgressOptions = {},
  ) {
    this.nowMs = opts.nowMs ?? Date.now;
    this.intervalMs = opts.intervalMs ?? PROGRESS_INTERVAL_MS;
  }

  /** Starts the clock (when the server has accepted the upload and data begins to flow). */
  start(): void {
    this.startMs = this.nowMs();
    if (this.out.isTTY === true && this.intervalMs > 0) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Counts bytes handed to the connection. */
  add(bytes: number): void {
    this.sentBytes += bytes;
  }

  /** Redraws the line if the upload has run long enough to deserve one. */
  tick(): void {
    if (this.out.isTTY !== true) return;
    const elapsedMs = this.nowMs() - this.startMs;
    if (!this.shown && elapsedMs <= PROGRESS_DELAY_MS) return;
    this.shown = true;
    // \r back to the start of the line, ESC[K erases what a longer previous line left.
    this.out.write(`\r${formatUploadProgress(this.sentBytes, this.totalBytes, elapsedMs)}\u001b[K`);
  }

  /** The upload is complete: the line, if shown, becomes the summary and ends with a newline. */
  finish(): void {
    this.stopTimer();
    if (this.shown) this.out.write(`\r${formatUploadDone(this.sentBytes, this.nowMs() - this.startMs)}\u001b[K\n`);
    this.shown = false;
  }

  /** The upload failed or was interrupted: the line, if shown, is ended so a message can follow on its own line. */
  abandon(): void {
    this.stopTimer();
    if (this.shown) this.out.write("\n");
    this.shown = false;
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
