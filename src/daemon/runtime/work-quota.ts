// A size cap on a job's /work (filesystem.workSizeMB): the work dir is the mount point of an ext4 file system
// of its own, kept in a sparse image file next to it and mounted through a loop device. A job that fills it
// gets ENOSPC there; the file system holding the jobs dir, the state dir, SQLite and the logs keeps its space.
//
// Nothing about the volumes is kept in memory: whether a work dir is mounted is read from
// /proc/self/mountinfo each time, so a restarted daemon unmounts what an earlier one mounted (the mounts live
// in the daemon's mount namespace, the host's under systemd, and outlive the process).
//
// Costs measured on a loaded 2-core VM (kernel 6.18, e2fsprogs 1.47, util-linux 2.38): mkfs.ext4 of a 1 GiB
// image ~16 ms, `mount -t ext4 -o loop` ~16 ms (without -t, blkid probing adds ~11 ms), umount ~16 ms; the
// image starts at ~100–800 KiB on disk. Almost all of it is process start-up, not kernel work.
import { execFileSync } from "node:child_process";
import { accessSync, chmodSync, chownSync, constants, readFileSync, rmdirSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { JobletError } from "../../shared/errors.js";
import { run } from "./exec.js";

/** How long one mkfs, mount or umount may take, ms; they take tens of ms. */
const PROGRAM_TIMEOUT_MS = 30_000;
const RUN_OPTS = { timeoutMs: PROGRAM_TIMEOUT_MS, code: "FAILED_PRECONDITION" } as const;
/** Where to look for the programs besides the daemon's PATH (which may lack the sbin dirs). */
const SYSTEM_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/**
 * mkfs.ext4 options, each chosen for a scratch file system that is made for one job and thrown away:
 * - `-m 0`: no blocks reserved for uid 0. The reserve serves only host root (s_resuid 0) or CAP_SYS_RESOURCE
 *   in the initial user namespace, which a job never has, so with a reserve the job would get 5% less and
 *   nobody would use the rest;
 * - `^has_journal`: no journal to write (and no 4+ MiB of it on small images); after a host crash the data
 *   of a job's scratch space may be inconsistent, which is acceptable;
 * - `^resize_inode`: no blocks kept for online growth, which never happens;
 * - `lazy_itable_init=1`: inode tables are not zeroed (the uninit_bg/metadata_csum flags say which are
 *   unused, and mount's `noinit_itable` stops the kernel zeroing them later);
 * - `nodiscard`: no discard of a fresh sparse file, which holds nothing to discard.
 * The inode count stays mke2fs's default for the size (1 per 4 KiB below 512 MiB, 1 per 16 KiB above): fewer
 * inodes measured no faster, and many small files (a node_modules) must fit.
 */
const MKFS_ARGS = ["-q", "-F", "-m", "0", "-O", "^has_journal,^resize_inode", "-E", "lazy_itable_init=1,nodiscard"];
/** nosuid, nodev: nothing on a job's volume gains privileges on the host; -t ext4 skips probing. */
const MOUNT_OPTIONS = "loop,nosuid,nodev,noatime,noinit_itable";

/** The size of a job's work volume and who owns its root. */
export interface WorkVolumeOptions {
  /** Size of the file system, bytes (> 0). */
  sizeBytes: number;
  /** Host uid and gid of the job's root, which owns the file system's root directory. */
  uid: number;
  gid: number;
}

/** The programs volumes need, resolved to absolute paths. */
export interface WorkVolumePrograms {
  mkfs: string;
  mount: string;
  umount: string;
}

/**
 * Finds mkfs.ext4, mount and umount; throws FAILED_PRECONDITION naming filesystem.workSizeMB when one is
 * missing, so a daemon configured with a /work cap refuses to start instead of failing every job.
 * `systemDirs` are searched after `searchPath`.
 */
export function findWorkVolumePrograms(searchPath = process.env.PATH ?? "", systemDirs: readonly string[] = SYSTEM_DIRS): WorkVolumePrograms {
  const dirs = [...searchPath.split(":").filter((d) => d.startsWith("/")), ...systemDirs];
  const find = (name: string, pkg: string): string => {
    for (const dir of dirs) {
      const file = path.join(dir, name);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // try the next directory
      }
    }
    throw new JobletError("FAILED_PRECONDITION", `filesystem.workSizeMB is set, so each job's /work is an ext4 image, but ${name} is not installed (looked in ${dirs.join(":")})`, {
      hint: `install the Debian package ${pkg}, or set filesystem.workSizeMB: 0 for no /work size cap`,
    });
  };
  return { mkfs: find("mkfs.ext4", "e2fsprogs"), mount: find("mount", "mount"), umount: find("umount", "mount") };
}

