// Freeing a range of a file without changing its size or any other byte position: fallocate(2) with
// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE. Node has no binding for it, so util-linux's fallocate(1) does
// it (a ~2 ms process start per punch; punches are rare). A punched range reads as zeros. Only whole
// filesystem blocks are freed; a range is aligned inward to PUNCH_ALIGN_BYTES so that no partial block is
// zeroed in place (which would cost writes and free nothing).
import { execFile } from "node:child_process";
import { open, rm, stat } from "node:fs/promises";
import path from "node:path";
import { JobletError } from "../../shared/errors.js";

/** Alignment of punched ranges: the 4 KiB block size of ext4/xfs and the page size on x86-64. */
export const PUNCH_ALIGN_BYTES = 4096;

/** The block-aligned part of [start, end) (empty when it holds no whole block): [alignUp(start), alignDown(end)). */
export function alignedInside(start: number, end: number): { start: number; end: number } {
  const s = Math.ceil(start / PUNCH_ALIGN_BYTES) * PUNCH_ALIGN_BYTES;
  const e = Math.floor(end / PUNCH_ALIGN_BYTES) * PUNCH_ALIGN_BYTES;
  return e > s ? { start: s, end: e } : { start: s, end: s };
}

/** Punches the block-aligned part of file bytes [start, end) of `filePath`; its size stays the same. */
export async function punchHole(filePath: string, start: number, end: number): Promise<void> {
  const r = alignedInside(start, end);
  if (r.end <= r.start) return;
  const args = ["--punch-hole", "--keep-size", "--offset", String(r.start), "--length", String(r.end - r.start), filePath];
  await new Promise<void>((resolve, reject) => {
    execFile("fallocate", args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err === null) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
      reject(
        new JobletError(
          missing ? "FAILED_PRECONDITION" : "INTERNAL",
          `log file ${filePath}: expected \`fallocate ${args.join(" ")}\` to free bytes [${r.start}, ${r.end}), got ${
            missing ? "no fallocate command" : (stderr.trim() || err.message)
          }`,
          { hint: missing ? "install util-linux (it provides fallocate(1))" : undefined, cause: err },
        ),
      );
    });
  });
}

const supported = new Map<string, Promise<void>>();

/**
 * Checks once per directory (per process) that files in `dir` can have holes punched and that doing so
 * frees blocks; rejects with FAILED_PRECONDITION otherwise. Retention calls it before it records any hole,
 * so a filesystem without support never ends up with output marked dropped that still uses the disk.
 */
export function checkPunchSupport(dir: string): Promise<void> {
  let p = supported.get(dir);
  if (p === undefined) {
    p = probe(dir);
    supported.set(dir, p);
    p.catch(() => supported.delete(dir)); // retried next time: the directory may be remounted or fixed
  }
  return p;
}

async function probe(dir: string): Promise<void> {
  const file = path.join(dir, `.joblet-punch-probe-${process.pid}`);
  const blocks = 4;
  try {
    const fh = await open(file, "w", 0o600);
    try {
      await fh.write(Buffer.alloc(blocks * PUNCH_ALIGN_BYTES, 0x78));
      await fh.sync();
    } finally {
      await fh.close();
    }
    const before = (await stat(file)).blocks;
    try {
      await punchHole(file, PUNCH_ALIGN_BYTES, (blocks - 1) * PUNCH_ALIGN_BYTES);
    } catch (err) {
      if (err instanceof JobletError && err.code === "FAILED_PRECONDITION") throw err;
      throw new JobletError(
        "FAILED_PRECONDITION",
        `log directory ${dir}: expected a filesystem that can punch holes in files (ext4, xfs, btrfs, tmpfs), got ${(err as Error).message}`,
        { hint: "put the daemon's state directory on such a filesystem, or turn the log size limits off", cause: err },
      );
    }
    const after = (await stat(file)).blocks;
    if (after >= before) {
      throw new JobletError(
        "FAILED_PRECONDITION",
        `log directory ${dir}: expected punching a hole to free blocks, got ${before} blocks of 512 bytes before and ${after} after`,
        { hint: "put the daemon's state directory on ext4, xfs, btrfs or tmpfs" },
      );
    }
  } finally {
    await rm(file, { force: true });
  }
}
