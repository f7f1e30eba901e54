import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { checkPrograms, programVersion, resolveExecutable } from "./programs.js";
import { testConfig, type TestConfig } from "./test-config.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-doctor-programs-"));
const made: TestConfig[] = [];
after(() => {
  rmSync(dir, { recursive: true, force: true });
  made.forEach((t) => t.cleanup());
});

function script(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

test("resolveExecutable finds names on the search path and checks absolute paths", () => {
  const file = script("fake-runc", "echo 'fake-runc version 9.9'");
  assert.equal(resolveExecutable("fake-runc", `/nonexistent:${dir}`), file);
  assert.equal(resolveExecutable(file), file);
  assert.equal(resolveExecutable("fake-runc", "/nonexistent"), undefined);
  assert.equal(resolveExecutable(path.join(dir, "missing")), undefined);
});

test("programVersion returns the first line, or why there is none", async () => {
  assert.deepEqual(await programVersion(script("v", "echo 'conmon version 2.1.6'; echo 'commit: x'")), { version: "conmon version 2.1.6" });
  const broken = await programVersion(script("broken", "echo 'unknown flag' >&2; exit 3"));
  assert.equal(broken.version, undefined);
  assert.match(broken.error!, /unknown flag/);
});

test("checkPrograms: present programs report their versions; a missing one fails with the key and what to install", async () => {
  const t = await testConfig({ runtime: { path: script("r", "echo 'runc version 1.1.5'"), conmonPath: path.join(dir, "no-conmon") } });
  made.push(t);
  const found = await checkPrograms(t.config);
  assert.deepEqual(found.results.map((r) => [r.id, r.status]), [["runtime", "ok"], ["conmon", "fail"]]);
  assert.match(found.results[0]!.found, /^runc version 1\.1\.5 \(/);
  assert.match(found.results[1]!.found, /runtime\.conmonPath: ".*no-conmon" is not an executable on this host/);
  assert.match(found.results[1]!.hint!, /install conmon \(Debian package `conmon`\) or set runtime\.conmonPath/);
  assert.ok(found.runtimePath);
  assert.equal(found.conmonPath, undefined);
});
