import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { checkStateDirs } from "./state.js";
import { testConfig, type TestConfig } from "./test-config.js";

const made: TestConfig[] = [];
after(() => made.forEach((t) => t.cleanup()));

test("an existing state dir is written to (and the probe removed), with its free space", async () => {
  const t = await testConfig();
  made.push(t);
  mkdirSync(t.config.stateDir);
  const [r] = checkStateDirs(t.config);
  assert.equal(r!.status, "ok", r!.found);
  assert.match(r!.found, new RegExp(`^${t.config.stateDir} is writable; \\d+(\\.\\d)? \\w+ free of`));
  assert.deepEqual(readdirSync(t.config.stateDir), []);
});

test("a state dir that does not exist yet is checked in the directory it will be created in", async () => {
  const t = await testConfig();
  made.push(t);
  const [r] = checkStateDirs(t.config);
  assert.equal(r!.status, "ok");
  assert.match(r!.found, /does not exist yet; the daemon creates it/);
});

test("a jobs dir outside the state dir is checked too", async () => {
  const t0 = await testConfig();
  made.push(t0);
  const t = await testConfig({ filesystem: { baseDir: path.join(t0.dir, "elsewhere") } });
  made.push(t);
  assert.deepEqual(checkStateDirs(t.config).map((r) => r.id), ["state", "jobs"]);
});

test("a run dir outside the state dir is checked too, and not for the jobs' uid (only root enters it)", async () => {
  const t0 = await testConfig();
  made.push(t0);
  const runDir = path.join(t0.dir, "closed", "run");
  mkdirSync(path.dirname(runDir), { mode: 0o700 });
  const t = await testConfig({ state: { dir: path.join(t0.dir, "state"), runDir } });
  made.push(t);
  const results = checkStateDirs(t.config);
  assert.deepEqual(results.map((r) => [r.id, r.status]), [["state", "ok"], ["run", "ok"]]);
  assert.match(results[1]!.found, new RegExp(`^${path.dirname(runDir)} \\(${runDir} does not exist yet; the daemon creates it\\) is writable`));
  const inside = await testConfig({ state: { dir: path.join(t0.dir, "s2"), runDir: path.join(t0.dir, "s2", "run") } });
  made.push(inside);
  assert.deepEqual(checkStateDirs(inside.config).map((r) => r.id), ["state"], "a run dir inside the state dir is the state dir's check");
});

test("with user namespaces, a parent directory others cannot search fails, naming it", async () => {
  const t = await testConfig();
  made.push(t);
  chmodSync(t.dir, 0o700);
  const [r] = checkStateDirs(t.config);
  assert.equal(r!.status, "fail");
  assert.match(r!.found, new RegExp(`host uid 100000 .* cannot pass through ${t.dir} \\(no o\\+x\\)`));
  assert.match(r!.hint!, new RegExp(`chmod o\\+x ${t.dir}`));
  const off = await testConfig({ security: { userNamespace: false } });
  made.push(off);
  chmodSync(off.dir, 0o700);
  assert.equal(checkStateDirs(off.config)[0]!.status, "ok", "no user namespace: nothing to pass through");
});
