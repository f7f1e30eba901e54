// UploadWriter against real temp dirs: the happy path (contents, modes, owners, symlinks, implicit parents) and
// each attack of issue 8. Every attack also checks that nothing appeared outside the work dir: a sentinel dir
// next to it stays empty and /etc/passwd keeps its bytes. Owner checks need root (chown to uid 100000).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it, type TestContext } from "node:test";
import { isJobletError, type ErrorCode } from "../../shared/errors.js";
import { UploadKind } from "../../shared/proto/joblet.js";
import { checkEntryPath, entryLabel } from "./entry-path.js";
import { entryFromWire } from "./wire.js";
import { UploadWriter, type UploadEntryIn } from "./writer.js";

const isRoot = process.getuid?.() === 0;
const OWNER = { uid: 100_000, gid: 100_001 };
const BIG = { declaredBytes: 1 << 30, declaredEntries: 1000 };

interface Dirs {
  root: string;
  outside: string;
}

// A work dir and, next to it, an empty sentinel dir that no attack may reach; both removed after the test.
function dirs(t: TestContext): Dirs {
  const parent = mkdtempSync(path.join(tmpdir(), "joblet-upload-"));
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  const root = path.join(parent, "work");
  const outside = path.join(parent, "outside");
  mkdirSync(root);
  mkdirSync(outside);
  return { root, outside };
}

const file = (p: string, size: number, mode = 0o644): UploadEntryIn => ({ path: p, kind: "file", mode, size, linkTarget: "" });
const dir = (p: string, mode = 0o755): UploadEntryIn => ({ path: p, kind: "directory", mode, size: 0, linkTarget: "" });
const link = (p: string, target: string): UploadEntryIn => ({ path: p, kind: "symlink", mode: 0o777, size: 0, linkTarget: target });

// Writes `data` as the file entry `p`, split at the given chunk sizes (the rest in one last chunk).
async function putFile(w: UploadWriter, p: string, data: Buffer, mode = 0o644, splits: number[] = []): Promise<void> {
  await w.begin(file(p, data.length, mode));
  let off = 0;
  for (const n of splits) {
    await w.write(data.subarray(off, off + n));
    off += n;
  }
  if (off < data.length) await w.write(data.subarray(off));
}

