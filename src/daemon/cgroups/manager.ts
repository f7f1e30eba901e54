// What the daemon needs from cgroups, whatever the host's layout. runc creates each job's cgroup and applies
// its limits (from the OCI spec's absolute `cgroupsPath`, e.g. "/joblet/<id>"); the daemon prepares the
// parent, reads usage, lists processes and removes leftovers. One implementation per layout (v1.ts for v1
// and hybrid, v2.ts), chosen once by createCgroupManager in factory.ts; callers never branch on the version.
import { invalidArgument } from "../../shared/errors.js";
import type { CgroupMode } from "./detect.js";

/** Usage counters of one cgroup, including its descendants. Counters are cumulative since the cgroup was created. */
export interface CgroupStats {
  /** CPU time used, nanoseconds (v1 cpuacct.usage; v2 cpu.stat usage_usec × 1000). */
  cpuTimeNs: number;
  /** Memory charged now, bytes (page cache included). */
  memoryCurrentBytes: number;
  /** Highest memory charged, bytes; 0 where the kernel does not track it (v2 before Linux 5.19). */
  memoryPeakBytes: number;
  /** Bytes read from and written to block devices, summed over devices. */
  ioReadBytes: number;
  ioWriteBytes: number;
  /** Processes killed by the OOM killer because of this cgroup's memory limit. */
  oomKills: number;
  /** Number of tasks (threads included) now in the cgroup (pids.current). */
  pids: number;
}

/** Optional kernel features the spec builder must know about. */
export interface CgroupCapabilities {
  /** Swap can be limited (v1: swapaccount's memory.memsw.*; v2: memory.swap.max). */
  memorySwap: boolean;
  /**
   * Block IO is only counted for a cgroup once a throttle rule exists for the device (v1 blkio.throttle.*
   * stats on this kernel stay 0 otherwise); v2's io.stat always counts.
   */
  ioStatsNeedThrottleRule: boolean;
}

/**
 * The cgroup operations of the daemon. Every `cgPath` is a cgroup path relative to the cgroup mount(s), such
 * as "/joblet/abc", the same string given to runc as `cgroupsPath`.
 */
export interface CgroupManager {
  /** The layout detected when the manager was created. */
  readonly mode: CgroupMode;
  /** Usage counters, or undefined when the cgroup does not exist. Missing control files count as 0. */
  stats(cgPath: string): CgroupStats | undefined;
  /** OOM kills so far (0 when the cgroup is gone): cheap enough to read just before removal. */
  oomKills(cgPath: string): number;
  /** Pids of the processes in the cgroup itself (cgroup.procs), [] when it does not exist. */
  pids(cgPath: string): number[];
  /** True when the cgroup exists in any hierarchy. */
  exists(cgPath: string): boolean;
  /**
   * Removes the cgroup and its descendants from every hierarchy; an absent cgroup is not an error. Waits
   * briefly for exiting processes; throws FAILED_PRECONDITION listing the pids if some remain.
   */
  remove(cgPath: string): Promise<void>;
  /** Creates the parent of job cgroups (e.g. "/joblet") and makes the controllers available to its children. */
  ensureParent(parentPath: string): void;
  /** Optional features; on v2, call after ensureParent (it checks the parent's control files). */
  capabilities(): CgroupCapabilities;
}

/**
 * Returns `cgPath` if it is an absolute path below the cgroup root with no "." or ".." segments and no
 * empty ones, else throws INVALID_ARGUMENT. The root itself is refused: nothing here may act on it.
 */
export function checkCgroupPath(cgPath: string): string {
  const segments = cgPath.split("/").slice(1);
  const ok =
    cgPath.startsWith("/") &&
    cgPath.length <= 4096 &&
    segments.length > 0 &&
    segments.every((s) => s !== "" && s !== "." && s !== ".." && !s.includes("\0"));
  if (!ok) throw invalidArgument("cgroupPath", 'an absolute cgroup path below the root such as "/joblet/<id>"', cgPath);
  return cgPath;
}
