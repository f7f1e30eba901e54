// The reader against a log written by the real conmon: a runc job (read-only empty rootfs, /usr bound in)
// writes random binary data to stdout and stderr with pauses, and a follower started before the job must
// decode exactly those bytes per stream. Needs root, runc and conmon; skipped (visibly) without them.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { it } from "node:test";
import { readLog, totalOutputBytes, type LogChunk } from "./reader.js";

const RUNC = "/usr/sbin/runc";
const CONMON = "/usr/bin/conmon";
const missing = process.getuid?.() !== 0 ? "needs root" : !existsSync(RUNC) ? `needs ${RUNC}` : !existsSync(CONMON) ? `needs ${CONMON}` : null;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

it("decodes a real conmon k8s-file log of binary stdout and stderr exactly, while following it", { skip: missing ?? false, timeout: 30_000 }, async () => {
  const root = mkdtempSync(path.join(tmpdir(), "joblet-conmon-log-"));
  const id = `joblet-logtest-${process.pid}`;
  const bundle = path.join(root, "bundle");
  const state = path.join(root, "state");
  const exits = path.join(root, "exits");
  const data = path.join(root, "data");
  const logPath = path.join(root, "job.log");
  for (const d of [bundle, state, exits, data, path.join(root, "socks"), path.join(bundle, "rootfs", "usr")]) mkdirSync(d, { recursive: true });
  for (const l of ["bin", "lib", "lib64", "sbin"]) symlinkSync(`usr/${l}`, path.join(bundle, "rootfs", l));

  const out1 = randomBytes(150_000);
  const err = randomBytes(90_000);
  const out2 = Buffer.concat([randomBytes(20_000), Buffer.from("\r\n\0 trailing partial line")]);
  writeFileSync(path.join(data, "out1"), out1);
  writeFileSync(path.join(data, "err"), err);
  writeFileSync(path.join(data, "out2"), out2);

  execFileSync(RUNC, ["spec"], { cwd: bundle });
  const spec = JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8"));
  spec.process.terminal = false;
  spec.process.args = ["sh", "-c", "cat /data/out1; sleep 0.2; cat /data/err >&2; sleep 0.2; cat /data/out2"];
  spec.root = { path: "rootfs", readonly: true };
  spec.mounts.push(
    { destination: "/usr", type: "bind", source: "/usr", options: ["rbind", "ro", "nosuid", "nodev"] },
    { destination: "/data", type: "bind", source: data, options: ["rbind", "ro"] },
  );
  spec.linux.cgroupsPath = `/${id}`;
  writeFileSync(path.join(bundle, "config.json"), JSON.stringify(spec));

  const exitFile = path.join(exits, id);
  // Follow from before the log exists: the reader must wait for conmon to create it.
  const following = (async () => {
    const chunks: LogChunk[] = [];
    for await (const c of readLog(logPath, 0, { follow: true, isDone: () => existsSync(exitFile), pollMs: 50 })) chunks.push(c);
    return chunks;
  })();
  try {
    // conmon daemonizes and returns; the job starts when the pidfile exists and `runc start` runs.
    execFileSync(CONMON, [
      "--api-version", "1", "-c", id, "-u", id, "-n", id, "-r", RUNC, "-b", bundle,
      "-p", path.join(bundle, "pidfile"), "--exit-dir", exits, "--conmon-pidfile", path.join(bundle, "conmon.pid"),
      "--socket-dir-path", path.join(root, "socks"), "-l", `k8s-file:${logPath}`,
      "--runtime-arg", "--root", "--runtime-arg", state,
    ]);
    for (let i = 0; i < 100 && !existsSync(path.join(bundle, "pidfile")); i++) await sleep(20);
    execFileSync(RUNC, ["--root", state, "start", id]);

    const chunks = await following;
    assert.equal(readFileSync(exitFile, "utf8").trim(), "0", "job exit code");
    const stdout = Buffer.concat(chunks.filter((c) => c.stream === "stdout").map((c) => c.data));
    const stderr = Buffer.concat(chunks.filter((c) => c.stream === "stderr").map((c) => c.data));
    assert.ok(stdout.equals(Buffer.concat([out1, out2])), `stdout: ${stdout.length} bytes decoded, ${out1.length + out2.length} written`);
    assert.ok(stderr.equals(err), `stderr: ${stderr.length} bytes decoded, ${err.length} written`);
    let offset = 0;
    for (const c of chunks) {
      assert.equal(c.offset, offset);
      offset += c.data.length;
    }
    assert.equal(await totalOutputBytes(logPath), offset);
    // Resuming in the middle of the log reproduces the tail exactly.
    const all = Buffer.concat(chunks.map((c) => c.data));
    const from = 123_457;
    const tail: Buffer[] = [];
    for await (const c of readLog(logPath, from)) tail.push(c.data);
    assert.ok(Buffer.concat(tail).equals(all.subarray(from)));
  } finally {
    try {
      execFileSync(RUNC, ["--root", state, "delete", "--force", id], { stdio: "ignore" });
    } catch {
      // Already gone, or never created: nothing to clean up in runc.
    }
    rmSync(root, { recursive: true, force: true });
  }
});
