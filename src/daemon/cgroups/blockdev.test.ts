import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { isJobletError } from "../../shared/errors.js";
import { blockDeviceFor, decodeDev, resolveBlockDevice } from "./blockdev.js";

/** glibc's makedev, the inverse of decodeDev. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

describe("decodeDev", () => {
  const cases: [number, number][] = [
    [8, 0],
    [8, 17],
    [254, 0],
    [259, 1],
    [0, 27],
    [4095, 255],
    [4096 + 5, 300_000],
    [0xfffff, 0xfffff],
  ];
  for (const [major, minor] of cases) {
    it(`round-trips ${major}:${minor}`, () => assert.deepEqual(decodeDev(makedev(major, minor)), { major, minor }));
  }
  it("decodes the classic 16-bit encoding", () => assert.deepEqual(decodeDev(0x0811n), { major: 8, minor: 17 }));
});

describe("resolveBlockDevice on a fake /sys", () => {
  const sys = mkdtempSync(path.join(tmpdir(), "blockdev-test-"));
  after(() => rmSync(sys, { recursive: true, force: true }));

  /** Creates a device directory with a `dev` file and its /sys/dev/block link. */
  function device(rel: string, dev: string, opts: { partition?: boolean; slaves?: string[] } = {}): string {
    const dir = path.join(sys, "devices", rel);
    mkdirSync(path.join(dir, "slaves"), { recursive: true });
    writeFileSync(path.join(dir, "dev"), `${dev}\n`);
    if (opts.partition) writeFileSync(path.join(dir, "partition"), "1\n");
    for (const s of opts.slaves ?? []) symlinkSync(path.join(sys, "devices", s), path.join(dir, "slaves", path.basename(s)));
    mkdirSync(path.join(sys, "dev/block"), { recursive: true });
    symlinkSync(dir, path.join(sys, "dev/block", dev));
    return dir;
  }

  device("pci0/block/sda", "8:0");
  device("pci0/block/sda/sda1", "8:1", { partition: true });
  device("pci0/block/sda/sda2", "8:2", { partition: true });
  device("pci1/block/nvme0n1", "259:0");
  device("pci1/block/nvme0n1/nvme0n1p3", "259:3", { partition: true });
  device("virtual/block/dm-0", "253:0", { slaves: ["pci0/block/sda/sda2"] });
  device("virtual/block/dm-1", "253:1", { slaves: ["virtual/block/dm-0"] });
  device("virtual/block/dm-2", "253:2", { slaves: ["pci0/block/sda/sda1", "pci1/block/nvme0n1/nvme0n1p3"] });
  device("virtual/block/vdb", "254:16");

  it("resolves a partition to its disk", () => {
    assert.deepEqual(resolveBlockDevice(8, 1, sys), { major: 8, minor: 0, name: "sda" });
    assert.deepEqual(resolveBlockDevice(259, 3, sys), { major: 259, minor: 0, name: "nvme0n1" });
  });
  it("keeps a plain disk", () => assert.deepEqual(resolveBlockDevice(254, 16, sys), { major: 254, minor: 16, name: "vdb" }));
  it("follows a dm device with one slave down to the disk", () => {
    assert.deepEqual(resolveBlockDevice(253, 0, sys), { major: 8, minor: 0, name: "sda" });
    assert.deepEqual(resolveBlockDevice(253, 1, sys), { major: 8, minor: 0, name: "sda" });
  });
  it("keeps a dm device with several slaves", () => assert.deepEqual(resolveBlockDevice(253, 2, sys), { major: 253, minor: 2, name: "dm-2" }));
  it("fails with FAILED_PRECONDITION for an unknown number", () => {
    assert.throws(() => resolveBlockDevice(8, 99, sys), (err: unknown) => isJobletError(err, "FAILED_PRECONDITION") && /8:99/.test(err.message));
  });
});

describe("blockDeviceFor on this machine", () => {
  for (const dir of ["/var/lib", "/tmp", process.cwd()]) {
    it(`finds a whole disk for ${dir}`, () => {
      const dev = blockDeviceFor(dir);
      assert.ok(dev.major > 0, `major of ${dir}: ${dev.major}`);
      const sysDir = path.join("/sys/dev/block", `${dev.major}:${dev.minor}`);
      assert.ok(existsSync(sysDir), `${sysDir} exists`);
      assert.ok(!existsSync(path.join(sysDir, "partition")), `${dev.name} is a whole disk`);
      assert.ok(existsSync(path.join("/sys/block", dev.name)), `/sys/block/${dev.name} exists`);
    });
  }

  it("rejects tmpfs, naming the directory and the filesystem", () => {
    const dir = mkdtempSync("/dev/shm/blockdev-test-");
    try {
      assert.throws(
        () => blockDeviceFor(dir),
        (err: unknown) => {
          assert.ok(isJobletError(err, "FAILED_PRECONDITION"));
          assert.ok(err.message.includes(dir), err.message);
          assert.match(err.message, /tmpfs/);
          assert.match(err.hint ?? "", /--max-iobps/);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("rejects proc", () => assert.throws(() => blockDeviceFor("/proc"), (err: unknown) => isJobletError(err, "FAILED_PRECONDITION") && / proc /.test(err.message)));
});
