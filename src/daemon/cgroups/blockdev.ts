// Which disk to throttle for a job's I/O limit. blkio.throttle.* (v1) and io.max (v2) take a device number;
// the kernel rejects a partition's number for them, so the limit must name the whole disk that holds the
// jobs' filesystem.
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import { JobletError } from "../../shared/errors.js";
import { readMountinfo } from "./mountinfo.js";

/** A block device by number and kernel name ("vda", "sda", "nvme0n1", "dm-0"). */
export interface BlockDevice {
  major: number;
  minor: number;
  name: string;
}

/** Stacked devices (dm over dm over a partition) are followed at most this deep; real stacks are 1–3. */
const MAX_STACK_DEPTH = 8;

/**
 * Splits a Linux dev_t into major and minor as glibc's gnu_dev_major/gnu_dev_minor do: major = bits 8–19
 * and 44–63, minor = bits 0–7 and 20–43. The masks are 32-bit (0xfffff000, 0xffffff00), as in C; with
 * BigInt's unbounded `~0xff` the minor would pick up the major's high bits.
 */
export function decodeDev(dev: bigint): { major: number; minor: number } {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

function readDevFile(dir: string): { major: number; minor: number } {
  const file = path.join(dir, "dev");
  const text = readFileSync(file, "utf8").trim();
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m) throw new JobletError("INTERNAL", `${file}: expected "MAJOR:MINOR", got ${JSON.stringify(text)}`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Resolves a sysfs block device directory to the device whose number the I/O controllers accept. */
function resolveDir(dir: string, depth: number): BlockDevice {
  // A partition is a subdirectory of its disk in sysfs (…/block/vda/vda1) and has a `partition` file.
  if (existsSync(path.join(dir, "partition"))) dir = path.dirname(dir);
  // A stacked device (device-mapper such as LVM or dm-crypt) with exactly one lower device is followed down
  // to it; with several (striped LVM, RAID) the stacked device itself is used: throttling works on dm.
  const slaves = listDir(path.join(dir, "slaves"));
  if (slaves.length === 1 && depth < MAX_STACK_DEPTH) {
    return resolveDir(realpathSync(path.join(dir, "slaves", slaves[0]!)), depth + 1);
  }
  return { ...readDevFile(dir), name: path.basename(dir) };
}

/**
 * The whole disk behind a device number, via `<sysRoot>/dev/block/MAJOR:MINOR`: a partition resolves to its
 * disk, a device-mapper device with one lower device to that device's disk.
 */
export function resolveBlockDevice(major: number, minor: number, sysRoot = "/sys"): BlockDevice {
  const link = path.join(sysRoot, "dev/block", `${major}:${minor}`);
  let dir: string;
  try {
    dir = realpathSync(link);
  } catch (cause) {
    throw new JobletError("FAILED_PRECONDITION", `block device ${major}:${minor} has no entry ${link}`, {
      cause,
      hint: "is /sys mounted? I/O limits need the device's sysfs entry",
    });
  }
  return resolveDir(dir, 0);
}

/**
 * The whole disk that holds the filesystem of `dirPath`, for I/O limits. Throws FAILED_PRECONDITION when
 * that filesystem has no block device of its own (major 0: tmpfs, overlay, NFS, btrfs).
 */
export function blockDeviceFor(dirPath: string, sysRoot = "/sys", mountinfoPath = "/proc/self/mountinfo"): BlockDevice {
  const { major, minor } = decodeDev(statSync(dirPath, { bigint: true }).dev);
  if (major === 0) {
    // Anonymous device numbers (major 0) belong to filesystems without a block device, or, for btrfs, to
    // a subvolume whose disks the I/O controllers cannot be pointed at through this number.
    const mount = readMountinfo(mountinfoPath)
      .filter((m) => m.major === major && m.minor === minor)
      .pop();
    const fs = mount ? `${mount.fsType} (mounted at ${mount.mountPoint})` : "a filesystem";
    throw new JobletError(
      "FAILED_PRECONDITION",
      `I/O limits need a block device, but ${dirPath} is on ${fs} with device number ${major}:${minor}, which has no backing disk`,
      { hint: "put the state dir / jobs dir on a block-device filesystem (ext4, xfs) to use --max-iobps" },
    );
  }
  return resolveBlockDevice(major, minor, sysRoot);
}
