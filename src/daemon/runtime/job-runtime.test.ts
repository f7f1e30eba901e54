// prepareWorkDir runs on work dirs that hold client uploads (symlinks included): it must never follow a link.
// The same tests run on a plain work dir and on a /work volume (filesystem.workSizeMB); the volume's own
// life (mounted once, unmounted by remove and forget, also by a restarted daemon) is tested after them.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, statfsSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { JobletError } from "../../shared/errors.js";
import { newJobId } from "../../shared/ids.js";
import { JobRuntime } from "./job-runtime.js";
import { isMountPoint, mountPoints } from "./work-quota.js";

/** Host uid/gid of the jobs' root in these tests (the daemon's default security.idMapBase). */
const JOB_UID = 100_000;
const MiB = 1024 * 1024;
/** The /work cap of the volume runs. */
const WORK_SIZE_BYTES = 8 * MiB;

let dir: string;
let sentinel: string;
let runtime: JobRuntime;

/** A runtime on this test's temp dir, as the daemon makes one; `workSizeBytes` 0 = no /work cap. */
function newRuntime(workSizeBytes: number): JobRuntime {
  return new JobRuntime({
    stateDir: path.join(dir, "state"),
    // Its own dir, as with state.runDir on a tmpfs: nothing of the runtime may assume it sits in the state dir.
    runDir: path.join(dir, "run"),
    jobsDir: path.join(dir, "jobs"),
    runtimePath: "runc",
    conmonPath: "conmon",
    hostFs: { rootfsDir: path.join(dir, "rootfs"), etcDir: path.join(dir, "etc"), extraRoBinds: [] },
    tmpBytes: MiB,
    idMap: { hostUid: JOB_UID, hostGid: JOB_UID, size: 65_536 },
    workSizeBytes,
  });
}

function setUp(workSizeBytes: number): void {
  dir = mkdtempSync(path.join(os.tmpdir(), "job-runtime-test-"));
  // A host directory an uploaded symlink points at: owned by root, mode 0700, one file.
  sentinel = path.join(dir, "sentinel");
  mkdirSync(sentinel, { mode: 0o700 });
  writeFileSync(path.join(sentinel, "secret"), "keep\n");
  runtime = newRuntime(workSizeBytes);
}

/** Volumes of this test still mounted, as the kernel lists them. */
function mountedUnder(root: string): string[] {
  return mountPoints(readFileSync("/proc/self/mountinfo", "utf8")).filter((p) => p.startsWith(root + "/"));
}

function tearDown(): void {
  // A failed test's volumes must not be deleted through or keep their loop devices.
  for (const p of mountedUnder(dir)) execFileSync("umount", ["-l", p]);
  rmSync(dir, { recursive: true, force: true });
}

/** Owner, mode and entries of the sentinel, to compare before and after an attack. */
function sentinelState(): unknown {
  const s = statSync(sentinel);
  return { uid: s.uid, gid: s.gid, mode: s.mode, entries: readdirSync(sentinel), secret: readFileSync(path.join(sentinel, "secret"), "utf8") };
}

async function refusal(p: Promise<unknown>): Promise<JobletError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof JobletError, `expected a JobletError, got ${String(err)}`);
    return err;
  }
  return assert.fail("expected prepareWorkDir to refuse");
}

