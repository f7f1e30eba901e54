// Uploads into a job's /work (RunJobWithUploads, `rnx run --upload/--upload-dir`) against a real daemon: the
// README examples through the real CLI, what arrives (tree, modes, links kept as links, bytes, owners, checked
// inside the job and on the host), the job's record, the limits, removal with the job, a 64 MiB transfer,
// and every attack on the protocol through a raw client. An attack passes only when the call is refused with
// the right code naming the culprit, no job ran, the job's work dir is gone from the host, nothing appeared at
// the host paths the attack aimed at (a sentinel dir of this test's own), nothing of the job is left in the
// runtime or the cgroups, and the daemon still runs jobs afterwards.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import { status } from "@grpc/grpc-js";
import { parse as parseYaml } from "yaml";
import { RunJobReq, UploadKind, type Job, type JobletServiceClient, type UploadReq } from "../../src/shared/proto/joblet.js";
import { TestDaemon, jobOutput, unary } from "./harness.js";
import { chunks, data, end, entry, header, plan, rnxIn, sendScript, type ScriptOptions, type UploadOutcome } from "./upload-client.js";

const KiB = 1024;
const MiB = 1024 * KiB;
/** Host uid/gid a job's root maps to (security.idMapBase, the default). */
const ID_MAP_BASE = 100_000;
/** Upload limits of the second daemon (uploads.maxTotalMB, uploads.maxEntries). */
const SMALL_MAX_MB = 1;
const SMALL_MAX_ENTRIES = 5;
const T = { timeout: 60_000 };

/** The daemon with default upload limits. */
let d: TestDaemon;
let c: JobletServiceClient;
/** A daemon with uploads.maxTotalMB 1 and uploads.maxEntries 5. */
let small: TestDaemon;
let smallClient: JobletServiceClient;
/** Local files the tests upload (the CLI's working directory). */
let local: string;
/** A host directory the attacks aim at; it must stay empty, root-owned and mode 0777. */
let sentinel: string;

