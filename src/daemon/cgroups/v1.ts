// cgroup v1: one hierarchy per controller or group of controllers (cpu and cpuacct are separate hierarchies
// on this CI machine, combined as "cpu,cpuacct" on most systemd hosts), each with its own copy of the job's
// cgroup. Also used for the hybrid layout, where the cgroup2 mount at root/unified holds no controller that
// limits jobs but runc still creates the job's directory there. Control files (Documentation/admin-guide/
// cgroup-v1/): cpuacct.usage (ns), memory.usage_in_bytes, memory.max_usage_in_bytes, memory.oom_control
// "oom_kill N" (Linux 4.13+), blkio.throttle.io_service_bytes, pids.current, cgroup.procs, cpuset.cpus/mems.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { JobletError } from "../../shared/errors.js";
import type { V1Hierarchy } from "./detect.js";
import { isDir, readKeyed, readNumber, readOptional, readPids } from "./files.js";
import { checkCgroupPath, type CgroupCapabilities, type CgroupManager, type CgroupStats } from "./manager.js";
import { removeCgroupDirs } from "./remove.js";

/**
 * Sums the Read and Write lines of a blkio *io_service_bytes file ("MAJ:MIN Read N" per device and
 * operation, then a "Total N" line that is skipped).
 */
export function parseBlkioServiceBytes(text: string): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of text.split("\n")) {
    const [dev, op, value] = line.split(" ");
    if (dev === undefined || !dev.includes(":") || value === undefined) continue;
    if (op === "Read") readBytes += Number(value) || 0;
    else if (op === "Write") writeBytes += Number(value) || 0;
  }
  return { readBytes, writeBytes };
}

/** Cgroup operations on v1 hierarchies (v1 and hybrid layouts). */
export class V1CgroupManager implements CgroupManager {
  /**
   * @param hierarchies the mounted v1 hierarchies (findV1Hierarchies).
   * @param extraDirs further roots that runc populates but that hold no controller read here: the
   *   cgroup2 mount of a hybrid host. Only exists() and remove() look at them.
   */
  constructor(
    readonly mode: "v1" | "hybrid",
    private readonly hierarchies: readonly V1Hierarchy[],
    private readonly extraDirs: readonly string[] = [],
  ) {}

  /** The mount point of the hierarchy carrying `controller`, if mounted. */
  private mountOf(controller: string): string | undefined {
    return this.hierarchies.find((h) => h.controllers.includes(controller))?.dir;
  }

  /** The directory of `cgPath` in the hierarchy carrying `controller`, if mounted. */
  private dirOf(controller: string, cgPath: string): string | undefined {
    const mount = this.mountOf(controller);
    return mount === undefined ? undefined : path.join(mount, checkCgroupPath(cgPath));
  }

  /** The text of file `name` of `cgPath` in `controller`'s hierarchy; undefined when absent or unmounted. */
  private read(controller: string, cgPath: string, name: string): string | undefined {
    const dir = this.dirOf(controller, cgPath);
    return dir === undefined ? undefined : readOptional(path.join(dir, name));
  }

  /** A number file of `controller`'s hierarchy; 0 when absent or unmounted. */
  private number(controller: string, cgPath: string, name: string): number {
    const dir = this.dirOf(controller, cgPath);
    return dir === undefined ? 0 : readNumber(path.join(dir, name));
  }

  /** The job's directory in every hierarchy, hybrid's unified mount included. */
  private allDirs(cgPath: string): string[] {
    checkCgroupPath(cgPath);
    return [...this.hierarchies.map((h) => h.dir), ...this.extraDirs].map((root) => path.join(root, cgPath));
  }

  stats(cgPath: string): CgroupStats | undefined {
    if (!this.exists(cgPath)) return undefined;
    // blkio.throttle.io_service_bytes counts the cgroup's bios per disk whether or not the cgroup has a
    // limit, but recent kernels set blk-throttle up on a disk lazily, when the first throttle rule for that
    // disk is written (by any cgroup; it then stays on until reboot). Before that it reads 0: measured on
    // 6.18 here, a 1 MiB O_DIRECT write counted 0 bytes until a rule had once been set on vda.
    // blkio.io_service_bytes (CFQ's file, gone since 5.0) is the fallback for old kernels.
    const blkio =
      this.read("blkio", cgPath, "blkio.throttle.io_service_bytes") ?? this.read("blkio", cgPath, "blkio.io_service_bytes") ?? "";
    const io = parseBlkioServiceBytes(blkio);
    return {
      cpuTimeNs: this.number("cpuacct", cgPath, "cpuacct.usage"),
      memoryCurrentBytes: this.number("memory", cgPath, "memory.usage_in_bytes"),
      memoryPeakBytes: this.number("memory", cgPath, "memory.max_usage_in_bytes"),
      ioReadBytes: io.readBytes,
      ioWriteBytes: io.writeBytes,
      oomKills: this.oomKills(cgPath),
      pids: this.number("pids", cgPath, "pids.current"),
    };
  }

  oomKills(cgPath: string): number {
    const dir = this.dirOf("memory", cgPath);
    return dir === undefined ? 0 : readKeyed(path.join(dir, "memory.oom_control"), "oom_kill");
  }

  pids(cgPath: string): number[] {
    // runc puts the job in every hierarchy, so any one lists its processes; prefer pids, then memory.
    const dirs = [this.dirOf("pids", cgPath), this.dirOf("memory", cgPath), ...this.allDirs(cgPath)];
    const dir = dirs.find((d) => d !== undefined && isDir(d));
    return dir === undefined ? [] : readPids(path.join(dir, "cgroup.procs"));
  }

  exists(cgPath: string): boolean {
    return this.allDirs(cgPath).some(isDir);
  }

  async remove(cgPath: string): Promise<void> {
    await removeCgroupDirs(cgPath, this.allDirs(cgPath));
  }

  ensureParent(parentPath: string): void {
    const segments = checkCgroupPath(parentPath).split("/").slice(1);
    for (const h of this.hierarchies) {
      let dir = h.dir;
      for (const segment of segments) {
        const parent = dir;
        dir = path.join(dir, segment);
        mkdirSync(dir, { recursive: true });
        // A new v1 cpuset cgroup starts with empty cpus and mems (unless cgroup.clone_children is set), and
        // the kernel refuses tasks and children with non-empty sets under it: copy the parent's.
        if (h.controllers.includes("cpuset")) {
          for (const name of ["cpuset.cpus", "cpuset.mems"]) copyIfEmpty(path.join(parent, name), path.join(dir, name));
        }
      }
    }
  }

  capabilities(): CgroupCapabilities {
    // memory.memsw.* exist in every memory cgroup, the root included, exactly when swap accounting is on.
    const memory = this.mountOf("memory");
    return {
      memorySwap: memory !== undefined && existsSync(path.join(memory, "memory.memsw.limit_in_bytes")),
      ioStatsNeedThrottleRule: true,
    };
  }
}

function copyIfEmpty(from: string, to: string): void {
  if ((readOptional(to) ?? "").trim() !== "") return;
  const value = (readOptional(from) ?? "").trim();
  if (value === "") return;
  try {
    writeFileSync(to, value);
  } catch (cause) {
    throw new JobletError("FAILED_PRECONDITION", `cannot copy ${JSON.stringify(value)} from ${from} to ${to}: ${(cause as Error).message}`, {
      cause,
    });
  }
}
