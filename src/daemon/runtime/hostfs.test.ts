import assert from "node:assert/strict";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { prepareHostFs } from "./hostfs.js";

let dir: string;
let host: string;
let state: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "hostfs-test-"));
  host = path.join(dir, "host");
  state = path.join(dir, "state");
  // A merged-/usr host with one real top-level lib dir, secrets in /etc and a CA bundle.
  mkdirSync(path.join(host, "usr", "bin"), { recursive: true });
  mkdirSync(path.join(host, "lib64"), { recursive: true });
  symlinkSync("usr/bin", path.join(host, "bin"));
  mkdirSync(path.join(host, "etc", "ssl", "certs"), { recursive: true });
  mkdirSync(path.join(host, "etc", "alternatives"), { recursive: true });
  mkdirSync(path.join(host, "etc", "joblet"), { recursive: true });
  writeFileSync(path.join(host, "etc", "shadow"), "root:$6$secret:19000::::::\n");
  writeFileSync(path.join(host, "etc", "joblet", "joblet-config.yml"), "serverKey: -----BEGIN PRIVATE KEY-----\n");
  writeFileSync(path.join(host, "etc", "resolv.conf"), "nameserver 10.0.0.53\n");
  writeFileSync(path.join(host, "etc", "ssl", "certs", "ca-certificates.crt"), "-----BEGIN CERTIFICATE-----\n");
  symlinkSync("/usr/bin/mawk", path.join(host, "etc", "alternatives", "awk"));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

test("the job's /tmp mount point is sticky and world-writable (runc copies its mode onto the tmpfs)", () => {
  const fs = prepareHostFs(state, host);
  assert.equal(statSync(path.join(fs.rootfsDir, "tmp")).mode & 0o7777, 0o1777);
});

test("a /tmp mount point left with mode 0755 by an older daemon is fixed on the next start", () => {
  const old = path.join(state, "rootfs", "tmp");
  mkdirSync(old, { recursive: true });
  chmodSync(old, 0o755);
  prepareHostFs(state, host);
  assert.equal(statSync(old).mode & 0o7777, 0o1777);
});

test("the minimal /etc holds the public files and none of the host's secrets", () => {
  const fs = prepareHostFs(state, host);
  const names = readdirSync(fs.etcDir).sort();
  assert.deepEqual(names, ["alternatives", "group", "hosts", "nsswitch.conf", "passwd", "resolv.conf", "ssl"]);
  assert.equal(existsSync(path.join(fs.etcDir, "shadow")), false);
  assert.equal(readFileSync(path.join(fs.etcDir, "resolv.conf"), "utf8"), "nameserver 10.0.0.53\n");
  assert.equal(readFileSync(path.join(fs.etcDir, "ssl", "certs", "ca-certificates.crt"), "utf8"), "-----BEGIN CERTIFICATE-----\n");
  assert.equal(readlinkSync(path.join(fs.etcDir, "ssl", "cert.pem")), "certs/ca-certificates.crt");
  assert.equal(readlinkSync(path.join(fs.etcDir, "alternatives", "awk")), "/usr/bin/mawk");
});

test("top-level links into /usr are copied as links; real top-level dirs become read-only binds", () => {
  const fs = prepareHostFs(state, host);
  assert.equal(readlinkSync(path.join(fs.rootfsDir, "bin")), "usr/bin");
  assert.deepEqual(fs.extraRoBinds, ["/lib64"]);
  assert.ok(lstatSync(path.join(fs.rootfsDir, "lib64")).isDirectory());
  for (const mountPoint of ["usr", "etc", "work", "tmp", "proc", "dev", "sys"]) {
    assert.ok(statSync(path.join(fs.rootfsDir, mountPoint)).isDirectory(), mountPoint);
  }
});
