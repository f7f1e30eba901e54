import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { checkKernel } from "./kernel.js";
import { testConfig, type TestConfig } from "./test-config.js";

let withUserns: TestConfig;
let without: TestConfig;
before(async () => {
  withUserns = await testConfig();
  without = await testConfig({ security: { userNamespace: false, seccomp: "unconfined" } });
});
after(() => {
  withUserns.cleanup();
  without.cleanup();
});

function files(dir: string, maxUserNamespaces: string | undefined, status: string) {
  const f = { maxUserNamespaces: path.join(dir, "max_user_namespaces"), procStatus: path.join(dir, "status") };
  if (maxUserNamespaces !== undefined) writeFileSync(f.maxUserNamespaces, maxUserNamespaces);
  writeFileSync(f.procStatus, status);
  return f;
}

test("user namespaces and seccomp available: both ok", () => {
  const rs = checkKernel(withUserns.config, files(withUserns.dir, "15000\n", "Name:\tnode\nSeccomp:\t0\nSeccomp_filters:\t0\n"));
  assert.deepEqual(rs.map((r) => [r.id, r.status]), [["userns", "ok"], ["seccomp", "ok"]]);
  assert.match(rs[0]!.found, /max_user_namespaces = 15000.*host uid 100000/);
});

test("max_user_namespaces 0 fails when jobs use user namespaces, with the sysctl to run", () => {
  const rs = checkKernel(withUserns.config, files(withUserns.dir, "0\n", "Seccomp:\t0\n"));
  assert.equal(rs[0]!.status, "fail");
  assert.match(rs[0]!.found, /max_user_namespaces is 0/);
  assert.match(rs[0]!.hint!, /sysctl -w user\.max_user_namespaces=.*or set security\.userNamespace: false/);
});

test("a kernel without seccomp fails while jobs get a profile", () => {
  const rs = checkKernel(withUserns.config, files(withUserns.dir, undefined, "Name:\tnode\n"));
  assert.equal(rs[0]!.status, "fail", "no user namespace file at all");
  assert.equal(rs[1]!.status, "fail");
  assert.match(rs[1]!.found, /built without seccomp/);
  assert.match(rs[1]!.hint!, /CONFIG_SECCOMP/);
});

test("features the config does not use only warn when missing", () => {
  const rs = checkKernel(without.config, files(without.dir, "0\n", "Name:\tnode\n"));
  assert.deepEqual(rs.map((r) => r.status), ["warn", "warn"]);
});
