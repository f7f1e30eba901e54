// The file of verified daemon certificates: where it lives per platform, what an entry is keyed by, its
// validity, and that a file or directory another user could have written is never believed.
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileVerifiedServers, verifiedServersFile } from "./verified-servers.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory holding nothing yet; the file goes into a subdirectory the store creates. */
function tempFile(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "rnx-verified-"));
  dirs.push(d);
  return path.join(d, "cache", "verified-servers.json");
}

const CA = "-----BEGIN CERTIFICATE-----\nCA one\n-----END CERTIFICATE-----\n";
const CERT = { sha256: "AA:BB", notBefore: 1_000, notAfter: 2_000 };

describe("verifiedServersFile", () => {
  const home = "/home/u";
  test("per platform: XDG cache on Linux, Library/Caches on macOS, LOCALAPPDATA on Windows", () => {
    assert.equal(verifiedServersFile({}, "linux", home), "/home/u/.cache/joblet/verified-servers.json");
    assert.equal(verifiedServersFile({ XDG_CACHE_HOME: "/x" }, "linux", home), "/x/joblet/verified-servers.json");
    assert.equal(verifiedServersFile({}, "darwin", home), "/home/u/Library/Caches/joblet/verified-servers.json");
    assert.equal(verifiedServersFile({ LOCALAPPDATA: "/appdata" }, "win32", home), path.join("/appdata", "joblet", "verified-servers.json"));
    assert.equal(verifiedServersFile({}, "win32", home), undefined);
    assert.equal(verifiedServersFile({}, "linux", undefined), undefined);
  });

  test("RNX_CACHE_DIR moves it; RNX_CACHE_DIR=off keeps nothing", () => {
    assert.equal(verifiedServersFile({ RNX_CACHE_DIR: "/c", XDG_CACHE_HOME: "/x" }, "linux", home), "/c/verified-servers.json");
    assert.equal(verifiedServersFile({ RNX_CACHE_DIR: "off" }, "linux", home), undefined);
  });
});

describe("fileVerifiedServers", () => {
  test("an entry is found again by another process, for the same CA and address only; the file is 0600 in a 0700 dir", () => {
    const file = tempFile();
    fileVerifiedServers(file, () => 1_500).remember(CA, "node1:443", CERT);
    const again = fileVerifiedServers(file, () => 1_500);
    assert.deepEqual(again.lookup(CA, "node1:443"), CERT);
    assert.equal(again.lookup(CA, "node2:443"), undefined);
    assert.equal(again.lookup(CA.replace("one", "two"), "node1:443"), undefined);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
    // The CA is stored as a hash, not as its text.
    assert.doesNotMatch(readFileSync(file, "utf8"), /CA one/);
  });

  test("outside the certificate's validity the entry is not used", () => {
    const file = tempFile();
    fileVerifiedServers(file).remember(CA, "n:1", CERT);
    assert.equal(fileVerifiedServers(file, () => 999).lookup(CA, "n:1"), undefined);
    assert.equal(fileVerifiedServers(file, () => 2_001).lookup(CA, "n:1"), undefined);
    assert.deepEqual(fileVerifiedServers(file, () => 2_000).lookup(CA, "n:1"), CERT);
  });

  test("remember replaces the address's entry; forget removes it; at most 64 entries, the newest kept", () => {
    const file = tempFile();
    const s = fileVerifiedServers(file, () => 1_500);
    s.remember(CA, "n:1", CERT);
    s.remember(CA, "n:1", { ...CERT, sha256: "CC:DD" });
    assert.equal(fileVerifiedServers(file, () => 1_500).lookup(CA, "n:1")?.sha256, "CC:DD");
    s.forget(CA, "n:1");
    assert.equal(fileVerifiedServers(file, () => 1_500).lookup(CA, "n:1"), undefined);
    for (let i = 0; i < 70; i++) s.remember(CA, `n:${i}`, CERT);
    const later = fileVerifiedServers(file, () => 1_500);
    assert.equal(later.lookup(CA, "n:5"), undefined);
    assert.deepEqual(later.lookup(CA, "n:6"), CERT);
    assert.deepEqual(later.lookup(CA, "n:69"), CERT);
    assert.equal((JSON.parse(readFileSync(file, "utf8")) as { servers: unknown[] }).servers.length, 64);
  });

  test("a file that is not JSON, or holds no list, is ignored and replaced by the next entry", () => {
    const file = tempFile();
    mkdirSync(path.dirname(file), { mode: 0o700 });
    for (const text of ["{not json", '{"servers": 3}', '{"servers": [{"key": 1}]}']) {
      writeFileSync(file, text, { mode: 0o600 });
      const s = fileVerifiedServers(file, () => 1_500);
      assert.equal(s.lookup(CA, "n:1"), undefined, text);
      s.remember(CA, "n:1", CERT);
      assert.deepEqual(fileVerifiedServers(file, () => 1_500).lookup(CA, "n:1"), CERT, text);
    }
  });

  test("a file or directory others can write is not believed, and nothing is written into such a directory", () => {
    const file = tempFile();
    fileVerifiedServers(file).remember(CA, "n:1", CERT);
    chmodSync(file, 0o620);
    assert.equal(fileVerifiedServers(file, () => 1_500).lookup(CA, "n:1"), undefined);
    chmodSync(file, 0o600);
    chmodSync(path.dirname(file), 0o777);
    assert.equal(fileVerifiedServers(file, () => 1_500).lookup(CA, "n:1"), undefined);
    fileVerifiedServers(file).remember(CA, "n:2", CERT);
    chmodSync(path.dirname(file), 0o700);
    assert.equal(fileVerifiedServers(file, () => 1_500).lookup(CA, "n:2"), undefined);
    assert.deepEqual(fileVerifiedServers(file, () => 1_500).lookup(CA, "n:1"), CERT);
  });

  test("a file owned by another user is not believed", { skip: process.getuid?.() !== 0 && "needs root to give the file to another user" }, () => {
    const file = tempFile();
    fileVerifiedServers(file).remember(CA, "n:1", CERT);
    chownSync(file, 65534, 65534);
    assert.equal(fileVerifiedServers(file, () => 1_500).lookup(CA, "n:1"), undefined);
  });
});
