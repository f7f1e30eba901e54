// /proc/self/mountinfo, as described in proc(5):
//   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//   (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
// Field 7 is zero or more optional fields ended by a lone "-". Paths escape space, tab, newline and
// backslash as octal (\040, \011, \012, \134).
import { readFileSync } from "node:fs";

/** One mount as seen by this process. */
export interface MountInfo {
  /** Device number of the mounted filesystem (st_dev of files on it). */
  major: number;
  minor: number;
  /** The directory of the filesystem that is mounted here ("/" unless a bind mount or cgroup namespace). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-superblock options; for cgroup v1 these name the hierarchy's controllers. */
  superOptions: string[];
}

function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses mountinfo text; lines that do not have the documented shape are skipped. */
export function parseMountinfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const sep = fields.indexOf("-", 6);
    if (sep < 0 || fields.length < sep + 4) continue;
    const dev = /^(\d+):(\d+)$/.exec(fields[2]!);
    if (!dev) continue;
    mounts.push({
      major: Number(dev[1]),
      minor: Number(dev[2]),
      root: unescape(fields[3]!),
      mountPoint: unescape(fields[4]!),
      fsType: fields[sep + 1]!,
      source: unescape(fields[sep + 2]!),
      superOptions: fields[sep + 3]!.split(","),
    });
  }
  return mounts;
}

/** Reads and parses a mountinfo file; an unreadable file gives [] (callers fall back to scanning). */
export function readMountinfo(file = "/proc/self/mountinfo"): MountInfo[] {
  try {
    return parseMountinfo(readFileSync(file, "utf8"));
  } catch {
    return [];
  }
}
