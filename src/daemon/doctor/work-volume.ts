// The /work size cap (filesystem.workSizeMB): with a cap, each job's /work is an ext4 volume in a sparse image
// mounted through a loop device. The check makes and mounts one volume of the configured size on the jobs
// dir's file system, as a job start does, and removes it again.
import { mkdirSync, mkdtempSync, rmSync, statfsSync } from "node:fs";
import path from "node:path";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { findWorkVolumePrograms, isMountPoint, mountWorkVolume, unmountWorkVolume, type WorkVolumePrograms } from "../runtime/work-quota.js";
import { existingAncestor } from "./cgroups.js";
import { failFrom, formatBytes, ok, warn, type CheckResult } from "./check.js";

const ID = "work.volume";
const TITLE = "/work size cap";

/**
 * Checks that a job's work volume can be made and mounted; with no cap, says what a job may fill instead.
 * `searchPath` and `systemDirs` are where the programs are looked for (tests hide them).
 */
export async function checkWorkVolume(config: DaemonConfig, searchPath = process.env.PATH ?? "", systemDirs?: readonly string[]): Promise<CheckResult> {
  const jobsFs = existingAncestor(config.jobsDir);
  if (config.limits.workSizeBytes === 0) {
    return ok(ID, TITLE, `off (filesystem.workSizeMB: 0): a job's /work is limited only by the free space of the file system holding ${jobsFs}`);
  }
  let programs: WorkVolumePrograms;
  try {
    programs = findWorkVolumePrograms(searchPath, systemDirs);
  } catch (err) {
    return failFrom(ID, TITLE, err, "install e2fsprogs, or set filesystem.workSizeMB: 0");
  }
  // On the jobs dir's file system, where the daemon keeps the images: a loop device over tmpfs or overlayfs
  // behaves differently from one over ext4 or xfs.
  const dir = mkdtempSync(path.join(jobsFs, ".joblet-doctor-volume-"));
  const work = path.join(dir, "work");
  try {
    mkdirSync(work);
    const started = performance.now();
    const owner = config.idMapBase ?? 0;
    await mountWorkVolume(path.join(dir, "work.img"), work, { sizeBytes: config.limits.workSizeBytes, uid: owner, gid: owner }, programs);
    const ms = Math.round(performance.now() - started);
    await unmountWorkVolume(work, programs);
    const fs = statfsSync(jobsFs);
    const freeBytes = fs.bavail * fs.bsize;
    const found = `each job's /work is a ${formatBytes(config.limits.workSizeBytes)} ext4 volume (a sparse image in the jobs dir, loop-mounted); making and mounting one took ${ms} ms`;
    if (freeBytes < config.limits.workSizeBytes) {
      return warn(
        ID,
        TITLE,
        `${found}, but the file system holding ${jobsFs} has only ${formatBytes(freeBytes)} free`,
        "the images are sparse and fill as jobs write: free space there or lower filesystem.workSizeMB, or one job can still fill that file system",
      );
    }
    return ok(ID, TITLE, found);
  } catch (err) {
    return failFrom(ID, TITLE, err, "check loop devices (`losetup -f`, `modprobe loop`) and ext4 support, or set filesystem.workSizeMB: 0");
  } finally {
    await unmountWorkVolume(work, programs).catch(() => undefined);
    // Never delete through a volume that is still mounted: that would only empty it.
    if (!isMountPoint(work)) rmSync(dir, { recursive: true, force: true });
  }
}
