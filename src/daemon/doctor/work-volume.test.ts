import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { after, test } from "node:test";
import { mountPoints } from "../runtime/work-quota.js";
import { testConfig, type TestConfig } from "./test-config.js";
import { checkWorkVolume } from "./work-volume.js";

const made: TestConfig[] = [];
after(() => made.forEach((t) => t.cleanup()));

async function config(workSizeMB: number): Promise<TestConfig> {
  const t = await testConfig({ filesystem: { workSizeMB } });
  made.push(t);
  mkdirSync(t.config.stateDir);
  return t;
}

test("no cap: ok, saying what a job may fill instead", async () => {
  const t = await config(0);
  const r = await checkWorkVolume(t.config);
  assert.equal(r.status, "ok");
  assert.match(r.found, /^off \(filesystem\.workSizeMB: 0\)/);
});

test("a cap: one volume of that size is made, mounted and removed, with its cost", async () => {
  const t = await config(32);
  const r = await checkWorkVolume(t.config);
  assert.equal(r.status, "ok", `${r.found} ${r.hint}`);
  assert.match(r.found, /^each job's \/work is a 32 MiB ext4 volume .* took \d+ ms$/);
  assert.deepEqual(readdirSync(t.config.stateDir), [], "the probe volume's directory was left");
  assert.ok(!mountPoints(readFileSync("/proc/self/mountinfo", "utf8")).some((p) => p.startsWith(t.dir)), "the probe volume is still mounted");
});

test("a cap larger than the free space warns: sparse images can still fill the disk", async () => {
  const t = await config(1024 * 1024);
  const r = await checkWorkVolume(t.config);
  assert.equal(r.status, "warn", `${r.found} ${r.hint}`);
  assert.match(r.found, /1\.0 TiB ext4 volume .* has only .* free$/);
});

test("missing mkfs.ext4 fails, naming filesystem.workSizeMB and the package", async () => {
  const t = await config(16);
  const r = await checkWorkVolume(t.config, "/nonexistent", []);
  assert.equal(r.status, "fail");
  assert.match(r.found, /filesystem\.workSizeMB.*mkfs\.ext4 is not installed/);
  assert.match(r.hint ?? "", /e2fsprogs/);
});
