// The unified hierarchy (cgroup v2): one tree at the root, controllers handed down through each level's
// cgroup.subtree_control. Control files (Documentation/admin-guide/cgroup-v2.rst):
//   cpu.stat usage_usec, memory.current, memory.peak (Linux 5.19+), io.stat "MAJ:MIN rbytes=N wbytes=N ...",
//   memory.events oom_kill (hierarchical unless mounted with memory_localevents), pids.current, cgroup.procs.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { JobletError } from "../../shared/errors.js";
import { isDir, readKeyed, readNumber, readOptional, readPids } from "./files.js";
import { checkCgroupPath, type CgroupCapabilities, type CgroupManager, type CgroupStats } from "./manager.js";
import { removeCgroupDirs } from "./remove.js";

/** Controllers job cgroups need, in the order they are enabled; others (hugetlb, rdma, misc) are left alone. */
const JOB_CONTROLLERS = ["cpu", "cpuset", "memory", "io", "pids"];

/** Sums rbytes and wbytes over the devices of an io.stat file. */
export function parseIoStat(text: string): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of text.split("\n")) {
    for (const field of line.split(" ").slice(1)) {
      const [key, value] = field.split("=");
      if (key === "rbytes") readBytes += Number(value) || 0;
      else if (key === "wbytes") writeBytes += Number(value) || 0;
    }
  }
  return { readBytes, writeBytes };
}

/** Cgroup operations on a cgroup2 mount. */
export class V2CgroupManager implements CgroupManager {
  readonly mode = "v2" as const;
  /** The last parent prepared by ensureParent: where capabilities() looks for memory.swap.max. */
  private parentDir: string | undefined;

  /** @param root the cgroup2 mount point, e.g. "/sys/fs/cgroup". */
  constructor(readonly root: string) {}

  private dir(cgPath: string): string {
    return path.join(this.root, checkCgroupPath(cgPath));
  }

  stats(cgPath: string): CgroupStats | undefined {
    const dir = this.dir(cgPath);
    if (!isDir(dir)) return undefined;
    const io = parseIoStat(readOptional(path.join(dir, "io.stat")) ?? "");
    return {
      cpuTimeNs: readKeyed(path.join(dir, "cpu.stat"), "usage_usec") * 1000,
      memoryCurrentBytes: readNumber(path.join(dir, "memory.current")),
      memoryPeakBytes: readNumber(path.join(dir, "memory.peak")),
      ioReadBytes: io.readBytes,
      ioWriteBytes: io.writeBytes,
      oomKills: readKeyed(path.join(dir, "memory.events"), "oom_kill"),
      pids: readNumber(path.join(dir, "pids.current")),
    };
  }

  oomKills(cgPath: string): number {
    return readKeyed(path.join(this.dir(cgPath), "memory.events"), "oom_kill");
  }

  pids(cgPath: string): number[] {
    return readPids(path.join(this.dir(cgPath), "cgroup.procs"));
  }

  exists(cgPath: string): boolean {
    return isDir(this.dir(cgPath));
  }

  async remove(cgPath: string): Promise<void> {
    await removeCgroupDirs(cgPath, [this.dir(cgPath)]);
  }

  ensureParent(parentPath: string): void {
    const segments = checkCgroupPath(parentPath).split("/").slice(1);
    // A controller can be enabled in a cgroup's subtree_control only if its own parent enabled it, so go
    // from the root down: at each level create the directory, then enable what it has and jobs need.
    let dir = this.root;
    for (let i = 0; i <= segments.length; i++) {
      if (i > 0) {
        dir = path.join(dir, segments[i - 1]!);
        mkdirSync(dir, { recursive: true });
      }
      this.enableControllers(dir);
    }
    this.parentDir = dir;
  }

  private enableControllers(dir: string): void {
    const words = (file: string) => (readOptional(path.join(dir, file)) ?? "").trim().split(/\s+/).filter(Boolean);
    const available = new Set(words("cgroup.controllers"));
    const enabled = new Set(words("cgroup.subtree_control"));
    const wanted = JOB_CONTROLLERS.filter((c) => available.has(c) && !enabled.has(c));
    if (wanted.length === 0) return;
    const file = path.join(dir, "cgroup.subtree_control");
    const line = wanted.map((c) => `+${c}`).join(" ");
    try {
      writeFileSync(file, line);
    } catch (cause) {
      // EBUSY here means the cgroup has processes of its own (the no-internal-process rule of v2).
      throw new JobletError("FAILED_PRECONDITION", `cannot enable controllers "${line}" in ${file}: ${(cause as Error).message}`, {
        cause,
        hint: "the job parent cgroup and its ancestors (other than the root) must hold no processes of their own",
      });
    }
  }

  capabilities(): CgroupCapabilities {
    return {
      memorySwap: this.parentDir !== undefined && existsSync(path.join(this.parentDir, "memory.swap.max")),
      ioStatsNeedThrottleRule: false,
    };
  }
}
