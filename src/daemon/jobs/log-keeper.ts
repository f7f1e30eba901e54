// Keeps jobs' logs within the configured limits while the daemon runs: each running job's log under
// logs.maxJobLogMB (head and tail kept, the middle dropped, offsets unchanged), all logs under
// logs.diskBudgetMB, and a note on running jobs when the disk holding the logs is full (conmon cannot write
// their output then). conmon writes the logs; this only cuts them and says what was lost.
import path from "node:path";
import type { Logger } from "pino";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { diskFree, enforceBudget, LogCap } from "../logs/retention.js";

/** How often running jobs' logs are checked against the cap and the disk budget, milliseconds. */
const CHECK_INTERVAL_MS = 2_000;
/** Free space below which the disk holding the logs counts as full, bytes. */
const DISK_FULL_BYTES = 1024 * 1024;

/** What the keeper needs from the job service. */
export interface LogKeeperDeps {
  limits: DaemonConfig["logs"];
  logPathOf(id: string): string;
  runningIds(): string[];
  /** Records on a job that its output stopped being kept, and why. */
  noteOutputLost(id: string, reason: string): void;
  logger: Logger;
}

/** Periodic log cap, disk budget and disk-full checks. */
export class LogKeeper {
  private readonly cap: LogCap | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  /** Jobs already told that the disk holding their log is full (so it is recorded once per episode). */
  private readonly diskFullNoted = new Set<string>();

  constructor(private readonly deps: LogKeeperDeps) {
    const { maxJobBytes, keepHeadBytes } = deps.limits;
    this.cap = maxJobBytes > 0 ? new LogCap({ maxBytes: maxJobBytes, headBytes: keepHeadBytes }) : undefined;
  }

  /** Checks once, then every CHECK_INTERVAL_MS. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** Stops the periodic checks. */
  close(): void {
    clearInterval(this.timer);
  }

  /** Cuts one job's log to the cap (also called when a job ends); never throws. */
  async capJob(id: string): Promise<void> {
    if (!this.cap) return;
    try {
      const res = await this.cap.enforce(this.deps.logPathOf(id));
      if (res.droppedOutputBytes > 0) {
        this.deps.logger.info({ jobId: id, droppedBytes: res.droppedOutputBytes, maxBytes: this.cap.maxBytes }, "log over its cap: middle dropped");
      }
    } catch (err) {
      this.deps.logger.error({ err, jobId: id }, "capping the job's log failed");
    }
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await this.checkOnce();
    } finally {
      this.checking = false;
    }
  }

  private async checkOnce(): Promise<void> {
    const log = this.deps.logger;
    const running = this.deps.runningIds();
    for (const id of running) await this.capJob(id);
    const logsDir = path.dirname(this.deps.logPathOf("x"));
    const { diskBudgetBytes, keepHeadBytes } = this.deps.limits;
    if (diskBudgetBytes > 0) {
      try {
        const res = await enforceBudget(logsDir, diskBudgetBytes, new Set(running), { headBytes: keepHeadBytes });
        if (res.shortfallBytes > 0) {
          log.warn(
            { usedBytes: res.usedBytes, budgetBytes: diskBudgetBytes, shortfallBytes: res.shortfallBytes },
            "logs exceed logs.diskBudgetMB: running jobs' logs are only cut to their own cap",
          );
        }
      } catch (err) {
        log.error({ err }, "enforcing the log disk budget failed");
      }
    }
    let free: number;
    try {
      free = diskFree(logsDir);
    } catch {
      return;
    }
    if (free >= DISK_FULL_BYTES) {
      this.diskFullNoted.clear();
      return;
    }
    for (const id of running) {
      if (this.diskFullNoted.has(id)) continue;
      this.diskFullNoted.add(id);
      this.deps.noteOutputLost(id, `output is not being kept since ${new Date().toISOString()}: the disk holding ${logsDir} is full (${free} bytes free)`);
      log.error({ jobId: id, freeBytes: free, logsDir }, "disk full: the job's output is not being kept");
    }
  }
}
