// Waits until a log file may have grown. fs.watch (inotify) wakes a follower as soon as conmon writes, but
// it can miss events (watch set up after the write, a file replaced, filesystems without inotify support),
// so every wait also ends after `pollMs`: a missed event costs at most one poll interval, never output.
//
// A follower that is behind (its reads fill their buffer) pauses the watch: conmon writes a job's output in
// records of at most 8 KiB, and for each write to a watched file the kernel queues an inotify event and wakes
// the daemon's event loop, which reads it and calls into JavaScript for it. Following 1 GiB of `dd` output
// live, that was ~11,000 wake-ups of the daemon and 15 % of conmon's CPU (the event's allocation, queueing and
// the wake-up run in conmon's write), all for a reader that had more to read anyway (bench/README.md).
import { watch, type FSWatcher } from "node:fs";
import path from "node:path";

/** Wakes a follower of one file when it changes, when a poll interval passes, or when aborted. */
export class GrowthWaiter {
  private watcher: FSWatcher | null = null;
  private watching: "file" | "dir" | null = null;
  // Set while paused: what the next wait() watches again before it returns.
  private paused: "file" | "dir" | null = null;
  private changed = false;
  private wake: (() => void) | null = null;
  private readonly onAbort = (): void => this.wakeUp();

  constructor(
    private readonly filePath: string,
    private readonly pollMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /**
   * Watches the file itself once it exists (`fileExists`), else its directory (to see it created).
   * Watching the directory of an existing file would wake this follower for every other file in it.
   */
  watchFor(fileExists: boolean): void {
    const want = fileExists ? "file" : "dir";
    if (this.paused !== null) {
      this.paused = want;
      return;
    }
    if (this.watching === want) return;
    this.closeWatcher();
    const target = fileExists ? this.filePath : path.dirname(this.filePath);
    const base = path.basename(this.filePath);
    try {
      const w = watch(target, { persistent: false }, (_event, name) => {
        if (want === "file" || name === null || name === base) this.wakeUp();
      });
      // Errors (the watched file deleted, inotify limits) leave polling in charge.
      w.on("error", () => this.closeWatcher());
      this.watcher = w;
      this.watching = want;
    } catch {
      // ENOENT (no directory yet) or ENOSPC (inotify watch limit): polling alone still finds the growth.
      this.watching = null;
    }
  }

  /**
   * Stops watching until the next wait(): the caller is behind the writer and reads on without waiting, so
   * change events would only cost the writer and this process.
   */
  pause(): void {
    if (this.watching === null || this.paused !== null) return;
    this.paused = this.watching;
    this.closeWatcher();
  }

  /**
   * Resolves on a change seen since the last wait, the next change, `pollMs` elapsing, or abort. After
   * pause() it watches again and resolves at once: what was written while nothing watched is found only by
   * reading, so the caller reads once more before it waits.
   */
  async wait(): Promise<void> {
    if (this.paused !== null) {
      const want = this.paused;
      this.paused = null;
      this.watchFor(want === "file");
      this.changed = false;
      return;
    }
    if (this.changed || this.signal?.aborted) {
      this.changed = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.wakeUp(), this.pollMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Ends the current wait (or the next one) now: something besides the file changed, e.g. the job ended. */
  poke(): void {
    this.wakeUp();
  }

  /** Releases the watcher and the abort listener. */
  close(): void {
    this.closeWatcher();
    this.signal?.removeEventListener("abort", this.onAbort);
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    if (wake === null) this.changed = true;
    else wake();
  }

  private closeWatcher(): void {
    this.watcher?.close();
    this.watcher = null;
    this.watching = null;
  }
}
