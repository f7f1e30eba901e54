// Real volumes: these tests run mkfs.ext4, mount and umount (as root, with loop devices), as the daemon does.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, test } from "node:test";
import { JobletError } from "../../shared/errors.js";
import { findWorkVolumePrograms, isMountPoint, mountPoints, mountWorkVolume, unmountWorkVolume, unmountWorkVolumeSync, type WorkVolumeOptions } from "./work-quota.js";

const MiB = 1024 * 1024;
const OPTS: WorkVolumeOptions = { sizeBytes: 16 * MiB, uid: 100_000, gid: 100_000 };
const programs = findWorkVolumePrograms();

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "work-quota-test-"));
});

afterEach(() => {
  // Whatever a failed test left mounted must not keep a loop device or be deleted through.
  for (const p of mountPoints(execFileSync("cat", ["/proc/self/mountinfo"], { encoding: "utf8" }))) {
    if (p.startsWith(dir + "/")) execFileSync("umount", ["-l", p]);
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Loop devices backed by `image`, one line each, also after it was deleted (then `losetup -a` adds "(deleted)"). */
function loopDevicesOf(image: string): string[] {
  return execFileSync("losetup", ["-a"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(`(${image})`) || l.includes(`(${image} (deleted))`));
}

/** Waits until `image` backs no loop device (autoclear detaches it once the file system is gone). */
async function waitNoLoop(image: string, timeoutMs = 5_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let left = loopDevicesOf(image);
  while (left.length && Date.now() < deadline) {
    await sleep(20);
    left = loopDevicesOf(image);
  }
  return left;
}

/** Writes 1 MiB blocks into `file` until the file system is full; returns the bytes written and the error. */
function fill(file: string, maxBytes: number): { bytes: number; code: string | undefined } {
  const block = Buffer.alloc(MiB, 0x5a);
  const fd = openSync(file, "w");
  let bytes = 0;
  try {
    while (bytes < maxBytes) bytes += writeSync(fd, block);
    return { bytes, code: undefined };
  } catch (err) {
    return { bytes, code: (err as NodeJS.ErrnoException).code };
  } finally {
    closeSync(fd);
  }
}

test("a volume is an empty ext4 file system of the size, root owned by the job's root (0755), in a sparse image", async () => {
  const work = path.join(dir, "work");
  const image = path.join(dir, "work.img");
  mkdirSync(work);
  writeFileSync(path.join(work, "hidden-by-the-mount"), "x");
  await mountWorkVolume(image, work, OPTS, programs);
  assert.ok(isMountPoint(work));
  const s = statSync(work);
  assert.deepEqual([s.uid, s.gid, s.mode & 0o7777], [OPTS.uid, OPTS.gid, 0o755]);
  assert.deepEqual(readdirSync(work), [], "lost+found or the old contents are visible");
  const fs = statfsSync(work);
  const totalBytes = fs.blocks * fs.bsize;
  assert.ok(totalBytes > 14 * MiB && totalBytes <= 16 * MiB, `file system size ${totalBytes}`);
  // -m 0: nothing is reserved for host root (the free space statfs shows only lacks ext4's ~2% kept for
  // its own metadata, which no user gets).
  assert.match(execFileSync("dumpe2fs", ["-h", image], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }), /^Reserved block count:\s+0$/m);
  assert.ok(fs.bavail / fs.bfree > 0.95, `${fs.bavail} of ${fs.bfree} free blocks available`);
  const img = statSync(image);
  assert.equal(img.size, OPTS.sizeBytes);
  assert.equal(img.mode & 0o777, 0o600);
  assert.ok(img.blocks * 512 < 2 * MiB, `the fresh image takes ${img.blocks * 512} bytes on disk`);
  const mountinfo = execFileSync("cat", ["/proc/self/mountinfo"], { encoding: "utf8" }).split("\n").find((l) => l.split(" ")[4] === work)!;
  assert.match(mountinfo, /\bnosuid\b/);
  assert.match(mountinfo, /\bnodev\b/);
  assert.match(mountinfo, / - ext4 \/dev\/loop\d+ /);
  assert.equal(loopDevicesOf(image).length, 1);
  await unmountWorkVolume(work, programs);
  assert.ok(!isMountPoint(work));
  assert.deepEqual(readdirSync(work), ["hidden-by-the-mount"]);
  assert.deepEqual(await waitNoLoop(image), [], "the loop device outlived the unmount");
});

test("writing more than the size fails with ENOSPC near the size; the host file system loses at most the size", async () => {
  const work = path.join(dir, "work");
  const image = path.join(dir, "work.img");
  mkdirSync(work);
  await mountWorkVolume(image, work, OPTS, programs);
  const r = fill(path.join(work, "big"), 64 * MiB);
  execFileSync("sync", ["-f", image]);
  assert.equal(r.code, "ENOSPC", `wrote ${r.bytes} bytes without ENOSPC`);
  assert.ok(r.bytes >= 12 * MiB && r.bytes <= 16 * MiB, `wrote ${r.bytes} bytes`);
  // What the host gave: the image's allocated blocks (the host's free space would also count every other
  // writer on a shared disk, and made this test flaky under load).
  const usedBytes = statSync(image).blocks * 512;
  assert.ok(usedBytes < 24 * MiB, `the image takes ${usedBytes} bytes of the host's disk`);
  assert.ok(statSync(image).blocks * 512 <= 17 * MiB, `the image grew to ${statSync(image).blocks * 512} bytes on disk`);
  // The data stays in the image after the unmount, and a remount shows it.
  await unmountWorkVolume(work, programs);
  execFileSync("mount", ["-t", "ext4", "-o", "loop,ro", image, work]);
  assert.equal(statSync(path.join(work, "big")).size, r.bytes);
  execFileSync("umount", [work]);
});

test("a busy volume is detached lazily; its loop device goes when the last file closes", async () => {
  const work = path.join(dir, "work");
  const image = path.join(dir, "work.img");
  mkdirSync(work);
  await mountWorkVolume(image, work, OPTS, programs);
  const fd = openSync(path.join(work, "open"), "w");
  try {
    await unmountWorkVolume(work, programs);
    assert.ok(!isMountPoint(work));
    assert.equal(loopDevicesOf(image).length, 1, "the file system went while a file on it was open");
  } finally {
    closeSync(fd);
  }
  assert.deepEqual(await waitNoLoop(image), []);
});

test("unmountWorkVolumeSync unmounts; both unmounts are no-ops on a plain directory", async () => {
  const work = path.join(dir, "work");
  const image = path.join(dir, "work.img");
  mkdirSync(work);
  await mountWorkVolume(image, work, OPTS, programs);
  unmountWorkVolumeSync(work, programs);
  assert.ok(!isMountPoint(work));
  unmountWorkVolumeSync(work, programs);
  await unmountWorkVolume(work, programs);
  assert.deepEqual(await waitNoLoop(image), []);
});

test("a failed mount names filesystem.workSizeMB and leaves no image, mount or loop device", async () => {
  const work = path.join(dir, "work");
  const image = path.join(dir, "work.img");
  mkdirSync(work);
  const err = await mountWorkVolume(image, work, OPTS, { ...programs, mount: "/bin/false" }).then(
    () => assert.fail("the mount was reported as done"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof JobletError);
  assert.equal(err.code, "FAILED_PRECONDITION");
  assert.match(err.message, /^filesystem\.workSizeMB: could not give the job a 16 MiB \/work \(mounting it through a loop device failed\)/);
  assert.ok(err.hint?.includes("filesystem.workSizeMB: 0"));
  assert.ok(!existsSync(image));
  assert.ok(!isMountPoint(work));
  // A file system too small for ext4 fails in mkfs the same way.
  const tiny = await mountWorkVolume(image, work, { ...OPTS, sizeBytes: 4096 }, programs).then(
    () => assert.fail("a 4 KiB volume was made"),
    (e: unknown) => e as JobletError,
  );
  assert.match(tiny.message, /\(mkfs\.ext4 failed\)/);
  assert.ok(!existsSync(image));
});

test("eight volumes mounted at once each get their own loop device", async () => {
  const works = Array.from({ length: 8 }, (_, i) => path.join(dir, `w${i}`));
  for (const w of works) mkdirSync(w);
  await Promise.all(works.map((w) => mountWorkVolume(`${w}.img`, w, OPTS, programs)));
  const devices = works.map((w) => loopDevicesOf(`${w}.img`));
  for (const d of devices) assert.equal(d.length, 1);
  assert.equal(new Set(devices.map((d) => d[0]!.split(":")[0])).size, 8);
  await Promise.all(works.map((w) => unmountWorkVolume(w, programs)));
  for (const w of works) assert.deepEqual(await waitNoLoop(`${w}.img`), []);
});

test("findWorkVolumePrograms finds the sbin programs without them on PATH, and names the key when one is missing", () => {
  const found = findWorkVolumePrograms("");
  assert.ok(found.mkfs.endsWith("/mkfs.ext4") && found.mount.endsWith("/mount") && found.umount.endsWith("/umount"), JSON.stringify(found));
  const err = (() => {
    try {
      findWorkVolumePrograms("/nonexistent", []);
    } catch (e) {
      return e as JobletError;
    }
    return assert.fail("programs were found in /nonexistent");
  })();
  assert.equal(err.code, "FAILED_PRECONDITION");
  assert.match(err.message, /^filesystem\.workSizeMB is set.*mkfs\.ext4 is not installed/);
  assert.match(err.hint ?? "", /e2fsprogs/);
});

test("mountPoints reads the fifth field of mountinfo and undoes its octal escapes", () => {
  const text = [
    "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
    "40 35 7:3 / /var/lib/joblet/jobs/with\\040space/work rw,nosuid,nodev - ext4 /dev/loop3 rw",
    "",
  ].join("\n");
  assert.deepEqual(mountPoints(text), ["/mnt2", "/var/lib/joblet/jobs/with space/work"]);
});