// Asserts `p` rejects with a JobletError of `code` whose message matches `re` and holds no raw NUL byte.
async function refused(p: Promise<unknown>, re: RegExp, code: ErrorCode = "INVALID_ARGUMENT"): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isJobletError(err), `expected a JobletError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, re);
    assert.ok(!err.message.includes("\0"), "message holds a raw NUL");
    return true;
  });
}

const sha = (p: string): string => createHash("sha256").update(readFileSync(p)).digest("hex");
const perm = (p: string): number => lstatSync(p).mode & 0o7777;
const fdsInto = (root: string): string[] =>
  readdirSync("/proc/self/fd").flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(root) ? [target] : [];
    } catch {
      return [];
    }
  });

describe("UploadWriter: happy path", () => {
  it("writes nested dirs, byte-exact files in odd chunks, modes, owners, symlinks as links, implicit parents", { skip: isRoot ? false : "needs root to chown" }, async (t) => {
    const { root } = dirs(t);
    // A strict umask proves the modes are set explicitly, not left to open()/mkdir().
    const oldUmask = process.umask(0o077);
    t.after(() => process.umask(oldUmask));
    const main = randomBytes(1000);
    const big = randomBytes(300_001);
    const entries = 13;
    const bytes = main.length * 2 + big.length + 5 + 3;
    const w = new UploadWriter(root, { owner: OWNER, declaredBytes: bytes, declaredEntries: entries });

    await w.begin(dir("src", 0o750));
    await putFile(w, "src/main.py", main, 0o755, [1, 7, 3]);
    await putFile(w, "src/setuid", main, 0o4755, [999]);
    await putFile(w, "deep/a/b/c.bin", big, 0o640, [65_537, 1, 262_144]);
    await w.begin(file("empty", 0, 0o600));
    await w.begin(dir("emptydir", 0o700));
    await w.begin(link("etc-passwd", "/etc/passwd"));
    await w.begin(link("src/rel", "../empty"));
    await w.begin(dir("deep", 0o711)); // created implicitly above: only its mode changes
    await putFile(w, "back\\slash", Buffer.from("hello"));
    await putFile(w, "unicodé ü.txt", Buffer.from("abc"), 0o100644); // file-type bits are dropped too
    await w.begin(dir("sticky", 0o1777));
    await w.begin(dir("sticky/sub"));
    assert.equal(w.entriesBegun, entries);
    const totals = await w.finish();

    assert.deepEqual(totals, {
      files: 6,
      directories: 7, // src, deep, deep/a, deep/a/b (deep/a and deep/a/b only implicit), emptydir, sticky, sticky/sub
      symlinks: 2,
      bytes,
      roots: ["back\\slash", "deep", "empty", "emptydir", "etc-passwd", "src", "sticky", "unicodé ü.txt"],
    });
    assert.deepEqual(readFileSync(path.join(root, "src/main.py")), main);
    assert.deepEqual(readFileSync(path.join(root, "src/setuid")), main);
    assert.deepEqual(readFileSync(path.join(root, "deep/a/b/c.bin")), big);
    assert.equal(readFileSync(path.join(root, "empty")).length, 0);
    assert.equal(readFileSync(path.join(root, "back\\slash"), "utf8"), "hello");
    assert.equal(readFileSync(path.join(root, "unicodé ü.txt"), "utf8"), "abc");
    assert.deepEqual(readdirSync(path.join(root, "emptydir")), []);

    const modes: Record<string, number> = {
      src: 0o750,
      "src/main.py": 0o755,
      "src/setuid": 0o755, // setuid stripped
      deep: 0o711,
      "deep/a": 0o755,
      "deep/a/b": 0o755,
      "deep/a/b/c.bin": 0o640,
      empty: 0o600,
      emptydir: 0o700,
      "back\\slash": 0o644,
      "unicodé ü.txt": 0o644,
      sticky: 0o777, // sticky stripped
      "sticky/sub": 0o755,
    };
    for (const [p, mode] of Object.entries(modes)) assert.equal(perm(path.join(root, p)).toString(8), mode.toString(8), p);

    // Stored as links, never followed: the link itself is the upload's, its target untouched.
    assert.ok(lstatSync(path.join(root, "etc-passwd")).isSymbolicLink());
    assert.equal(readlinkSync(path.join(root, "etc-passwd")), "/etc/passwd");
    assert.equal(readlinkSync(path.join(root, "src/rel")), "../empty");
    assert.equal(lstatSync("/etc/passwd").uid, 0);

    for (const p of [...Object.keys(modes), "etc-passwd", "src/rel"]) {
      const st = lstatSync(path.join(root, p));
      assert.deepEqual({ uid: st.uid, gid: st.gid }, OWNER, p);
    }
    assert.equal(fdsInto(root).length, 0, "no fd left open in the work dir");
  });

  it("leaves everything owned by the daemon's user when no owner is given; accepts an empty upload", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, { declaredBytes: 2, declaredEntries: 2 });
    await putFile(w, "a/b", Buffer.from("hi"));
    await w.begin(link("a/l", "b"));
    assert.deepEqual(await w.finish(), { files: 1, directories: 1, symlinks: 1, bytes: 2, roots: ["a"] });
    assert.equal(lstatSync(path.join(root, "a/b")).uid, process.getuid!());

    const empty = dirs(t);
    assert.deepEqual(await new UploadWriter(empty.root, { declaredBytes: 0, declaredEntries: 0 }).finish(), {
      files: 0,
      directories: 0,
      symlinks: 0,
      bytes: 0,
      roots: [],
    });
  });

  it("lists at most 100 roots, sorted", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, { declaredBytes: 0, declaredEntries: 150 });
    for (let i = 149; i >= 0; i--) await w.begin(dir(`d${String(i).padStart(3, "0")}`));
    const totals = await w.finish();
    assert.equal(totals.roots.length, 100);
    assert.equal(totals.roots[0], "d000");
    assert.equal(totals.roots[99], "d099");
    assert.equal(totals.directories, 150);
  });
});

describe("checkEntryPath", () => {
  it("accepts ordinary relative paths, backslashes included", () => {
    for (const p of ["a", "a/b/c", "a\\..\\b", "..a", "a..", ".hidden", "x".repeat(255), `${"d/".repeat(127)}f`, "é/日本"]) {
      assert.equal(checkEntryPath(p), undefined, p);
    }
  });

  it("says what was expected and what was given", () => {
    const cases: Array<[string, RegExp]> = [
      ["", /non-empty/],
      ["/etc/x", /no leading "\/"\), got "\/etc\/x"/],
      ["../../etc/x", /no "\." or "\.\." component, got "\.\." as component 1/],
      ["a/../../x", /got "\.\." as component 2/],
      [".", /got "\." as component 1/],
      ["a/./b", /got "\." as component 2/],
      ["a//b", /no empty component .* got "\/\/"/],
      ["a/", /got a trailing "\/"/],
      ["a\0b", /no NUL byte, got "a\\u0000b"/],
      ["x".repeat(256), /at most 255 bytes per component, got 256 bytes in component 1/],
      [`a/${"é".repeat(128)}`, /got 256 bytes in component 2/],
      [`${"d/".repeat(128)}f`, /at most 128 components, got 129/],
      [`${"x".repeat(200)}/`.repeat(21), /at most 4096 bytes, got 4221 bytes/],
      ["a\uD800b", /valid UTF-8/],
    ];
    for (const [p, re] of cases) {
      const problem = checkEntryPath(p);
      assert.ok(problem, `${JSON.stringify(p)} accepted`);
      assert.match(problem, re);
      assert.ok(problem.startsWith("expected "), problem);
      assert.ok(!problem.includes("\0"));
    }
  });

  it("labels long and hostile paths safely", () => {
    const label = entryLabel(7, `${"a".repeat(300)}\u202e\0`);
    assert.match(label, /^upload entry 7 "a{200}"\.\.\. \(304 bytes\)$/);
    assert.equal(entryLabel(1, "x\u202ey\u0085\n"), 'upload entry 1 "x\\u202ey\\u0085\\n"');
  });
});

describe("UploadWriter: path attacks", () => {
  const attacks = ["../../etc/x", "a/../../x", "/etc/x", "", ".", "..", "a//b", "a/", "a/./b", "a\0b", "x".repeat(300), `a/${"x".repeat(256)}/b`];
  for (const p of attacks) {
    it(`refuses ${JSON.stringify(p.length > 40 ? `${p.slice(0, 20)}...(${p.length} chars)` : p)} and creates nothing`, async (t) => {
      const { root, outside } = dirs(t);
      for (const entry of [file(p, 3), dir(p), link(p, "t")]) {
        const fresh = dirs(t);
        await refused(new UploadWriter(fresh.root, BIG).begin(entry), /^upload entry 1 .*: path: expected /);
        assert.deepEqual(readdirSync(fresh.root), []);
      }
      const w = new UploadWriter(root, { owner: isRoot ? OWNER : undefined, ...BIG });
      await w.begin(dir("ok"));
      await refused(w.begin(file(p, 3)), /^upload entry 2 .*: path: expected /);
      // The first error sticks: the upload is over.
      await refused(w.write(Buffer.from("abc")), /^upload entry 2 /);
      await refused(w.finish(), /^upload entry 2 /);
      await w.abort();
      assert.deepEqual(readdirSync(root), ["ok"]);
      assert.deepEqual(readdirSync(outside), []);
      assert.ok(!existsSync("/etc/x"));
    });
  }
});

describe("UploadWriter: symlink and replacement attacks", () => {
  it("refuses a file under a symlink to /etc, leaving /etc untouched", async (t) => {
    const { root, outside } = dirs(t);
    const before = { sha: sha("/etc/passwd"), mtimeMs: lstatSync("/etc/passwd").mtimeMs };
    const w = new UploadWriter(root, BIG);
    await w.begin(link("link", "/etc"));
    await refused(w.begin(file("link/passwd", 4)), /^upload entry 2 "link\/passwd": path: expected no symlink among its parents .* got "link", a symlink \(entry 1\)$/);
    await refused(w.write(Buffer.from("root")), /entry 2/);
    await w.abort();
    assert.deepEqual({ sha: sha("/etc/passwd"), mtimeMs: lstatSync("/etc/passwd").mtimeMs }, before);
    assert.deepEqual(readdirSync(outside), []);
    assert.deepEqual(readdirSync(root), ["link"]);
  });

  it("refuses a directory, a file or a symlink anywhere below a symlink to a sentinel dir outside", async (t) => {
    const { outside } = dirs(t);
    const cases: Array<[string, UploadEntryIn]> = [
      [outside, dir("out/d")],
      [outside, file("out/x", 0)],
      ["../outside", link("out/l", "/")],
      ["../outside", file("out/sub/deeper/x", 1)],
    ];
    for (const [target, entry] of cases) {
      const { root } = dirs(t);
      // Make "../outside" from this root reach the sentinel too.
      const w = new UploadWriter(root, BIG);
      await w.begin(link("out", target === outside ? outside : path.relative(root, outside)));
      await refused(w.begin(entry), /path: expected no symlink among its parents .* got "out", a symlink \(entry 1\)$/);
      await w.abort();
      assert.deepEqual(readdirSync(root), ["out"]);
    }
    assert.deepEqual(readdirSync(outside), []);
  });

  it("refuses an entry whose path already exists, whatever the kinds", async (t) => {
    const cases: Array<[UploadEntryIn, UploadEntryIn, RegExp]> = [
      [file("a", 0), dir("a"), /a path not already in the upload, got the path of entry 1, a file$/],
      [dir("a"), file("a", 0), /got the path of entry 1, a directory$/],
      [dir("a"), dir("a"), /got the path of entry 1, a directory$/],
      [file("a", 0), file("a", 0), /got the path of entry 1, a file$/],
      [link("a", "x"), file("a", 0), /got the path of entry 1, a symlink$/],
      [link("a", "x"), dir("a"), /got the path of entry 1, a symlink$/],
      [link("a", "x"), link("a", "y"), /got the path of entry 1, a symlink$/],
      [file("a/b", 0), file("a", 0), /got the path of a directory created as a parent$/],
      [file("a/b", 0), link("a", "/"), /got the path of a directory created as a parent$/],
      [file("f", 0), file("f/x", 0), /its parent "f" to be a directory, got a file \(entry 1\)$/],
      [file("f", 0), dir("f/x/y"), /its parent "f" to be a directory, got a file \(entry 1\)$/],
    ];
    for (const [first, second, re] of cases) {
      const { root } = dirs(t);
      const w = new UploadWriter(root, BIG);
      await w.begin(first);
      await refused(w.begin(second), new RegExp(`^upload entry 2 ${JSON.stringify(second.path)}: path: expected .*${re.source}`));
      await w.abort();
      // The first entry is intact: a file stays a file, a symlink a symlink, a directory a directory.
      const st = lstatSync(path.join(root, first.path));
      const isKind = first.kind === "file" ? st.isFile() : first.kind === "symlink" ? st.isSymbolicLink() : st.isDirectory();
      assert.ok(isKind, `${first.path} is still a ${first.kind}`);
      if (first.kind === "symlink") assert.equal(readlinkSync(path.join(root, first.path)), first.linkTarget);
    }
  });

  it("never follows a symlink planted on disk by someone else (clean JobletError, nothing written outside)", async (t) => {
    const { outside } = dirs(t);
    const steps: Array<[string, string, UploadEntryIn]> = [
      // A dangling link: a plain O_CREAT would create its target outside.
      ["d/evil", path.join(outside, "created-by-file"), file("d/evil", 3)],
      ["d/evil2", outside, dir("d/evil2")],
      ["d/evil3", outside, link("d/evil3", "x")],
      // The implicit parent's mkdir meets the planted link.
      ["top", outside, file("top/x", 1)],
    ];
    for (const [rel, target, entry] of steps) {
      const { root } = dirs(t);
      const w = new UploadWriter(root, BIG);
      await w.begin(dir("d"));
      symlinkSync(target, path.join(root, rel));
      await refused(w.begin(entry), /: expected nothing on disk that this upload did not create, got EEXIST$/, "FAILED_PRECONDITION");
      await w.abort();
      assert.ok(lstatSync(path.join(root, rel)).isSymbolicLink());
      assert.equal(fdsInto(root).length, 0);
    }
    assert.deepEqual(readdirSync(outside), []);
  });

  it("refuses a work dir that is not empty or is a symlink", async (t) => {
    const { root, outside } = dirs(t);
    symlinkSync(outside, path.join(root, "pre"));
    await refused(new UploadWriter(root, BIG).begin(file("x", 0)), /work directory .*: expected an empty directory, got 1 entries \(first "pre"\)$/, "FAILED_PRECONDITION");
    const l = `${root}-link`;
    symlinkSync(outside, l);
    await refused(new UploadWriter(l, BIG).begin(file("x", 0)), /: expected a directory, got a symlink$/, "FAILED_PRECONDITION");
    assert.deepEqual(readdirSync(outside), []);
  });
});

describe("UploadWriter: sizes, counts and data", () => {
  it("refuses a size above the header's totalBytes before creating the file", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, { declaredBytes: 100, declaredEntries: 3 });
    await refused(w.begin(file("huge", 2 ** 40)), /^upload entry 1 "huge": size: expected at most 100 bytes \(what is left of totalBytes 100 in the header\), got 1099511627776$/);
    assert.deepEqual(readdirSync(root), []);

    const { root: r2 } = dirs(t);
    const w2 = new UploadWriter(r2, { declaredBytes: 100, declaredEntries: 3 });
    await putFile(w2, "a", Buffer.alloc(60));
    await refused(w2.begin(file("b", 41)), /size: expected at most 40 bytes/);
    assert.deepEqual(readdirSync(r2), ["a"]);
  });

  it("refuses nonsense sizes, modes, kinds and link targets", async (t) => {
    const cases: Array<[Partial<UploadEntryIn>, RegExp]> = [
      [{ kind: "file", size: -1 }, /size: expected a byte count/],
      [{ kind: "file", size: 1.5 }, /size: expected a byte count/],
      [{ kind: "file", size: 2 ** 53 }, /size: expected a byte count/],
      [{ kind: "directory", size: 4096 }, /size: expected 0 for a directory/],
      [{ kind: "symlink", size: 3, linkTarget: "abc" }, /size: expected 0 for a symlink/],
      [{ kind: "file", mode: -1 }, /mode: expected permission bits/],
      [{ kind: "file", mode: 2 ** 32 }, /mode: expected permission bits/],
      [{ kind: "file", linkTarget: "/etc" }, /linkTarget: expected "" for a file .* got "\/etc"$/],
      [{ kind: "symlink", linkTarget: "" }, /linkTarget: expected a non-empty link target/],
      [{ kind: "symlink", linkTarget: "a\0b" }, /linkTarget: expected no NUL byte, got "a\\u0000b"/],
      [{ kind: "symlink", linkTarget: "x".repeat(4097) }, /linkTarget: expected at most 4096 bytes, got 4097 bytes/],
      [{ kind: "fifo" as never }, /kind: expected "file", "directory" or "symlink", got "fifo"/],
    ];
    for (const [fields, re] of cases) {
      const { root } = dirs(t);
      const w = new UploadWriter(root, BIG);
      await refused(w.begin({ path: "x", kind: "file", mode: 0o644, size: 0, linkTarget: "", ...fields }), re);
      assert.deepEqual(readdirSync(root), []);
    }
  });

  it("refuses more data than the size, without writing the excess", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, BIG);
    await w.begin(file("a", 10));
    await w.write(Buffer.from("12345"));
    await refused(w.write(Buffer.from("678901")), /^upload entry 1 "a": data: expected 10 bytes \(its size\), got 11 or more$/);
    assert.equal(readFileSync(path.join(root, "a"), "utf8"), "12345");
    assert.equal(fdsInto(root).length, 0);

    const { root: r2 } = dirs(t);
    const w2 = new UploadWriter(r2, BIG);
    await w2.begin(file("a", 2));
    await w2.write(Buffer.from("12"));
    await refused(w2.write(Buffer.from("3")), /^upload entry 1 "a": data: expected 2 bytes \(its size\), got more$/);
    assert.equal(readFileSync(path.join(r2, "a"), "utf8"), "12");
  });

  it("refuses the next entry or the end while a file is short", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, BIG);
    await w.begin(file("a", 10));
    await w.write(Buffer.from("12345"));
    await refused(w.begin(file("b", 1)), /^upload entry 1 "a": data: expected 10 bytes \(its size\), got 5 of 10 bytes before upload entry 2 "b"$/);
    assert.ok(!existsSync(path.join(root, "b")));
    assert.equal(fdsInto(root).length, 0);

    const { root: r2 } = dirs(t);
    const w2 = new UploadWriter(r2, { declaredBytes: 10, declaredEntries: 1 });
    await w2.begin(file("a", 10));
    await w2.write(Buffer.from("1234"));
    await refused(w2.finish(), /^upload entry 1 "a": data: expected 10 bytes \(its size\), got 4 of 10 bytes before the end of the upload$/);
    assert.equal(fdsInto(r2).length, 0);
  });

  it("refuses data with no file open", async (t) => {
    const { root } = dirs(t);
    await refused(new UploadWriter(root, BIG).write(Buffer.from("x")), /^upload data: expected an entry before any data, got "1 bytes before the first entry"$/);
    for (const first of [dir("d"), link("l", "x")]) {
      const { root } = dirs(t);
      const w = new UploadWriter(root, BIG);
      await w.begin(first);
      await refused(w.write(Buffer.alloc(3)), new RegExp(`^upload entry 1 "${first.path}": data: expected no data after a ${first.kind} entry, got 3 bytes$`));
    }
  });

  it("refuses more entries than declared", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, { declaredBytes: 0, declaredEntries: 2 });
    await w.begin(dir("a"));
    await w.begin(dir("b"));
    await refused(w.begin(dir("c")), /^upload entry 3 "c": entry count: expected at most 2 \(totalEntries in the header\), got 3$/);
    assert.deepEqual(readdirSync(root).sort(), ["a", "b"]);
  });

  it("requires the totals the header declared at the end", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, { declaredBytes: 0, declaredEntries: 2 });
    await w.begin(dir("a"));
    await refused(w.finish(), /^upload: entry count: expected 2 \(totalEntries in the header\), got 1$/);

    const { root: r2 } = dirs(t);
    const w2 = new UploadWriter(r2, { declaredBytes: 10, declaredEntries: 1 });
    await putFile(w2, "a", Buffer.alloc(4));
    await refused(w2.finish(), /^upload: file bytes: expected 10 \(totalBytes in the header\), got 4$/);
  });

  it("refuses overlapping calls and calls after finish", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, { declaredBytes: 4, declaredEntries: 1 });
    await w.begin(file("a", 4));
    const first = w.write(Buffer.from("12"));
    await refused(w.write(Buffer.from("34")), /must not overlap/, "INTERNAL");
    await first;
    const fresh = new UploadWriter(dirs(t).root, { declaredBytes: 0, declaredEntries: 0 });
    await fresh.finish();
    await refused(fresh.begin(dir("x")), /got one already finished$/, "FAILED_PRECONDITION");
    await fresh.abort();
  });
});

describe("UploadWriter: abort", () => {
  it("closes the open file, leaks no fd, and refuses further calls", async (t) => {
    const { root } = dirs(t);
    const fdsBefore = readdirSync("/proc/self/fd").length;
    const w = new UploadWriter(root, BIG);
    await w.begin(file("a", 100));
    await w.write(Buffer.alloc(10));
    assert.deepEqual(fdsInto(root), [path.join(root, "a")]);
    await w.abort();
    assert.deepEqual(fdsInto(root), []);
    assert.equal(readdirSync("/proc/self/fd").length, fdsBefore);
    await w.abort();
    await refused(w.begin(file("b", 0)), /got one already aborted$/, "FAILED_PRECONDITION");
    await refused(w.write(Buffer.alloc(1)), /got one already aborted$/, "FAILED_PRECONDITION");
    await refused(w.finish(), /got one already aborted$/, "FAILED_PRECONDITION");
  });

  it("waits for a write in flight, then closes", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, BIG);
    await w.begin(file("a", 8 << 20));
    const writing = w.write(Buffer.alloc(4 << 20));
    await w.abort();
    await writing;
    assert.deepEqual(fdsInto(root), []);
  });

  it("is harmless after finish and after a failure", async (t) => {
    const { root } = dirs(t);
    const w = new UploadWriter(root, { declaredBytes: 0, declaredEntries: 0 });
    await w.finish();
    await w.abort();
    await w.abort();
    const failed = dirs(t);
    const w2 = new UploadWriter(failed.root, BIG);
    await w2.begin(file("a", 5));
    await refused(w2.begin(dir("b")), /got 0 of 5 bytes/);
    await w2.abort();
    assert.deepEqual(fdsInto(failed.root), []);
  });
});

describe("entryFromWire", () => {
  const wire = { path: "p", mode: 0o644, size: 3, linkTarget: "" };
  it("maps the kinds", () => {
    assert.deepEqual(entryFromWire({ ...wire, kind: UploadKind.FILE }, 1), { ...wire, kind: "file" });
    assert.equal(entryFromWire({ ...wire, kind: UploadKind.DIRECTORY }, 1).kind, "directory");
    assert.equal(entryFromWire({ ...wire, kind: UploadKind.SYMLINK }, 1).kind, "symlink");
  });

  it("refuses unset and unknown kinds, naming the entry", () => {
    const check = (kind: number, index: number, re: RegExp) =>
      assert.throws(() => entryFromWire({ ...wire, kind: kind as UploadKind }, index), (err: unknown) => isJobletError(err, "INVALID_ARGUMENT") && re.test(err.message));
    check(UploadKind.UPLOAD_KIND_UNSPECIFIED, 4, /^upload entry 4 "p": kind: expected FILE, DIRECTORY or SYMLINK, got UPLOAD_KIND_UNSPECIFIED \(0\)$/);
    check(7, 2, /^upload entry 2 "p": kind: expected FILE, DIRECTORY or SYMLINK, got 7$/);
    check(UploadKind.UNRECOGNIZED, 1, /got -1$/);
  });
});
