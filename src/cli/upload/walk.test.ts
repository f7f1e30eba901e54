import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { JobletError } from "../../shared/errors.js";
import { planUpload, uploadSourcesFrom, type UploadItem } from "./walk.js";

/** The plan without local paths: what goes on the wire. */
function wire(items: readonly UploadItem[]) {
  return items.map((i) => [i.path, i.kind, i.mode.toString(8), i.sizeBytes, i.linkTarget]);
}

async function refusal(promise: Promise<unknown>): Promise<JobletError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof JobletError, String(err));
    return err;
  }
  assert.fail("expected a refusal");
}

describe("planUpload", () => {
  let dir: string;
  let cwd: string;
  before(() => {
    cwd = process.cwd();
    dir = mkdtempSync(path.join(os.tmpdir(), "rnx-walk-"));
    // project/
    //   run.sh (0755, 10 bytes), README (0600, 0 bytes)
    //   src/ (0750): b.py, a.py, sub/deep.txt
    //   link-out -> /etc/passwd, up -> ../outside (a directory outside the tree, never followed)
    //   dangling -> nowhere
    // outside/secret.txt
    const p = path.join(dir, "project");
    mkdirSync(path.join(p, "src", "sub"), { recursive: true });
    writeFileSync(path.join(p, "run.sh"), "echo hi\n\n\n");
    chmodSync(path.join(p, "run.sh"), 0o755);
    writeFileSync(path.join(p, "README"), "");
    chmodSync(path.join(p, "README"), 0o600);
    chmodSync(path.join(p, "src"), 0o750);
    writeFileSync(path.join(p, "src", "b.py"), "print('b')\n");
    writeFileSync(path.join(p, "src", "a.py"), "print('a')\n");
    writeFileSync(path.join(p, "src", "sub", "deep.txt"), "deep");
    mkdirSync(path.join(dir, "outside"));
    writeFileSync(path.join(dir, "outside", "secret.txt"), "do not upload");
    symlinkSync("/etc/passwd", path.join(p, "link-out"));
    symlinkSync("../outside", path.join(p, "up"));
    symlinkSync("nowhere", path.join(p, "dangling"));
    writeFileSync(path.join(dir, "script.py"), "print(1)\n");
    chmodSync(path.join(dir, "script.py"), 0o644);
    symlinkSync("script.py", path.join(dir, "latest.py"));
    symlinkSync("project/src", path.join(dir, "code"));
    symlinkSync("missing", path.join(dir, "broken"));
    process.chdir(dir);
  });
  after(() => {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  });

  test("--upload DIR: the directory by its name, recursively, parents first, sorted at every level, modes kept", async () => {
    const plan = await planUpload({ paths: ["project"] }, "linux");
    assert.deepEqual(wire(plan.items), [
      ["project", "directory", (0o777 & ~process.umask()).toString(8), 0, ""],
      ["project/README", "file", "600", 0, ""],
      ["project/dangling", "symlink", "777", 0, "nowhere"],
      ["project/link-out", "symlink", "777", 0, "/etc/passwd"],
      ["project/run.sh", "file", "755", 10, ""],
      ["project/src", "directory", "750", 0, ""],
      ["project/src/a.py", "file", (0o666 & ~process.umask()).toString(8), 11, ""],
      ["project/src/b.py", "file", (0o666 & ~process.umask()).toString(8), 11, ""],
      ["project/src/sub", "directory", (0o777 & ~process.umask()).toString(8), 0, ""],
      ["project/src/sub/deep.txt", "file", (0o666 & ~process.umask()).toString(8), 4, ""],
      ["project/up", "symlink", "777", 0, "../outside"],
    ]);
    assert.equal(plan.totalBytes, 10 + 11 + 11 + 4);
    assert.deepEqual(plan.roots, ["project"]);
    assert.ok(!plan.items.some((i) => i.path.includes("secret") || i.path.includes("passwd")), "links are never followed");
    assert.equal(plan.items.find((i) => i.path === "project/src/a.py")!.localPath, path.join(dir, "project", "src", "a.py"));
    assert.equal(plan.items.find((i) => i.path === "project/src/a.py")!.displayPath, path.join("project", "src", "a.py"));
  });

  test("a trailing slash, ./ and an absolute path change nothing: the name is the last part", async () => {
    for (const given of ["project/", "./project", path.join(dir, "project"), "project/src/.."]) {
      const plan = await planUpload({ paths: [given] }, "linux");
      assert.equal(plan.items[0]!.path, "project", given);
      assert.equal(plan.items.length, 11, given);
    }
  });

  test("--upload FILE: the file as /work/<name>; several --upload and their order does not matter", async () => {
    const a = await planUpload({ paths: ["script.py", "project/src/sub"] }, "linux");
    const b = await planUpload({ paths: ["project/src/sub", "script.py"] }, "linux");
    assert.deepEqual(wire(a.items), [
      ["script.py", "file", "644", 9, ""],
      ["sub", "directory", (0o777 & ~process.umask()).toString(8), 0, ""],
      ["sub/deep.txt", "file", (0o666 & ~process.umask()).toString(8), 4, ""],
    ]);
    assert.deepEqual(wire(b.items), wire(a.items));
    assert.deepEqual(a.roots, ["script.py", "sub"]);
  });

  test("--upload-dir DIR: its contents become the top level of /work, and combine with --upload", async () => {
    const plan = await planUpload({ dir: "project/src", paths: ["script.py"] }, "linux");
    assert.deepEqual(
      plan.items.map((i) => i.path),
      ["a.py", "b.py", "script.py", "sub", "sub/deep.txt"],
    );
    assert.deepEqual(plan.roots, ["a.py", "b.py", "script.py", "sub"]);
    assert.equal(plan.totalBytes, 11 + 11 + 9 + 4);
  });

  test("a symlink named on the command line is followed (like cp -H); the name stays the link's", async () => {
    const file = await planUpload({ paths: ["latest.py"] }, "linux");
    assert.deepEqual(wire(file.items), [["latest.py", "file", "644", 9, ""]]);
    assert.equal(file.items[0]!.localPath, path.join(dir, "script.py"));
    const tree = await planUpload({ paths: ["code"] }, "linux");
    assert.deepEqual(
      tree.items.map((i) => i.path),
      ["code", "code/a.py", "code/b.py", "code/sub", "code/sub/deep.txt"],
    );
    const asDir = await planUpload({ dir: "code", paths: [] }, "linux");
    assert.deepEqual(asDir.roots, ["a.py", "b.py", "sub"]);
  });

  test("links inside --upload-dir are links, even at its top level", async () => {
    const plan = await planUpload({ dir: ".", paths: [] }, "linux");
    const byPath = new Map(plan.items.map((i) => [i.path, i]));
    assert.equal(byPath.get("latest.py")!.kind, "symlink");
    assert.equal(byPath.get("latest.py")!.linkTarget, "script.py");
    assert.equal(byPath.get("code")!.kind, "symlink");
    assert.ok(!byPath.has("code/a.py"));
    assert.equal(byPath.get("outside/secret.txt")!.kind, "file", "a real directory in the tree is walked");
    assert.ok(!byPath.has("project/up/secret.txt"), "the link to it is not");
  });

  test("Windows: files 0644, directories 0755, links' targets with / separators", async () => {
    const plan = await planUpload({ paths: ["project"] }, "win32");
    const modes = new Map(plan.items.map((i) => [i.path, i.mode.toString(8)]));
    assert.equal(modes.get("project"), "755");
    assert.equal(modes.get("project/src"), "755");
    assert.equal(modes.get("project/run.sh"), "644");
    assert.equal(modes.get("project/README"), "644");
    assert.equal(modes.get("project/up"), "777");
  });

  test("two sources for one /work path are refused naming both, before anything is read", async () => {
    mkdirSync(path.join(dir, "other", "src"), { recursive: true });
    const twice = await refusal(planUpload({ paths: ["project/src", "other/src"] }, "linux"));
    assert.equal(twice.code, "INVALID_ARGUMENT");
    assert.equal(twice.message, '--upload: "project/src" (from --upload project/src) and "other/src" (from --upload other/src) would both become /work/src');
    assert.match(twice.hint!, /rename one/);
    const mixed = await refusal(planUpload({ dir: "project", paths: ["other/src"] }, "linux"));
    assert.equal(mixed.message, '--upload: "project/src" (from --upload-dir project) and "other/src" (from --upload other/src) would both become /work/src');
    const same = await refusal(planUpload({ paths: ["script.py", "./script.py"] }, "linux"));
    assert.match(same.message, /would both become \/work\/script\.py$/);
  });

  test("a FIFO is refused naming its path, wherever it is in the tree", async () => {
    mkdirSync(path.join(dir, "withfifo", "deep"), { recursive: true });
    execFileSync("mkfifo", [path.join(dir, "withfifo", "deep", "pipe")]);
    const err = await refusal(planUpload({ paths: ["withfifo"] }, "linux"));
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.equal(err.message, `--upload: expected regular files, directories and symlinks only, got "withfifo/deep/pipe (a FIFO)"`);
    const dev = await refusal(planUpload({ paths: ["/dev/null"] }, "linux"));
    assert.match(dev.message, /"\/dev\/null \(a character device\)"/);
  });

  test("missing paths, a dangling link argument, a file as --upload-dir and '/' are refused", async () => {
    const missing = await refusal(planUpload({ paths: ["nope.txt"] }, "linux"));
    assert.equal(missing.message, '--upload: expected an existing file or directory, got "nope.txt"');
    const broken = await refusal(planUpload({ paths: ["broken"] }, "linux"));
    assert.equal(broken.hint, 'broken is a symlink to "missing", which does not exist');
    const file = await refusal(planUpload({ dir: "script.py", paths: [] }, "linux"));
    assert.match(file.message, /^--upload-dir: expected a directory \(its contents become \/work\), got "script.py"$/);
    const root = await refusal(planUpload({ paths: ["/"] }, "linux"));
    assert.match(root.message, /^--upload: expected a file or directory with a name/);
    assert.match(root.hint!, /--upload-dir/);
  });

  test("a file name that is not UTF-8 is refused (a /work path is a proto string)", async () => {
    const bad = path.join(dir, "latin1");
    mkdirSync(bad);
    writeFileSync(Buffer.concat([Buffer.from(`${bad}/caf`), Buffer.from([0xe9])]), "x");
    const err = await refusal(planUpload({ paths: ["latin1"] }, "linux"));
    assert.match(err.message, /^--upload: expected file names in UTF-8 .*, got "latin1\/café"$/);
  });

  test("an empty --upload-dir is an upload of nothing", async () => {
    mkdirSync(path.join(dir, "empty"));
    const plan = await planUpload({ dir: "empty", paths: [] }, "linux");
    assert.deepEqual([plan.items.length, plan.totalBytes, plan.roots.length], [0, 0, 0]);
  });
});

describe("uploadSourcesFrom", () => {
  test("undefined without either flag (rnx then calls plain RunJob); --upload-dir at most once", () => {
    assert.equal(uploadSourcesFrom(undefined, undefined), undefined);
    assert.equal(uploadSourcesFrom([], []), undefined);
    assert.deepEqual(uploadSourcesFrom(["a", "b"], undefined), { paths: ["a", "b"], dir: undefined });
    assert.deepEqual(uploadSourcesFrom(undefined, ["d"]), { paths: [], dir: "d" });
    assert.throws(() => uploadSourcesFrom([], ["d", "e"]), /^JobletError: --upload-dir: expected one directory \(its contents become \/work\), got \["d","e"\]$/);
  });
});
