// Retention against a log written by the real conmon: a runc job prints numbered lines in bursts while the
// cap is enforced every 50 ms and a follower reads from offset 0; the follower and a reader afterwards must
// see exact bytes at the job's own offsets, with the dropped middle reported as gaps. Needs root, runc and
// conmon; skipped (visibly) without them.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { it } from "node:test";
import { holesPathFor, readHolesSync } from "./holes.js";
import { readLog, totalOutputBytes, type LogChunk, type LogGap } from "./reader.js";
import { LogCap } from "./retention.js";

const RUNC = "/usr/sbin/runc";
const CONMON = "/usr/bin/conmon";
const missing = process.getuid?.() !== 0 ? "needs root" : !existsSync(RUNC) ? `needs ${RUNC}` : !existsSync(CONMON) ? `needs ${CONMON}` : null;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MiB = 1 << 20;

const BURSTS = 8;
const LINES_PER_BURST = 20_000;
// What the job prints: BURSTS × LINES_PER_BURST lines of 50 bytes, numbered across bursts.
function expectedOutput(): Buffer {
  const lines: string[] = [];
  for (let b = 0; b < BURSTS; b++) {
    for (let i = 0; i < LINES_PER_BURST; i++) lines.push(`burst ${b} line ${String(b * LINES_PER_BURST + i).padStart(7, "0")} ${"x".repeat(20)}\n`);
  }
  return Buffer.from(lines.join(""));
}

type Event = LogChunk | { gap: LogGap };

function assertGapped(events: Event[], expected: Buffer): LogGap[] {
  let offset = 0;
  const gaps: LogGap[] = [];
  for (const e of events) {
    if ("gap" in e) {
      assert.equal(e.gap.outputStart, offset);
      gaps.push(e.gap);
      offset = e.gap.outputEnd;
      continue;
    }
    assert.equal(e.stream, "stdout");
    assert.equal(e.offset, offset);
    assert.ok(e.data.equals(expected.subarray(offset, offset + e.data.length)), `bytes at ${offset}`);
    offset += e.data.length;
  }
  assert.equal(offset, expected.length);
  return gaps;
}

it("caps a real conmon log while the job writes and a follower reads, offsets exact", { skip: missing ?? false, timeout: 60_000 }, async () => {
  const root = mkdtempSync(path.join(tmpdir(), "joblet-conmon-retention-"));
  const id = `joblet-retention-${process.pid}`;
  const bundle = path.join(root, "bundle");
  const state = path.join(root, "state");
  const exits = path.join(root, "exits");
  const logPath = path.join(root, "job.log");
  for (const d of [bundle, state, exits, path.join(root, "socks"), path.join(bundle, "rootfs", "usr")]) mkdirSync(d, { recursive: true });
  for (const l of ["bin", "lib", "lib64", "sbin"]) symlinkSync(`usr/${l}`, path.join(bundle, "rootfs", l));
  execFileSync(RUNC, ["spec"], { cwd: bundle });
  const spec = JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8"));
  spec.process.terminal = false;
  // mawk by its own name: /usr/bin/awk is a symlink into /etc/alternatives, which the job does not see.
  const awk = `mawk -v b=$b 'BEGIN { for (i = 0; i < ${LINES_PER_BURST}; i++) printf "burst %d line %07d %s\\n", b, b * ${LINES_PER_BURST} + i, "${"x".repeat(20)}" }'`;
  spec.process.args = ["sh", "-c", `b=0; while [ $b -lt ${BURSTS} ]; do ${awk}; sleep 0.15; b=$((b + 1)); done`];
  spec.root = { path: "rootfs", readonly: true };
  spec.mounts.push({ destination: "/usr", type: "bind", source: "/usr", options: ["rbind", "ro", "nosuid", "nodev"] });
  spec.linux.cgroupsPath = `/${id}`;
  writeFileSync(path.join(bundle, "config.json"), JSON.stringify(spec));

  const expected = expectedOutput();
  const exitFile = path.join(exits, id);
  const cap = new LogCap({ maxBytes: 1 * MiB, headBytes: 128 * 1024 });
  const following = (async () => {
    const events: Event[] = [];
    let n = 0;
    for await (const c of readLog(logPath, 0, { follow: true, isDone: () => existsSync(exitFile), pollMs: 20, maxChunkBytes: 4096, onGap: (gap) => events.push({ gap }) })) {
      events.push(c);
      // A client that stalls early on: what it has yet to read gets punched meanwhile.
      if (++n === 10) while (!existsSync(holesPathFor(logPath))) await sleep(20);
    }
    return events;
  })();
  try {
    execFileSync(CONMON, [
      "--api-version", "1", "-c", id, "-u", id, "-n", id, "-r", RUNC, "-b", bundle,
      "-p", path.join(bundle, "pidfile"), "--exit-dir", exits, "--conmon-pidfile", path.join(bundle, "conmon.pid"),
      "--socket-dir-path", path.join(root, "socks"), "-l", `k8s-file:${logPath}`,
      "--runtime-arg", "--root", "--runtime-arg", state,
    ]);
    for (let i = 0; i < 100 && !existsSync(path.join(bundle, "pidfile")); i++) await sleep(20);
    execFileSync(RUNC, ["--root", state, "start", id]);
    let cuts = 0;
    while (!existsSync(exitFile)) {
      cuts += (await cap.enforce(logPath)).holes;
      await sleep(50);
    }
    cuts += (await cap.enforce(logPath)).holes;
    assert.equal(readFileSync(exitFile, "utf8").trim(), "0", "job exit code");
    assert.ok(cuts >= 2, `cut ${cuts} times while the job ran; log of ${statSync(logPath).size} bytes`);

    const followerGaps = assertGapped(await following, expected);
    assert.ok(followerGaps.length >= 1, "the follower skipped at least one punched range");
    const holes = readHolesSync(logPath);
    assert.equal(holes.length, 1);
    const h = holes[0]!;
    const st = statSync(logPath);
    assert.ok(st.size - (h.fileEnd - h.fileStart) <= 1 * MiB);
    assert.ok(st.blocks * 512 <= 1 * MiB + 16 * 1024, `allocated ${st.blocks * 512}`);
    assert.equal(await totalOutputBytes(logPath), expected.length);
    const after: Event[] = [];
    for await (const c of readLog(logPath, 0, { onGap: (gap) => after.push({ gap }) })) after.push(c);
    assert.deepEqual(assertGapped(after, expected), [{ outputStart: h.outputStart, outputEnd: h.outputEnd }]);
  } finally {
    try {
      execFileSync(RUNC, ["--root", state, "delete", "--force", id], { stdio: "ignore" });
    } catch {
      // Already gone, or never created: nothing to clean up in runc.
    }
    rmSync(root, { recursive: true, force: true });
  }
});