/** The work dir tests, for a plain work dir (`workSizeBytes` 0) or a volume. */
function workDirContract(label: string, workSizeBytes: number): void {
  describe(`prepareWorkDir, ${label}`, () => {
    beforeEach(() => setUp(workSizeBytes));
    afterEach(tearDown);

    test("prepareWorkDir(id) makes an empty work dir owned by the job's root; calling it again changes nothing", async () => {
      const id = newJobId();
      const work = await runtime.prepareWorkDir(id);
      assert.equal(work, runtime.workDir(id));
      const s = statSync(work);
      assert.ok(s.isDirectory());
      assert.deepEqual([s.uid, s.gid], [JOB_UID, JOB_UID]);
      assert.deepEqual(readdirSync(work), []);
      writeFileSync(path.join(work, "uploaded"), "x");
      assert.equal(await runtime.prepareWorkDir(id), work);
      assert.deepEqual(readdirSync(work), ["uploaded"]);
    });

    test("prepareWorkDir(id, relDir) creates each missing component, owned by the job's root, and keeps existing real directories", async () => {
      const id = newJobId();
      const work = await runtime.prepareWorkDir(id);
      // An uploaded directory, owned by someone else: kept as it is.
      mkdirSync(path.join(work, "src"));
      await runtime.prepareWorkDir(id, "src/app/build");
      assert.equal(statSync(path.join(work, "src")).uid, 0);
      for (const p of ["src/app", "src/app/build"]) {
        const s = lstatSync(path.join(work, p));
        assert.ok(s.isDirectory(), p);
        assert.deepEqual([s.uid, s.gid], [JOB_UID, JOB_UID], p);
      }
    });

    test("a symlink in the way (to a host dir) is refused naming workdir and the component; the target is not touched", async () => {
      const id = newJobId();
      const work = await runtime.prepareWorkDir(id);
      symlinkSync(sentinel, path.join(work, "src"));
      const before = sentinelState();
      for (const relDir of ["src", "src/app", "src/app/deeper"]) {
        const err = await refusal(runtime.prepareWorkDir(id, relDir));
        assert.equal(err.code, "INVALID_ARGUMENT");
        assert.match(err.message, /^workdir: /);
        assert.ok(err.message.includes(JSON.stringify(relDir)), err.message);
        assert.ok(err.message.includes("/work/src is a symbolic link"), err.message);
        assert.ok(err.message.includes(sentinel), err.message);
      }
      assert.deepEqual(sentinelState(), before);
      // The control: the same relDir under a real directory is created, so the probe would have seen a mkdir.
      await runtime.prepareWorkDir(id, "real/app");
      assert.ok(statSync(path.join(work, "real", "app")).isDirectory());
    });

    test("a symlink deeper in the path and a relative link are refused too; nothing is created through them", async () => {
      const id = newJobId();
      const work = await runtime.prepareWorkDir(id);
      mkdirSync(path.join(work, "a"));
      symlinkSync(path.relative(path.join(work, "a"), sentinel), path.join(work, "a", "b"));
      const before = sentinelState();
      const err = await refusal(runtime.prepareWorkDir(id, "a/b/c"));
      assert.equal(err.code, "INVALID_ARGUMENT");
      assert.ok(err.message.includes("/work/a/b is a symbolic link"), err.message);
      assert.deepEqual(sentinelState(), before);
      assert.deepEqual(readdirSync(sentinel), ["secret"]);
    });

    test("a dangling symlink and a file in the way are refused", async () => {
      const id = newJobId();
      const work = await runtime.prepareWorkDir(id);
      symlinkSync(path.join(sentinel, "not-yet"), path.join(work, "dangling"));
      writeFileSync(path.join(work, "file"), "x");
      const dangling = await refusal(runtime.prepareWorkDir(id, "dangling"));
      assert.ok(dangling.message.includes("/work/dangling is a symbolic link"), dangling.message);
      assert.ok(!readdirSync(sentinel).includes("not-yet"), "mkdir followed the dangling link");
      const file = await refusal(runtime.prepareWorkDir(id, "file/x"));
      assert.ok(file.message.includes("/work/file is a file"), file.message);
    });

    test("the work dir itself being a symlink is refused", async () => {
      const id = newJobId();
      mkdirSync(path.dirname(runtime.workDir(id)), { recursive: true });
      symlinkSync(sentinel, runtime.workDir(id));
      const before = sentinelState();
      const err = await refusal(runtime.prepareWorkDir(id, "x"));
      assert.equal(err.code, "INVALID_ARGUMENT");
      assert.ok(err.message.includes("/work is a symbolic link"), err.message);
      assert.deepEqual(sentinelState(), before);
    });

    test("'..', '.' and empty components are refused even if validation upstream missed them", async () => {
      const id = newJobId();
      await runtime.prepareWorkDir(id);
      for (const relDir of ["../x", "a/../../x", "./a", "a//b"]) {
        const err = await refusal(runtime.prepareWorkDir(id, relDir));
        assert.equal(err.code, "INVALID_ARGUMENT", relDir);
        assert.match(err.message, /^workdir: /);
      }
      assert.deepEqual(readdirSync(runtime.workDir(id)), []);
    });
  });
}