/**
 * Makes `dir` the mount point of a new, empty ext4 file system of `opts.sizeBytes` kept in the sparse file
 * `imagePath` (replaced if it exists): root owned by `opts.uid`/`opts.gid`, mode 0755, no lost+found. On
 * failure nothing is left mounted, the image is deleted, and the error (FAILED_PRECONDITION) names
 * filesystem.workSizeMB and what the program said.
 */
export async function mountWorkVolume(imagePath: string, dir: string, opts: WorkVolumeOptions, programs: WorkVolumePrograms): Promise<void> {
  const sizeMB = Math.round(opts.sizeBytes / (1024 * 1024));
  let step = "creating the image file";
  try {
    // A sparse file: it takes disk space only as the job writes, up to sizeBytes.
    const handle = await open(imagePath, "w", 0o600);
    try {
      await handle.truncate(opts.sizeBytes);
    } finally {
      await handle.close();
    }
    step = "mkfs.ext4";
    await run(programs.mkfs, [...MKFS_ARGS, imagePath], RUN_OPTS);
    step = "mounting it through a loop device";
    await run(programs.mount, ["-t", "ext4", "-o", MOUNT_OPTIONS, imagePath, dir], RUN_OPTS);
    step = "preparing its root directory";
    chownSync(dir, opts.uid, opts.gid);
    chmodSync(dir, 0o755);
    // e2fsck's lost+found is of no use on a scratch volume and would be a root-owned entry in the job's /work.
    rmdirSync(path.join(dir, "lost+found"));
  } catch (cause) {
    if (isMountPoint(dir)) await unmountWorkVolume(dir, programs).catch(() => undefined);
    rmSync(imagePath, { force: true });
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new JobletError("FAILED_PRECONDITION", `filesystem.workSizeMB: could not give the job a ${sizeMB} MiB /work (${step} failed): ${detail}`, {
      cause,
      hint: "check that the kernel has loop devices (`losetup -f` prints one; `modprobe loop`) and ext4, and that the jobs dir's disk has space; or set filesystem.workSizeMB: 0",
    });
  }
}

/** Unmounts the volume at `dir` if one is mounted there; a busy one is detached lazily (`umount -l`). */
export async function unmountWorkVolume(dir: string, programs: Pick<WorkVolumePrograms, "umount">): Promise<void> {
  if (!isMountPoint(dir)) return;
  try {
    await run(programs.umount, [dir], RUN_OPTS);
  } catch {
    // Busy: a host process has a file open in it. Detached now, the file system (and with the loop
    // device's autoclear flag, the loop device) goes when the last user does.
    await run(programs.umount, ["-l", dir], RUN_OPTS);
  }
}

/**
 * unmountWorkVolume for synchronous callers; blocks for one umount (~16 ms), which only happens when a job is
 * deleted while its volume is still mounted (normally the volume is unmounted when its container goes).
 */
export function unmountWorkVolumeSync(dir: string, programs: Pick<WorkVolumePrograms, "umount">): void {
  if (!isMountPoint(dir)) return;
  const run = (args: string[]) => execFileSync(programs.umount, args, { timeout: PROGRAM_TIMEOUT_MS, stdio: ["ignore", "ignore", "pipe"] });
  try {
    run([dir]);
  } catch {
    try {
      run(["-l", dir]);
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? (err as Error).message;
      throw new JobletError("INTERNAL", `umount -l ${dir} failed: ${stderr}`, { cause: err });
    }
  }
}

/** Whether `dir` is a mount point in this process's mount namespace, from /proc/self/mountinfo. */
export function isMountPoint(dir: string, mountinfoPath = "/proc/self/mountinfo"): boolean {
  const target = path.resolve(dir);
  return mountPoints(readFileSync(mountinfoPath, "utf8")).includes(target);
}

/**
 * The mount points listed in mountinfo text (proc(5): the fifth field; space, tab, newline and backslash are
 * escaped as octal, e.g. \040).
 */
export function mountPoints(mountinfo: string): string[] {
  const points: string[] = [];
  for (const line of mountinfo.split("\n")) {
    const field = line.split(" ")[4];
    if (field) points.push(field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8))));
  }
  return points;
}