before(async () => {
  [d, small] = await Promise.all([
    TestDaemon.start({ joblet: { stopGracePeriod: "1s" } }),
    TestDaemon.start({ joblet: { stopGracePeriod: "1s" }, uploads: { maxTotalMB: SMALL_MAX_MB, maxEntries: SMALL_MAX_ENTRIES } }),
  ]);
  c = d.client();
  smallClient = small.client();
  local = mkdtempSync(path.join(os.tmpdir(), "joblet-upload-local-"));
  sentinel = mkdtempSync(path.join(os.tmpdir(), "joblet-upload-sentinel-"));
  // World-writable: a write made as the job's mapped user would land here too, so the probe can see it.
  chmodSync(sentinel, 0o777);
});
after(async () => {
  c?.close();
  smallClient?.close();
  await Promise.all([d?.destroy(), small?.destroy()]);
  for (const dir of [local, sentinel]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Where `daemon` keeps each job's work dir: filesystem.baseDir, else <state.dir>/jobs. */
function jobsDirOf(daemon: TestDaemon): string {
  const cfg = parseYaml(readFileSync(daemon.configFile, "utf8")) as { state: { dir: string }; filesystem?: { baseDir?: string } };
  return cfg.filesystem?.baseDir ?? path.join(cfg.state.dir, "jobs");
}

/** The host directory that is job `id`'s /work. */
function workDirOf(id: string, daemon = d): string {
  return path.join(jobsDirOf(daemon), id, "work");
}

const getStatus = (id: string, client = c) => unary<Job>((cb) => client.getJobStatus({ id }, cb));
const listJobs = (client = c) => unary<{ jobs: Job[] }>((cb) => client.listJobs({}, cb)).then((r) => r.jobs);

/** Polls `check` every 50 ms until it returns a value other than undefined; fails with `what` after `timeoutMs`. */
async function waitFor<V>(what: string, check: () => V | undefined | Promise<V | undefined>, timeoutMs = 10_000): Promise<V> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Waits until job `id` has ended and its end is recorded. */
function waitEnded(id: string, client = c, timeoutMs = 30_000): Promise<Job> {
  return waitFor(`job ${id} to end`, async () => {
    const j = await getStatus(id, client);
    return j.endTime || j.status === "FAILED" ? j : undefined;
  }, timeoutMs);
}

/** The job's whole output, split by stream (follows it until it ends). */
function output(id: string, client = c): Promise<{ stdout: string; stderr: string }> {
  return jobOutput(client, id);
}

/** A one-line account of an upload outcome for assertion messages. */
function describe(out: UploadOutcome): string {
  const err = out.error ? `${status[out.error.code]}: ${out.error.details}` : "OK";
  const job = out.job ? ` job ${out.job.id} ${out.job.status}` : "";
  return `${err}; accepted=${out.accepted ? out.accepted.jobId : "no"};${job} (${out.written} messages written)`;
}

/** Asserts a successful upload whose job started; returns the job's ID. */
function started(out: UploadOutcome): string {
  assert.equal(out.error, undefined, describe(out));
  assert.ok(out.accepted, `no accepted: ${describe(out)}`);
  assert.ok(out.job, `no job: ${describe(out)}`);
  assert.equal(out.job.id, out.accepted.jobId, "the started job is the one announced in accepted");
  return out.job.id;
}

/** Runs a well-formed upload on `client` and the job to its end; returns the job, its output and ID. */
async function runUpload(job: Partial<RunJobReq>, items: Parameters<typeof plan>[1], client = c): Promise<{ id: string; job: Job; stdout: string; stderr: string }> {
  const id = started(await sendScript(client, plan(job, items)));
  const { stdout, stderr } = await output(id, client);
  return { id, job: await waitEnded(id, client), stdout, stderr };
}

/** SHA-256 of `bytes`, hex. */
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Writes a local tree under `root`: files (string content), "dir/" entries, and `{ link }` symlinks. */
function writeTree(root: string, tree: Record<string, string | Buffer | { link: string } | { mode: number; content: string | Buffer }>): string {
  mkdirSync(root, { recursive: true });
  for (const [rel, v] of Object.entries(tree)) {
    const p = path.join(root, rel);
    if (rel.endsWith("/")) {
      mkdirSync(p, { recursive: true });
      continue;
    }
    mkdirSync(path.dirname(p), { recursive: true });
    if (typeof v === "object" && "link" in v) symlinkSync(v.link, p);
    else if (typeof v === "object" && "mode" in v) {
      writeFileSync(p, v.content);
      chmodSync(p, v.mode);
    } else writeFileSync(p, v);
  }
  return root;
}

// ---------------------------------------------------------------------------------------------------------
// 1. The README examples, through the real CLI.

test("README: rnx run --upload script.py python3 script.py prints what the script computed", T, async () => {
  const dir = writeTree(path.join(local, "readme-script"), {
    "script.py": "import os\nprint('sum=%d' % sum(i * i for i in range(1, 101)))\nprint('cwd=' + os.getcwd())\n",
  });
  const r = await rnxIn(d, dir, ["run", "--upload", "script.py", "python3", "script.py"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "sum=338350\ncwd=/work\n");
  // Progress goes to stderr only when it is a terminal; here it is a pipe.
  assert.equal(r.stderr, "", "no progress output when stderr is not a terminal");
});

// /usr/bin/python3 on this host has no pytest (only a pyenv Python does, which jobs cannot see), so the
// test-directory example uses the standard library's unittest.
const TESTS_TREE = {
  "tests/calc.py": "def add(a, b):\n    return a + b\n\ndef mean(xs):\n    return sum(xs) / len(xs)\n",
  "tests/data/numbers.txt": "1\n2\n3\n4\n",
  "tests/test_calc.py": [
    "import os, unittest",
    "import calc",
    "HERE = os.path.dirname(os.path.abspath(__file__))",
    "class CalcTest(unittest.TestCase):",
    "    def test_add(self):",
    "        self.assertEqual(calc.add(2, 3), 5)",
    "    def test_mean_of_data_file(self):",
    "        with open(os.path.join(HERE, 'data', 'numbers.txt')) as f:",
    "            self.assertEqual(calc.mean([int(l) for l in f]), 2.5)",
    "    def test_uploaded_under_work(self):",
    "        self.assertEqual(HERE, '/work/tests')",
    "",
  ].join("\n"),
};

test("README: rnx run --upload tests python3 -m unittest discover -s tests -v runs the uploaded tests", T, async () => {
  const dir = writeTree(path.join(local, "readme-tests"), TESTS_TREE);
  const r = await rnxIn(d, dir, ["run", "--upload", "tests", "python3", "-m", "unittest", "discover", "-s", "tests", "-v"]);
  assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  for (const name of ["test_add", "test_mean_of_data_file", "test_uploaded_under_work"]) assert.match(r.stderr, new RegExp(`${name} .*\\.\\.\\. ok`));
  assert.match(r.stderr, /Ran 3 tests/);
  assert.match(r.stderr, /\nOK\n/);

  // Control: the same directory with a failing test fails the run, so the run above really ran these tests.
  writeFileSync(path.join(dir, "tests", "calc.py"), "def add(a, b):\n    return a - b\n\ndef mean(xs):\n    return sum(xs) / len(xs)\n");
  const bad = await rnxIn(d, dir, ["run", "--upload", "tests", "python3", "-m", "unittest", "discover", "-s", "tests", "-v"]);
  assert.equal(bad.code, 1, `stdout: ${bad.stdout}\nstderr: ${bad.stderr}`);
  assert.match(bad.stderr, /FAILED \(failures=1\)/);
});

test("README: --upload-dir makes the directory's contents /work's top level; --upload repeats", T, async () => {
  const dir = writeTree(path.join(local, "readme-dir"), { "proj/a/b.txt": "b-content\n", "proj/top.txt": "top\n", "x.py": "print(1)\n", "y/z": "z" });
  const r = await rnxIn(d, dir, ["run", "--upload-dir", "proj", "sh", "-c", "ls; cat a/b.txt"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "a\ntop.txt\nb-content\n");

  const two = await rnxIn(d, dir, ["run", "--upload", "x.py", "--upload", "y", "sh", "-c", "ls; cat y/z"]);
  assert.equal(two.code, 0, two.stderr);
  assert.equal(two.stdout, "x.py\ny\nz");
});

// ---------------------------------------------------------------------------------------------------------
// 2. Fidelity: what arrives is what was sent, seen from inside the job and on the host.

test("fidelity through the CLI: tree, modes, links kept as links, empty file and dir, bytes, owners (job and host)", T, async () => {
  const outside = path.join(local, `outside-secret-${randomBytes(4).toString("hex")}`);
  writeFileSync(outside, "HOST-SECRET-CONTENT\n");
  const binary = randomBytes(MiB + 3);
  const dir = writeTree(path.join(local, "fidelity"), {
    "run.sh": { mode: 0o755, content: "#!/bin/sh\necho run-ok uid=$(id -u)\n" },
    "secret.txt": { mode: 0o600, content: "only me\n" },
    "nested/deep/er/file.txt": "deep\n",
    "empty.txt": "",
    "emptydir/": "",
    "link": { link: "nested/deep" },
    "abs": { link: outside },
    "bin.dat": binary,
  });
  chmodSync(path.join(dir, "emptydir"), 0o750);
  const script = [
    "./run.sh",
    "stat -c 'stat %n %a %u:%g %F' secret.txt run.sh empty.txt emptydir nested nested/deep/er/file.txt link bin.dat",
    "echo link=$(readlink link)",
    "echo abs=$(readlink abs)",
    "echo via-link=$(cat link/er/file.txt)",
    "echo sha=$(sha256sum bin.dat | cut -d' ' -f1)",
    "echo empty-size=$(wc -c < empty.txt)",
    "echo emptydir-entries=$(ls -A emptydir | wc -l)",
    "if cat abs 2>/dev/null; then echo abs-followed; else echo abs-not-followed; fi",
  ].join("\n");
  const r = await rnxIn(d, dir, ["run", "--detach", "--upload-dir", ".", "sh", "-c", script]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  const job = await waitEnded(id);
  const out = await output(id);
  assert.equal(job.status, "COMPLETED", `${job.status} ${job.reason}\n${out.stdout}\n${out.stderr}`);

  const lines = out.stdout.split("\n");
  assert.ok(lines.includes("run-ok uid=0"), "an uploaded 0755 script runs directly, as the job's root");
  const stats = Object.fromEntries(lines.filter((l) => l.startsWith("stat ")).map((l) => [l.split(" ")[1], l.split(" ").slice(2).join(" ")]));
  assert.deepEqual(stats, {
    "secret.txt": "600 0:0 regular file",
    "run.sh": "755 0:0 regular file",
    "empty.txt": "644 0:0 regular empty file",
    emptydir: "750 0:0 directory",
    nested: "755 0:0 directory",
    "nested/deep/er/file.txt": "644 0:0 regular file",
    link: "777 0:0 symbolic link",
    "bin.dat": "644 0:0 regular file",
  });
  assert.ok(lines.includes("link=nested/deep"));
  assert.ok(lines.includes(`abs=${outside}`), "an absolute link target is kept as is");
  assert.ok(lines.includes("via-link=deep"), "a relative link inside the tree resolves inside the job");
  assert.ok(lines.includes(`sha=${sha256(binary)}`), "binary content arrives byte-exact");
  assert.ok(lines.includes("empty-size=0"));
  assert.ok(lines.includes("emptydir-entries=0"));
  assert.ok(lines.includes("abs-not-followed"), `the CLI uploaded the link, not the host file it points to:\n${out.stdout}`);
  assert.doesNotMatch(out.stdout, /HOST-SECRET-CONTENT/);

  // On the host: the same tree in the job's work dir, owned by the job's mapped root, links not followed.
  const work = workDirOf(id);
  const host = (rel: string) => lstatSync(path.join(work, rel));
  for (const rel of ["run.sh", "secret.txt", "empty.txt", "emptydir", "nested", "nested/deep", "nested/deep/er/file.txt", "link", "abs", "bin.dat"]) {
    const st = host(rel);
    assert.deepEqual([st.uid, st.gid], [ID_MAP_BASE, ID_MAP_BASE], `${rel} on the host is owned by the job's mapped root`);
  }
  assert.equal(host("run.sh").mode & 0o7777, 0o755);
  assert.equal(host("secret.txt").mode & 0o7777, 0o600);
  assert.equal(host("emptydir").mode & 0o7777, 0o750);
  assert.ok(host("link").isSymbolicLink() && host("abs").isSymbolicLink(), "links are links on the host");
  assert.equal(readlinkSync(path.join(work, "abs")), outside);
  assert.equal(sha256(readFileSync(path.join(work, "bin.dat"))), sha256(binary));
  assert.equal(readFileSync(outside, "utf8"), "HOST-SECRET-CONTENT\n", "the host file the link names is untouched");
});

test("fidelity through the raw protocol: setuid/setgid/sticky bits dropped, missing parents made 0755, owners on the host", T, async () => {
  const r = await runUpload({ command: "sh", args: ["-c", "stat -c '%n %a %u:%g' suid sgid-dir implicit implicit/child/f"] }, [
    { kind: "file", path: "suid", content: "#!/bin/sh\n", mode: 0o4755 },
    { kind: "dir", path: "sgid-dir", mode: 0o3777 },
    // No entries for implicit and implicit/child: the daemon makes them.
    { kind: "file", path: "implicit/child/f", content: "f", mode: 0o640 },
  ]);
  assert.equal(r.job.status, "COMPLETED", `${r.job.reason}\n${r.stderr}`);
  assert.equal(r.stdout, "suid 755 0:0\nsgid-dir 777 0:0\nimplicit 755 0:0\nimplicit/child/f 640 0:0\n");
  const work = workDirOf(r.id);
  for (const [rel, mode] of [["suid", 0o755], ["sgid-dir", 0o777], ["implicit", 0o755], ["implicit/child", 0o755], ["implicit/child/f", 0o640]] as const) {
    const st = lstatSync(path.join(work, rel));
    assert.equal(st.mode & 0o7777, mode, `${rel}: mode ${(st.mode & 0o7777).toString(8)} on the host`);
    assert.deepEqual([st.uid, st.gid], [ID_MAP_BASE, ID_MAP_BASE], `${rel}: owner on the host`);
  }
  assert.ok(r.job.upload?.roots.includes("implicit"), `roots include the implicitly made parent: ${JSON.stringify(r.job.upload)}`);
});

// ---------------------------------------------------------------------------------------------------------
// 3. The job's record.

test("the upload summary is on the job: RunJobWithUploads' answer, GetJobStatus, ListJobs, rnx status --json", T, async () => {
  const out = await sendScript(c, plan({ command: "true" }, [
    { kind: "dir", path: "d1" },
    { kind: "dir", path: "d1/d2" },
    { kind: "file", path: "d1/f", content: "0123456789" },
    { kind: "file", path: "d1/d2/g", content: "" },
    { kind: "file", path: "top", content: "12345" },
    { kind: "symlink", path: "ln", target: "top" },
  ]));
  const id = started(out);
  const want = { files: 3, directories: 2, symlinks: 1, bytes: 15, roots: ["d1", "ln", "top"] };
  assert.deepEqual(out.job!.upload, want, "in the job answer");
  await waitEnded(id);
  assert.deepEqual((await getStatus(id)).upload, want, "in GetJobStatus");
  assert.deepEqual((await listJobs()).find((j) => j.id === id)?.upload, want, "in ListJobs");
  const st = await d.rnx(["status", "--json", id]);
  assert.equal(st.code, 0, st.stderr);
  assert.deepEqual((JSON.parse(st.stdout) as { upload?: unknown }).upload, want, "in rnx status --json");

  // A job without an upload has none.
  const plain = await unary<Job>((cb) => c.runJob(RunJobReq.fromPartial({ command: "true" }), cb));
  assert.equal((await getStatus(plain.id)).upload, undefined);
  const pst = await d.rnx(["status", "--json", plain.id]);
  assert.equal((JSON.parse(pst.stdout) as { upload?: unknown }).upload ?? null, null);
});

// ---------------------------------------------------------------------------------------------------------
// 4. Attacks through the raw protocol.

/** The sentinel's state: it must stay an empty, root-owned 0777 directory. */
function assertSentinelUntouched(): void {
  assert.deepEqual(readdirSync(sentinel), [], `something was written into the sentinel ${sentinel}`);
  const st = lstatSync(sentinel);
  assert.ok(st.isDirectory());
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, 0, 0o777], "the sentinel's owner and mode are unchanged");
}

/** An attack and what the daemon must answer. */
interface Attack {
  name: string;
  msgs: () => UploadReq[];
  codes: status[];
  /** Patterns the error's details must match (naming the entry or field); a function when they name test paths. */
  details: RegExp[] | (() => RegExp[]);
  /** The daemon must refuse at the header, before `accepted` (so no job record exists). */
  atHeader?: boolean;
  /** Host paths (absolute) the attack aimed at, besides the sentinel; none may exist afterwards. */
  targets?: (work: string) => string[];
  opts?: ScriptOptions;
  client?: () => JobletServiceClient;
}

/** A unique name for the files the attacks try to create. */
const PWNED = `pwned-${randomBytes(4).toString("hex")}`;

/** `rel` resolved every way a careless daemon might: against the work dir, the jobs dir, its cwd and "/". */
const resolutions = (rel: string) => (work: string) => [path.resolve(work, rel), path.resolve(path.dirname(work), rel), path.resolve(process.cwd(), rel), path.resolve("/", rel)];

/** The sentinel relative to a job's work dir (the same for every job: the ID is one path component). */
const toSentinel = (from = "") => path.relative(path.join(jobsDirOf(d), "00000000-0000-4000-8000-000000000000", "work", from), sentinel);

const job = { command: "sh", args: ["-c", `echo RAN > /work/${PWNED}-ran`] };

const ATTACKS: Attack[] = [
  {
    name: "../../etc/<x>",
    msgs: () => plan(job, [{ kind: "file", path: `../../etc/${PWNED}`, content: "x" }]),
    codes: [status.INVALID_ARGUMENT],
    details: () => [new RegExp(escapeRe(`../../etc/${PWNED}`))],
    targets: resolutions(`../../etc/${PWNED}`),
  },
  {
    name: "../ aimed at the sentinel",
    msgs: () => plan(job, [{ kind: "file", path: `${toSentinel()}/${PWNED}`, content: "x" }]),
    codes: [status.INVALID_ARGUMENT],
    details: () => [new RegExp(escapeRe(`${toSentinel()}/${PWNED}`))],
  },
  {
    name: "a/../../.. resolving outside (aimed at the sentinel)",
    msgs: () => plan(job, [{ kind: "dir", path: "a" }, { kind: "file", path: `a/${toSentinel("a")}/${PWNED}`, content: "x" }]),
    codes: [status.INVALID_ARGUMENT],
    details: () => [new RegExp(escapeRe(`a/${toSentinel("a")}/${PWNED}`))],
  },
  {
    name: "a DIRECTORY entry ../ aimed at the sentinel",
    msgs: () => plan(job, [{ kind: "dir", path: `${toSentinel()}/${PWNED}` }]),
    codes: [status.INVALID_ARGUMENT],
    details: () => [new RegExp(escapeRe(`${toSentinel()}/${PWNED}`))],
  },
  {
    name: "an absolute path (into the sentinel)",
    msgs: () => plan(job, [{ kind: "file", path: `${sentinel}/${PWNED}`, content: "x" }]),
    codes: [status.INVALID_ARGUMENT],
    details: () => [new RegExp(escapeRe(`${sentinel}/${PWNED}`))],
    targets: (work) => [path.join(work, sentinel, PWNED)],
  },
  {
    name: "a symlink to the sentinel, then a FILE under it",
    msgs: () => plan(job, [{ kind: "symlink", path: "link", target: sentinel }, { kind: "file", path: `link/${PWNED}`, content: "x" }]),
    codes: [status.INVALID_ARGUMENT],
    details: () => [new RegExp(escapeRe(`link/${PWNED}`))],
  },
  {
    name: "a relative symlink escaping to the sentinel, then a FILE under it",
    msgs: () => plan(job, [{ kind: "symlink", path: "link", target: toSentinel() }, { kind: "file", path: `link/${PWNED}`, content: "x" }]),
    codes: [status.INVALID_ARGUMENT],
    details: () => [new RegExp(escapeRe(`link/${PWNED}`))],
  },
  {
    name: "a symlink to the sentinel, then a DIRECTORY under it",
    msgs: () => plan(job, [{ kind: "symlink", path: "link", target: sentinel }, { kind: "dir", path: `link/${PWNED}` }]),
    codes: [status.INVALID_ARGUMENT],
    details: () => [new RegExp(escapeRe(`link/${PWNED}`))],
  },
  {
    name: "a symlink to the sentinel, then a SYMLINK under it",
    msgs: () => plan(job, [{ kind: "symlink", path: "link", target: sentinel }, { kind: "symlink", path: `link/${PWNED}`, target: "/etc/shadow" }]),
    codes: [status.INVALID_ARGUMENT],
    details: () => [new RegExp(escapeRe(`link/${PWNED}`))],
  },
  {
    name: "a symlink to the sentinel, a DIRECTORY of the same path, then a FILE under it",
    msgs: () => plan(job, [{ kind: "symlink", path: "link", target: sentinel }, { kind: "dir", path: "link" }, { kind: "file", path: `link/${PWNED}`, content: "x" }]),
    codes: [status.INVALID_ARGUMENT],
    details: [/link/],
  },
  {
    name: "a symlink to a file in the sentinel, then a FILE of the same path (write through the link)",
    msgs: () => plan(job, [{ kind: "symlink", path: "l", target: `${sentinel}/${PWNED}` }, { kind: "file", path: "l", content: "x" }]),
    codes: [status.INVALID_ARGUMENT],
    details: [/\bl\b/],
  },
  {
    name: "a FILE x, then a DIRECTORY x (a file replaced by a directory)",
    msgs: () => plan(job, [{ kind: "file", path: "x", content: "file" }, { kind: "dir", path: "x" }]),
    codes: [status.INVALID_ARGUMENT],
    details: [/\bx\b/],
  },
  {
    name: "a DIRECTORY x, then a FILE x",
    msgs: () => plan(job, [{ kind: "dir", path: "x" }, { kind: "file", path: "x", content: "file" }]),
    codes: [status.INVALID_ARGUMENT],
    details: [/\bx\b/],
  },
  {
    name: "a FILE x, then a FILE x/y (a file used as a directory)",
    msgs: () => plan(job, [{ kind: "file", path: "x", content: "file" }, { kind: "file", path: "x/y", content: "y" }]),
    codes: [status.INVALID_ARGUMENT],
    details: [/x\/y/],
  },
  {
    name: "the job's workdir under an uploaded symlink to the sentinel",
    msgs: () => plan({ ...job, workdir: `link/${PWNED}` }, [{ kind: "symlink", path: "link", target: sentinel }]),
    codes: [status.INVALID_ARGUMENT, status.FAILED_PRECONDITION],
    details: [/workdir/, /link/],
  },
  {
    name: "the job's workdir being an uploaded symlink to the sentinel (chown through the link)",
    msgs: () => plan({ ...job, workdir: "link" }, [{ kind: "symlink", path: "link", target: sentinel }]),
    codes: [status.INVALID_ARGUMENT, status.FAILED_PRECONDITION],
    details: [/workdir/, /link/],
  },
  {
    name: "a huge declared size (header.totalBytes 1 TiB), refused at the header",
    msgs: () => [header(job, 2 ** 40, 1), entry("a", UploadKind.FILE, { size: 2 ** 40 }), data(Buffer.alloc(1024)), end()],
    codes: [status.RESOURCE_EXHAUSTED, status.INVALID_ARGUMENT],
    details: [/uploads\.maxTotalMB|totalBytes/],
    atHeader: true,
  },
  {
    name: "more entries declared than uploads.maxEntries, refused at the header",
    msgs: () => [header(job, 0, 100_001), entry("a", UploadKind.DIRECTORY), end()],
    codes: [status.RESOURCE_EXHAUSTED, status.INVALID_ARGUMENT],
    details: [/uploads\.maxEntries|totalEntries/],
    atHeader: true,
  },
  {
    name: "an entry whose size exceeds header.totalBytes",
    msgs: () => [header(job, 10, 1), entry("big", UploadKind.FILE, { size: 4 * MiB }), ...chunks(Buffer.alloc(4 * MiB)), end()],
    codes: [status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED],
    details: [/big/, /size|totalBytes/],
  },
  {
    name: "files whose sizes add up past header.totalBytes (each within it)",
    msgs: () => [header(job, 10, 2), entry("a", UploadKind.FILE, { size: 6 }), data(Buffer.alloc(6)), entry("b", UploadKind.FILE, { size: 6 }), data(Buffer.alloc(6)), end()],
    codes: [status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED],
    details: [/\bb\b|totalBytes/],
  },
  {
    name: "more entries than header.totalEntries",
    msgs: () => [header(job, 0, 1), entry("a", UploadKind.DIRECTORY), entry("b", UploadKind.DIRECTORY), end()],
    codes: [status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED],
    details: [/totalEntries|\bb\b/],
  },
  {
    name: "UPLOAD_KIND_UNSPECIFIED (no device files or other kinds)",
    msgs: () => [header(job, 0, 1), entry("dev", UploadKind.UPLOAD_KIND_UNSPECIFIED), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/kind/, /dev/],
  },
  {
    name: "an unknown kind number (7)",
    msgs: () => [header(job, 0, 1), entry("dev", 7 as UploadKind), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/kind/, /dev/],
  },
  {
    name: "more data than the entry's size",
    msgs: () => [header(job, 4, 1), entry("a", UploadKind.FILE, { size: 4 }), data(Buffer.from("12345678")), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/\ba\b/],
  },
  {
    name: "less data than the entry's size, then the next entry",
    msgs: () => [header(job, 8, 2), entry("a", UploadKind.FILE, { size: 8 }), data(Buffer.from("1234")), entry("b", UploadKind.DIRECTORY), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/\ba\b/],
  },
  {
    name: "less data than the entry's size, then end",
    msgs: () => [header(job, 8, 1), entry("a", UploadKind.FILE, { size: 8 }), data(Buffer.from("1234")), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/\ba\b/],
  },
  {
    name: "data after a DIRECTORY entry",
    msgs: () => [header(job, 0, 1), entry("a", UploadKind.DIRECTORY), data(Buffer.from("xyz")), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/data|\ba\b/],
  },
  {
    name: "data before any entry",
    msgs: () => [header(job, 3, 1), data(Buffer.from("xyz")), entry("a", UploadKind.FILE, { size: 3 }), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/data|entry/],
  },
  {
    name: "a second header",
    msgs: () => [header(job, 0, 1), header(job, 0, 1), entry("a", UploadKind.DIRECTORY), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/header/],
  },
  {
    name: "no header (an entry first), refused before anything is accepted",
    msgs: () => [entry("a", UploadKind.DIRECTORY), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/header/],
    atHeader: true,
  },
  {
    name: "a header with an invalid job (empty command), refused at the header",
    msgs: () => [header({ command: "" }, 0, 1), entry("a", UploadKind.DIRECTORY), end()],
    codes: [status.INVALID_ARGUMENT],
    details: [/command/],
    atHeader: true,
  },
  {
    name: "a stream that half-closes without end",
    msgs: () => [header(job, 3, 1), entry("a", UploadKind.FILE, { size: 3 }), data(Buffer.from("abc"))],
    codes: [status.INVALID_ARGUMENT, status.CANCELLED],
    details: [/end/],
    opts: { timeoutMs: 10_000 },
  },
  {
    name: "a viewer certificate",
    msgs: () => plan(job, [{ kind: "file", path: "a", content: "x" }]),
    codes: [status.PERMISSION_DENIED],
    details: [/viewer|admin|permission|role/i],
    atHeader: true,
    client: () => d.client("viewer"),
  },
];

// Malformed paths, each its own stream.
for (const [label, p, re] of [
  ["an empty path", "", /path/],
  ['"."', ".", /path|"\."/],
  ['a "." component', "a/./b", /a\/\.\/b/],
  ["an empty component", "a//b", /a\/\/b/],
  ["a trailing slash", "a/", /a\//],
  ['a trailing ".."', "a/..", /a\/\.\./],
  ["a NUL byte", "a\0b", /path/],
  ["a component longer than 255 bytes", `${"n".repeat(300)}`, /path|n{20}/],
  ["a path longer than 4096 bytes", `${"d/".repeat(2100)}f`, /path|(d\/){5}/],
] as const) {
  ATTACKS.push({ name: `a malformed path: ${label}`, msgs: () => plan(job, [{ kind: "file", path: p, content: "x" }]), codes: [status.INVALID_ARGUMENT], details: [re] });
}
ATTACKS.push({
  name: "a symlink with an empty target",
  msgs: () => plan(job, [{ kind: "symlink", path: "l", target: "" }]),
  codes: [status.INVALID_ARGUMENT],
  details: [/\bl\b|linkTarget/],
});

/**
 * Runs one attack and checks everything: the refusal, the record (FAILED with a reason, or none), the work dir
 * gone, nothing at the aimed-at host paths, nothing of the job in the runtime or the cgroups, and the daemon
 * still starting jobs.
 */
async function checkAttack(a: Attack): Promise<void> {
  const jobsBefore = new Set((await listJobs()).map((j) => j.id));
  const client = a.client?.() ?? c;
  let out: UploadOutcome;
  try {
    out = await sendScript(client, a.msgs(), a.opts);
  } finally {
    if (client !== c) client.close();
  }
  assert.ok(out.error, `expected a refusal, got ${describe(out)}`);
  assert.ok(a.codes.includes(out.error.code), `expected ${a.codes.map((x) => status[x]).join(" or ")}, got ${describe(out)}`);
  for (const re of typeof a.details === "function" ? a.details() : a.details) assert.match(out.error.details, re, `the refusal names the culprit: ${describe(out)}`);
  assert.equal(out.job, undefined, "no job started");
  if (a.atHeader) assert.equal(out.accepted, undefined, `refused before accepted: ${describe(out)}`);

  // What the attack aimed at, first: nothing of it may exist on the host.
  for (const t of a.targets?.(path.join(jobsDirOf(d), "00000000-0000-4000-8000-000000000000", "work")) ?? []) assert.ok(!existsSync(t), `${t} was created`);
  if (out.accepted) for (const t of a.targets?.(workDirOf(out.accepted.jobId)) ?? []) assert.ok(!existsSync(t), `${t} was created`);
  assertSentinelUntouched();
  assert.ok(!existsSync(`/etc/${PWNED}`));

  const newJobs = (await listJobs()).filter((j) => !jobsBefore.has(j.id));
  if (!out.accepted) {
    assert.deepEqual(newJobs.map((j) => `${j.id} ${j.status}`), [], "a refusal before accepted leaves no job record");
  } else {
    const id = out.accepted.jobId;
    assert.deepEqual(newJobs.map((j) => j.id), [id], "the only new job is the one accepted");
    const rec = await waitFor(`job ${id} recorded FAILED`, async () => {
      const j = await getStatus(id);
      return j.status === "FAILED" ? j : undefined;
    }, 5_000);
    assert.notEqual(rec.reason, "", "the record says why");
    assert.equal(rec.startTime, "", `the job never started: ${JSON.stringify(rec)}`);
    const work = workDirOf(id);
    await waitFor(`${work} removed`, () => (existsSync(work) ? undefined : true), 3_000);
    assert.ok(!d.runtimeContainers().includes(id), "no container of the job");
    assert.deepEqual(d.leftoverCgroups().filter((g) => g.includes(id)), [], "no cgroup of the job");
  }

  // The daemon still runs jobs.
  const ok = await unary<Job>((cb) => c.runJob(RunJobReq.fromPartial({ command: "true" }), cb));
  assert.equal((await waitEnded(ok.id)).status, "COMPLETED");
}

for (const a of ATTACKS) test(`attack: ${a.name}`, T, () => checkAttack(a));

test("attack: a stream cut off half-way through a file: the job never starts, is FAILED, nothing half-written stays", T, async () => {
  const jobsBefore = new Set((await listJobs()).map((j) => j.id));
  const size = 16 * MiB;
  let sawPartial = 0;
  const out = await sendScript(c, [header(job, size, 1), entry("big.bin", UploadKind.FILE, { size }), ...chunks(randomBytes(size / 2))], {
    finish: "cancel",
    // Cut only once the daemon has written part of the file into the job's work dir.
    beforeFinish: async (accepted) => {
      const work = workDirOf(accepted!.jobId);
      sawPartial = await waitFor("part of big.bin on the host", () => {
        const bytes = existsSync(work) ? sizeOfTree(work) : 0;
        return bytes > 0 ? bytes : undefined;
      }, 10_000);
    },
  });
  assert.ok(out.accepted, describe(out));
  assert.ok(sawPartial > 0 && sawPartial < size, `partial file seen on the host: ${sawPartial} bytes`);
  assert.equal(out.error?.code, status.CANCELLED, describe(out));
  const id = out.accepted.jobId;
  const rec = await waitFor(`job ${id} recorded FAILED`, async () => {
    const j = await getStatus(id);
    return j.status === "FAILED" ? j : undefined;
  }, 5_000);
  assert.notEqual(rec.reason, "");
  assert.equal(rec.startTime, "");
  const work = workDirOf(id);
  await waitFor(`${work} removed`, () => (existsSync(work) ? undefined : true), 5_000);
  assert.ok(!d.runtimeContainers().includes(id));
  assert.deepEqual(d.leftoverCgroups().filter((g) => g.includes(id)), []);
  assert.deepEqual((await listJobs()).filter((j) => !jobsBefore.has(j.id)).map((j) => j.id), [id]);
  const ok = await unary<Job>((cb) => c.runJob(RunJobReq.fromPartial({ command: "true" }), cb));
  assert.equal((await waitEnded(ok.id)).status, "COMPLETED");
});

test("a stop during the upload: DeleteJob is refused, StopJob ends it STOPPED, nothing stays on the host", T, async () => {
  const size = 8 * MiB;
  let deleteError: string | undefined;
  const out = await sendScript(c, [header(job, size, 1), entry("big.bin", UploadKind.FILE, { size }), ...chunks(randomBytes(size / 2))], {
    beforeFinish: async (accepted) => {
      const id = accepted!.jobId;
      await waitFor("part of big.bin on the host", () => (sizeOfTree(workDirOf(id)) > 0 ? true : undefined), 10_000);
      deleteError = await unary((cb) => c.deleteJob({ id }, cb)).then(
        () => "deleted",
        (e: { code: number }) => status[e.code],
      );
      await unary((cb) => c.stopJob({ id }, cb));
    },
  });
  assert.ok(out.accepted, describe(out));
  assert.equal(deleteError, "FAILED_PRECONDITION", "a job still receiving its upload cannot be deleted");
  assert.ok(out.error, `the upload call fails once the job is stopped: ${describe(out)}`);
  const id = out.accepted.jobId;
  const rec = await getStatus(id);
  assert.equal(rec.status, "STOPPED", JSON.stringify(rec));
  assert.equal(rec.startTime, "");
  const work = workDirOf(id);
  await waitFor(`${work} removed`, () => (existsSync(work) ? undefined : true), 5_000);
  assert.ok(!d.runtimeContainers().includes(id));
});

/** Total size of the regular files under `dir`, bytes (0 if it vanished meanwhile). */
function sizeOfTree(dir: string): number {
  let total = 0;
  try {
    for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (e.isFile()) total += statSync(path.join(e.parentPath ?? e.path, e.name)).size;
    }
  } catch {
    return 0;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------------------
// 5. Limits (the second daemon: uploads.maxTotalMB 1, uploads.maxEntries 5).

test("limits: exactly 1 MiB in 5 entries runs through rnx (the limits are inclusive)", T, async () => {
  const dir = writeTree(path.join(local, "limit-ok"), { "a.bin": randomBytes(MiB - 10), "b.bin": randomBytes(10), "c/": "", "c/d": "", e: "" });
  const r = await rnxIn(small, dir, ["run", "--upload-dir", ".", "sh", "-c", "du -b a.bin b.bin | cut -f1"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${MiB - 10}\n10\n`);
});

test("limits: accepted announces the server's limits", T, async () => {
  const out = await sendScript(smallClient, plan({ command: "true" }, [{ kind: "file", path: "f", content: "x" }]));
  started(out);
  assert.equal(out.accepted!.maxBytes, SMALL_MAX_MB * MiB);
  assert.equal(out.accepted!.maxEntries, SMALL_MAX_ENTRIES);
});

/** Jobs and work dirs of the small daemon, to compare before and after a refusal. */
async function smallFootprint(): Promise<{ jobs: string[]; dirs: string[] }> {
  const dir = jobsDirOf(small);
  return { jobs: (await listJobs(smallClient)).map((j) => j.id).sort(), dirs: existsSync(dir) ? readdirSync(dir).sort() : [] };
}

test("limits: rnx refuses a 2 MiB upload naming uploads.maxTotalMB; no job, nothing on the host", T, async () => {
  const dir = writeTree(path.join(local, "limit-bytes"), { "big.bin": randomBytes(2 * MiB) });
  const before = await smallFootprint();
  const r = await rnxIn(small, dir, ["run", "--upload", "big.bin", "true"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /uploads\.maxTotalMB/);
  assert.match(r.stderr, /big\.bin|2(\.0+)? ?Mi?B|2097152/i, `the message says what was too big: ${r.stderr}`);
  assert.equal(r.stdout, "");
  assert.deepEqual(await smallFootprint(), before);
});

test("limits: rnx refuses 6 entries naming uploads.maxEntries; no job, nothing on the host", T, async () => {
  const dir = writeTree(path.join(local, "limit-entries"), { "p/1": "", "p/2": "", "p/3": "", "p/4": "", "p/5": "", "p/6": "" });
  const before = await smallFootprint();
  const r = await rnxIn(small, dir, ["run", "--upload-dir", "p", "true"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /uploads\.maxEntries/);
  assert.match(r.stderr, /\b6\b/, `the message gives the count: ${r.stderr}`);
  assert.deepEqual(await smallFootprint(), before);
});

test("limits: the raw protocol cannot get past them by declaring less than it sends", T, async () => {
  // Declared over the limit: refused at the header.
  const over = await sendScript(smallClient, [header({ command: "true" }, 2 * MiB, 1), entry("a", UploadKind.FILE, { size: 2 * MiB }), end()]);
  assert.equal(over.accepted, undefined, describe(over));
  assert.ok([status.RESOURCE_EXHAUSTED, status.INVALID_ARGUMENT].includes(over.error?.code as status), describe(over));
  assert.match(over.error!.details, /uploads\.maxTotalMB/);

  // Declared 100 bytes, then a 2 MiB file.
  const before = await smallFootprint();
  const lie = await sendScript(smallClient, [header({ command: "true" }, 100, 1), entry("a", UploadKind.FILE, { size: 2 * MiB }), ...chunks(randomBytes(2 * MiB)), end()]);
  assert.equal(lie.job, undefined, describe(lie));
  assert.ok(lie.accepted, describe(lie));
  assert.ok([status.RESOURCE_EXHAUSTED, status.INVALID_ARGUMENT].includes(lie.error?.code as status), describe(lie));
  const work = workDirOf(lie.accepted.jobId, small);
  await waitFor(`${work} removed`, () => (existsSync(work) ? undefined : true), 5_000);

  // Declared 5 entries, then 6.
  const six = await sendScript(smallClient, [header({ command: "true" }, 0, 5), ...["1", "2", "3", "4", "5", "6"].map((n) => entry(n, UploadKind.DIRECTORY)), end()]);
  assert.equal(six.job, undefined, describe(six));
  assert.ok([status.RESOURCE_EXHAUSTED, status.INVALID_ARGUMENT].includes(six.error?.code as status), describe(six));
  if (six.accepted) await waitFor("work dir removed", () => (existsSync(workDirOf(six.accepted!.jobId, small)) ? undefined : true), 5_000);
  const after = await smallFootprint();
  assert.deepEqual(after.dirs.filter((x) => !before.dirs.includes(x) && existsSync(path.join(jobsDirOf(small), x, "work"))), []);
  for (const id of after.jobs.filter((x) => !before.jobs.includes(x))) assert.equal((await getStatus(id, smallClient)).status, "FAILED");
});

// ---------------------------------------------------------------------------------------------------------
// 6. Retention.

test("rnx rm removes the job's work dir with the uploaded files from the host", T, async () => {
  const dir = writeTree(path.join(local, "retention"), { "script.py": "print('kept until rm')\n" });
  const r = await rnxIn(d, dir, ["run", "--detach", "--upload", "script.py", "python3", "script.py"]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.equal((await waitEnded(id)).status, "COMPLETED");
  const work = workDirOf(id);
  assert.equal(readFileSync(path.join(work, "script.py"), "utf8"), "print('kept until rm')\n", "the upload stays while the job is kept");
  const rm = await d.rnx(["rm", id]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.ok(!existsSync(work), `${work} still exists after rnx rm`);
  assert.ok(!existsSync(path.join(jobsDirOf(d), id)), "the job's dir is gone too");
});

// ---------------------------------------------------------------------------------------------------------
// 7. A larger upload.

test("a 64 MiB file arrives intact through the CLI (wall time and rate printed)", { timeout: 120_000 }, async (t) => {
  const size = 64 * MiB;
  const bytes = randomBytes(size);
  const want = sha256(bytes);
  const dir = writeTree(path.join(local, "large"), { "big.bin": bytes });

  const t0 = performance.now();
  const r = await rnxIn(d, dir, ["run", "--upload", "big.bin", "sh", "-c", "sha256sum big.bin | cut -d' ' -f1"], 110_000);
  const cliMs = performance.now() - t0;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${want}\n`);
  t.diagnostic(`rnx run --upload 64 MiB + sha256sum in the job: ${Math.round(cliMs)} ms wall, ${(size / MiB / (cliMs / 1000)).toFixed(1)} MiB/s overall`);
});

test("a 64 MiB file arrives intact through the raw protocol (time until the job runs printed)", { timeout: 120_000 }, async (t) => {
  const size = 64 * MiB;
  const bytes = randomBytes(size);
  const want = sha256(bytes);
  const t0 = performance.now();
  const out = await sendScript(c, plan({ command: "sh", args: ["-c", "sha256sum big.bin | cut -d' ' -f1"] }, [{ kind: "file", path: "big.bin", content: bytes }]), { timeoutMs: 110_000 });
  const rawMs = performance.now() - t0;
  const id = started(out);
  t.diagnostic(`raw RunJobWithUploads 64 MiB until the job runs: ${Math.round(rawMs)} ms, ${(size / MiB / (rawMs / 1000)).toFixed(1)} MiB/s`);
  assert.equal((await output(id)).stdout, `${want}\n`);
  assert.equal(sha256(readFileSync(path.join(workDirOf(id), "big.bin"))), want, "on the host too");
});

// ---------------------------------------------------------------------------------------------------------
// 8. The daemon dies during an upload (last: it restarts the second daemon).

test("the daemon killed during an upload: after its restart the job is FAILED and its work dir gone", T, async () => {
  const size = MiB;
  let id = "";
  const out = await sendScript(smallClient, [header({ command: "true" }, size, 1), entry("big.bin", UploadKind.FILE, { size }), ...chunks(randomBytes(size / 2))], {
    beforeFinish: async (accepted) => {
      id = accepted!.jobId;
      await waitFor("part of big.bin on the host", () => (sizeOfTree(workDirOf(id, small)) > 0 ? true : undefined), 10_000);
      await small.stopProcess("SIGKILL");
    },
    finish: "cancel",
  });
  assert.ok(out.accepted && out.error, describe(out));
  assert.ok(existsSync(workDirOf(id, small)), "control: the partial upload is on the host while the daemon is down");
  await small.launch();
  const rec = await getStatus(id, smallClient);
  assert.equal(rec.status, "FAILED", JSON.stringify(rec));
  assert.notEqual(rec.reason, "");
  assert.equal(rec.startTime, "");
  await waitFor("work dir removed after the restart", () => (existsSync(workDirOf(id, small)) ? undefined : true), 5_000);
  assert.ok(!small.runtimeContainers().includes(id));
});
