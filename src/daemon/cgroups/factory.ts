// The one place that chooses a cgroup implementation (as opencontainers/cgroups' manager/new.go does): the
// layout is detected once, and everything above this folder sees only the CgroupManager interface.
import path from "node:path";
import { detectCgroupMode, findV1Hierarchies, UNIFIED_DIR_NAME } from "./detect.js";
import type { CgroupManager } from "./manager.js";
import { V1CgroupManager } from "./v1.js";
import { V2CgroupManager } from "./v2.js";

/** Where to look for cgroups; the defaults are the host's. Tests point these at fake trees. */
export interface CgroupManagerOptions {
  /** The cgroup mount root, default "/sys/fs/cgroup". */
  root?: string;
  /** The mountinfo file that locates v1 hierarchies, default "/proc/self/mountinfo". */
  mountinfoPath?: string;
}

/** Detects the host's cgroup layout once and returns the manager for it. */
export function createCgroupManager(opts: CgroupManagerOptions = {}): CgroupManager {
  const root = opts.root ?? "/sys/fs/cgroup";
  const mode = detectCgroupMode(root);
  if (mode === "v2") return new V2CgroupManager(root);
  const hierarchies = findV1Hierarchies(root, opts.mountinfoPath ?? "/proc/self/mountinfo");
  const extraDirs = mode === "hybrid" ? [path.join(root, UNIFIED_DIR_NAME)] : [];
  return new V1CgroupManager(mode, hierarchies, extraDirs);
}
