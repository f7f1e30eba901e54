// Which cgroup layout this host has, decided once from the filesystem under the cgroup root:
//   v2     — the root is itself a cgroup2 mount (it has cgroup.controllers);
//   hybrid — v1 controller hierarchies plus a cgroup2 mount at root/unified (systemd's hybrid layout; the
//            unified mount may hold a few controllers, hugetlb on this CI machine, or none);
//   v1     — v1 controller hierarchies only.
// Hybrid hosts are run like v1 (the controllers that limit jobs are all on v1), but runc also creates the
// job's directory in the unified hierarchy, so cleanup must cover it.
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { JobletError } from "../../shared/errors.js";
import { readMountinfo } from "./mountinfo.js";

/** The cgroup layout of a host. */
export type CgroupMode = "v1" | "v2" | "hybrid";

/** One mounted v1 hierarchy: its directory and the controllers attached to it. */
export interface V1Hierarchy {
  /** Absolute mount point, e.g. "/sys/fs/cgroup/cpu,cpuacct". */
  dir: string;
  /** Controllers on this hierarchy ("cpu", "cpuacct", ...); named hierarchies appear as "name=systemd". */
  controllers: string[];
}

/** The v1 controllers the kernel knows (cgroup_subsys.h); anything else in super options is a mount option. */
const V1_CONTROLLERS = new Set([
  "cpuset",
  "cpu",
  "cpuacct",
  "io",
  "blkio",
  "memory",
  "devices",
  "freezer",
  "net_cls",
  "perf_event",
  "net_prio",
  "hugetlb",
  "pids",
  "rdma",
  "misc",
]);

/** Directory name of the cgroup2 mount in the hybrid layout. */
export const UNIFIED_DIR_NAME = "unified";

/** Directories directly under `root` that look like v1 hierarchies (not symlinks, have cgroup.procs). */
function scanV1Dirs(root: string): string[] {
  let entries;
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch (cause) {
    throw new JobletError("FAILED_PRECONDITION", `cannot read the cgroup root ${root}`, {
      cause,
      hint: "mount cgroupfs at /sys/fs/cgroup (cgroup2, or v1 controller hierarchies)",
    });
  }
  // Combined hierarchies usually come with symlinks (cpu -> cpu,cpuacct); skipping symlinks counts each
  // hierarchy once, under its real name.
  return entries
    .filter((e) => e.isDirectory() && e.name !== UNIFIED_DIR_NAME && existsSync(path.join(root, e.name, "cgroup.procs")))
    .map((e) => path.join(root, e.name))
    .sort();
}

/** Decides the cgroup layout from the files under `root`; throws FAILED_PRECONDITION when there is none. */
export function detectCgroupMode(root = "/sys/fs/cgroup"): CgroupMode {
  if (existsSync(path.join(root, "cgroup.controllers"))) return "v2";
  const v1Dirs = scanV1Dirs(root);
  const unified = existsSync(path.join(root, UNIFIED_DIR_NAME, "cgroup.controllers"));
  if (v1Dirs.length > 0) return unified ? "hybrid" : "v1";
  throw new JobletError("FAILED_PRECONDITION", `no cgroup hierarchy under ${root}: no cgroup.controllers and no v1 controller directories`, {
    hint: "mount cgroupfs at /sys/fs/cgroup (cgroup2, or v1 controller hierarchies)",
  });
}

/**
 * The v1 hierarchies mounted under `root`. Read from mountinfo (the super options name each hierarchy's
 * controllers, whatever its directory is called); when mountinfo shows no cgroup mount under `root` (a
 * fake tree in tests, or a container whose mountinfo is unusual), each directory under `root` with a
 * cgroup.procs is a hierarchy whose name lists its controllers ("cpu,cpuacct").
 */
export function findV1Hierarchies(root = "/sys/fs/cgroup", mountinfoPath = "/proc/self/mountinfo"): V1Hierarchy[] {
  const prefix = root.endsWith("/") ? root : `${root}/`;
  const byDevice = new Map<string, V1Hierarchy>();
  for (const m of readMountinfo(mountinfoPath)) {
    if (m.fsType !== "cgroup" || !m.mountPoint.startsWith(prefix)) continue;
    // One hierarchy mounted twice has one superblock, so one device number: keep the first mount point.
    const key = `${m.major}:${m.minor}`;
    if (byDevice.has(key)) continue;
    const controllers = m.superOptions.filter((o) => V1_CONTROLLERS.has(o) || o.startsWith("name="));
    byDevice.set(key, { dir: m.mountPoint, controllers });
  }
  if (byDevice.size > 0) return [...byDevice.values()].sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0)); // not localeCompare: it loads ICU's collation data (~2.7 MiB)
  return scanV1Dirs(root).map((dir) => ({ dir, controllers: path.basename(dir).split(",").filter((c) => c !== "") }));
}