workDirContract("plain work dir", 0);
workDirContract("work volume", WORK_SIZE_BYTES);

describe("work volumes (filesystem.workSizeMB)", () => {
  beforeEach(() => setUp(WORK_SIZE_BYTES));
  afterEach(tearDown);

  /** Loop devices backed by `image`, also after it was deleted (`losetup -a` shows "(deleted)" then). */
  const loops = (image: string) =>
    execFileSync("losetup", ["-a"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(`(${image})`) || l.includes(`(${image} (deleted))`));
  const imageOf = (id: string) => path.join(path.dirname(runtime.workDir(id)), "work.img");

  test("the first prepareWorkDir mounts the volume (owned by the job's root, the cap's size); later and concurrent calls reuse it", async () => {
    const id = newJobId();
    const [a, b] = await Promise.all([runtime.prepareWorkDir(id), runtime.prepareWorkDir(id)]);
    assert.equal(a, b);
    assert.ok(isMountPoint(a));
    assert.deepEqual(mountedUnder(dir), [a], "mounted more than once");
    const fs = statfsSync(a);
    assert.ok(fs.blocks * fs.bsize <= WORK_SIZE_BYTES && fs.blocks * fs.bsize > WORK_SIZE_BYTES * 0.85, `size ${fs.blocks * fs.bsize}`);
    const s = statSync(a);
    assert.deepEqual([s.uid, s.gid, s.mode & 0o777], [JOB_UID, JOB_UID, 0o755]);
    writeFileSync(path.join(a, "uploaded"), "x");
    await runtime.prepareWorkDir(id, "src");
    assert.deepEqual(mountedUnder(dir), [a]);
    assert.deepEqual(readdirSync(a).sort(), ["src", "uploaded"]);
    assert.equal(loops(imageOf(id)).length, 1);
  });

  test("remove unmounts (the files stay in the image); forget deletes the image; no loop device is left", async () => {
    const id = newJobId();
    const work = await runtime.prepareWorkDir(id, "out");
    writeFileSync(path.join(work, "out", "result"), "42\n");
    // No container exists: runc's "does not exist" is not an error for remove.
    await runtime.remove(id);
    assert.ok(!isMountPoint(work));
    assert.deepEqual(readdirSync(work), [], "the job's files are visible on the jobs dir's file system");
    execFileSync("mount", ["-t", "ext4", "-o", "loop,ro", imageOf(id), work]);
    assert.equal(readFileSync(path.join(work, "out", "result"), "utf8"), "42\n");
    execFileSync("umount", [work]);
    runtime.forget(id);
    assert.ok(!existsSync(path.dirname(work)));
    assert.deepEqual(loops(imageOf(id)), []);
  });

  test("forget of a job whose volume is still mounted (it never started) unmounts it before deleting anything", async () => {
    const id = newJobId();
    const work = await runtime.prepareWorkDir(id);
    writeFileSync(path.join(work, "partial-upload"), "x");
    runtime.forget(id);
    assert.deepEqual(mountedUnder(dir), []);
    assert.ok(!existsSync(path.dirname(work)));
    assert.deepEqual(loops(imageOf(id)), []);
  });

  test("a restarted daemon (a new runtime, nothing in memory) unmounts and deletes what the earlier one mounted, even with the cap off", async () => {
    const [ended, abandoned] = [newJobId(), newJobId()];
    await runtime.prepareWorkDir(ended);
    await runtime.prepareWorkDir(abandoned);
    for (const restarted of [newRuntime(WORK_SIZE_BYTES), newRuntime(0)]) {
      await restarted.prepareWorkDir(ended);
      assert.deepEqual(mountedUnder(dir).sort(), [runtime.workDir(ended), runtime.workDir(abandoned)].sort(), "a restarted daemon mounted again");
    }
    const restarted = newRuntime(0);
    await restarted.remove(ended);
    restarted.forget(abandoned);
    assert.deepEqual(mountedUnder(dir), []);
    restarted.forget(ended);
    assert.deepEqual([...loops(imageOf(ended)), ...loops(imageOf(abandoned))], []);
    assert.deepEqual(readdirSync(path.join(dir, "jobs")), []);
  });
});
