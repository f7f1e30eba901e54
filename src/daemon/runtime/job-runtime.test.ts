import assert from "node:assert/strict";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { JobletError } from "../../shared/errors.js";
import { newJobId } from "../../shared/ids.js";
import { JobRuntime } from "./job-runtime.js";

/** Host uid/gid of the jobs' root in these tests (the daemon's default security.idMapBase). */
const JOB_UID = 100_000;

let dir: string;
let sentinel: string;
let runtime: JobRuntime;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "job-runtime-test-"));
  // A host directory an uploaded symlink points at: owned by root, mode 0700, one file.
  sentinel = path.join(dir, "sentinel");
  mkdirSync(sentinel, { mode: 0o700 });
  writeFileSync(path.join(sentinel, "secret"), "keep\n");
  runtime = new JobRuntime({
    stateDir: path.join(dir, "state"),
    jobsDir: path.join(dir, "jobs"),
    runtimePath: "runc",
    conmonPath: "conmon",
    hostFs: { rootfsDir: path.join(dir, "rootfs"), etcDir: path.join(dir, "etc"), extraRoBinds: [] },
    tmpBytes: 1024 * 1024,
    idMap: { hostUid: JOB_UID, hostGid: JOB_UID, size: 65_536 },
  });
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Owner, mode and entries of the sentinel, to compare before and after an attack. */
function sentinelState(): unknown {
  const s = statSync(sentinel);
  return { uid: s.uid, gid: s.gid, mode: s.mode, entries: readdirSync(sentinel), secret: readFileSync(path.join(sentinel, "secret"), "utf8") };
}

function refusal(fn: () => unknown): JobletError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof JobletError, `expected a JobletError, got ${String(err)}`);
    return err;
  }
  return assert.fail("expected prepareWorkDir to refuse");
}

test("prepareWorkDir(id) makes an empty work dir owned by the job's root; calling it again changes nothing", () => {
  const id = newJobId();
  const work = runtime.prepareWorkDir(id);
  assert.equal(work, runtime.workDir(id));
  const s = statSync(work);
  assert.ok(s.isDirectory());
  assert.deepEqual([s.uid, s.gid], [JOB_UID, JOB_UID]);
  assert.deepEqual(readdirSync(work), []);
  writeFileSync(path.join(work, "uploaded"), "x");
  assert.equal(runtime.prepareWorkDir(id), work);
  assert.deepEqual(readdirSync(work), ["uploaded"]);
});

test("prepareWorkDir(id, relDir) creates each missing component, owned by the job's root, and keeps existing real directories", () => {
  const id = newJobId();
  const work = runtime.prepareWorkDir(id);
  // An uploaded directory, owned by someone else: kept as it is.
  mkdirSync(path.join(work, "src"));
  runtime.prepareWorkDir(id, "src/app/build");
  assert.equal(statSync(path.join(work, "src")).uid, 0);
  for (const p of ["src/app", "src/app/build"]) {
    const s = lstatSync(path.join(work, p));
    assert.ok(s.isDirectory(), p);
    assert.deepEqual([s.uid, s.gid], [JOB_UID, JOB_UID], p);
  }
});

test("a symlink in the way (to a host dir) is refused naming workdir and the component; the target is not touched", () => {
  const id = newJobId();
  const work = runtime.prepareWorkDir(id);
  symlinkSync(sentinel, path.join(work, "src"));
  const before = sentinelState();
  for (const relDir of ["src", "src/app", "src/app/deeper"]) {
    const err = refusal(() => runtime.prepareWorkDir(id, relDir));
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.message, /^workdir: /);
    assert.ok(err.message.includes(JSON.stringify(relDir)), err.message);
    assert.ok(err.message.includes("/work/src is a symbolic link"), err.message);
    assert.ok(err.message.includes(sentinel), err.message);
  }
  assert.deepEqual(sentinelState(), before);
  // The control: the same relDir under a real directory is created, so the probe would have seen a mkdir.
  runtime.prepareWorkDir(id, "real/app");
  assert.ok(statSync(path.join(work, "real", "app")).isDirectory());
});

test("a symlink deeper in the path and a relative link are refused too; nothing is created through them", () => {
  const id = newJobId();
  const work = runtime.prepareWorkDir(id);
  mkdirSync(path.join(work, "a"));
  symlinkSync(path.relative(path.join(work, "a"), sentinel), path.join(work, "a", "b"));
  const before = sentinelState();
  const err = refusal(() => runtime.prepareWorkDir(id, "a/b/c"));
  assert.equal(err.code, "INVALID_ARGUMENT");
  assert.ok(err.message.includes("/work/a/b is a symbolic link"), err.message);
  assert.deepEqual(sentinelState(), before);
  assert.deepEqual(readdirSync(sentinel), ["secret"]);
});

test("a dangling symlink and a file in the way are refused", () => {
  const id = newJobId();
  const work = runtime.prepareWorkDir(id);
  symlinkSync(path.join(sentinel, "not-yet"), path.join(work, "dangling"));
  writeFileSync(path.join(work, "file"), "x");
  const dangling = refusal(() => runtime.prepareWorkDir(id, "dangling"));
  assert.ok(dangling.message.includes("/work/dangling is a symbolic link"), dangling.message);
  assert.ok(!readdirSync(sentinel).includes("not-yet"), "mkdir followed the dangling link");
  const file = refusal(() => runtime.prepareWorkDir(id, "file/x"));
  assert.ok(file.message.includes("/work/file is a file"), file.message);
});

test("the work dir itself being a symlink is refused", () => {
  const id = newJobId();
  mkdirSync(path.dirname(runtime.workDir(id)), { recursive: true });
  symlinkSync(sentinel, runtime.workDir(id));
  const before = sentinelState();
  const err = refusal(() => runtime.prepareWorkDir(id, "x"));
  assert.equal(err.code, "INVALID_ARGUMENT");
  assert.ok(err.message.includes("/work is a symbolic link"), err.message);
  assert.deepEqual(sentinelState(), before);
});

test("'..', '.' and empty components are refused even if validation upstream missed them", () => {
  const id = newJobId();
  runtime.prepareWorkDir(id);
  for (const relDir of ["../x", "a/../../x", "./a", "a//b"]) {
    const err = refusal(() => runtime.prepareWorkDir(id, relDir));
    assert.equal(err.code, "INVALID_ARGUMENT", relDir);
    assert.match(err.message, /^workdir: /);
  }
  assert.deepEqual(readdirSync(path.dirname(runtime.workDir(id))), ["work"]);
});
