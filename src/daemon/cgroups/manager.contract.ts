// One contract suite run by every CgroupManager implementation against a fake cgroup tree (v1 separate,
// v1 combined, hybrid, v2). Each test file supplies a FakeTree that writes its version's control files; the
// assertions are the same for all, which is what "callers never branch on the version" requires.
import assert from "node:assert/strict";
import { rmdirSync } from "node:fs";
import { describe, it } from "node:test";
import { isJobletError } from "../../shared/errors.js";
import { isDir } from "./files.js";
import type { CgroupManager } from "./manager.js";

/** Values a fake cgroup's control files hold. */
export interface FakeValues {
  cpuTimeNs: number;
  memoryCurrentBytes: number;
  memoryPeakBytes: number;
  /** Per-device counters; the manager must sum them. */
  io: { dev: string; readBytes: number; writeBytes: number }[];
  oomKills: number;
  pids: number;
  procs: number[];
}

/** A fake cgroup tree of one layout, and the manager under test pointed at it. */
export interface FakeTree {
  manager: CgroupManager;
  /** Creates `cgPath` in every hierarchy with control files holding `values`. */
  writeCgroup(cgPath: string, values: FakeValues): void;
  /** Creates `cgPath` in every hierarchy as empty directories (which rmdir can remove, as on cgroupfs). */
  mkdirEmpty(cgPath: string): void;
  /** Every directory where `cgPath` lives (one per hierarchy). */
  dirsOf(cgPath: string): string[];
}

/** Sample values with two devices, so summing is observable. */
export const SAMPLE: FakeValues = {
  cpuTimeNs: 123_456_000,
  memoryCurrentBytes: 10 * 1024 * 1024,
  memoryPeakBytes: 20 * 1024 * 1024,
  io: [
    { dev: "254:0", readBytes: 4096, writeBytes: 8192 },
    { dev: "8:0", readBytes: 1000, writeBytes: 3 },
  ],
  oomKills: 2,
  pids: 3,
  procs: [101, 202],
};

/** Registers the contract tests for one layout; `make` builds a fresh fake tree per test. */
export function describeManagerContract(name: string, make: () => FakeTree): void {
  describe(`CgroupManager contract: ${name}`, () => {
    it("reports a missing cgroup as absent, not as an error", () => {
      const { manager } = make();
      assert.equal(manager.exists("/joblet/none"), false);
      assert.equal(manager.stats("/joblet/none"), undefined);
      assert.equal(manager.oomKills("/joblet/none"), 0);
      assert.deepEqual(manager.pids("/joblet/none"), []);
    });

    it("reads usage counters, summing I/O over devices", () => {
      const tree = make();
      tree.writeCgroup("/joblet/a", SAMPLE);
      assert.equal(tree.manager.exists("/joblet/a"), true);
      assert.deepEqual(tree.manager.stats("/joblet/a"), {
        cpuTimeNs: 123_456_000,
        memoryCurrentBytes: 10 * 1024 * 1024,
        memoryPeakBytes: 20 * 1024 * 1024,
        ioReadBytes: 5096,
        ioWriteBytes: 8195,
        oomKills: 2,
        pids: 3,
      });
      assert.equal(tree.manager.oomKills("/joblet/a"), 2);
      assert.deepEqual(tree.manager.pids("/joblet/a"), [101, 202]);
    });

    it("counts missing control files as 0", () => {
      const tree = make();
      tree.mkdirEmpty("/joblet/bare");
      assert.deepEqual(tree.manager.stats("/joblet/bare"), {
        cpuTimeNs: 0,
        memoryCurrentBytes: 0,
        memoryPeakBytes: 0,
        ioReadBytes: 0,
        ioWriteBytes: 0,
        oomKills: 0,
        pids: 0,
      });
      assert.deepEqual(tree.manager.pids("/joblet/bare"), []);
    });

    it("removes a cgroup and its children from every hierarchy, and tolerates an absent one", async () => {
      const tree = make();
      tree.mkdirEmpty("/joblet/b/child/grandchild");
      tree.mkdirEmpty("/joblet/keep");
      const dirs = tree.dirsOf("/joblet/b");
      assert.ok(dirs.length >= 1 && dirs.every(isDir));
      await tree.manager.remove("/joblet/b");
      assert.deepEqual(dirs.filter(isDir), []);
      assert.equal(tree.manager.exists("/joblet/b"), false);
      assert.equal(tree.manager.exists("/joblet/keep"), true, "a sibling stays");
      await tree.manager.remove("/joblet/b");
      await tree.manager.remove("/never/existed");
    });

    it("removes leftovers that exist in only some hierarchies", async () => {
      const tree = make();
      tree.mkdirEmpty("/joblet/c");
      const dirs = tree.dirsOf("/joblet/c");
      // Keep only the last hierarchy's copy, as a crash between runc's rmdirs would.
      for (const d of dirs.slice(0, -1)) rmdirSync(d);
      assert.equal(tree.manager.exists("/joblet/c"), true);
      await tree.manager.remove("/joblet/c");
      assert.equal(tree.manager.exists("/joblet/c"), false);
    });

    it("refuses paths that are not below the root", async () => {
      const { manager } = make();
      for (const bad of ["", "/", "joblet/a", "/joblet/../etc", "/joblet//a", "/joblet/./a", "/joblet/a/"]) {
        const isBad = (err: unknown) => isJobletError(err, "INVALID_ARGUMENT") && err.message.startsWith("cgroupPath:");
        assert.throws(() => manager.stats(bad), isBad, bad);
        assert.throws(() => manager.exists(bad), isBad, bad);
        assert.throws(() => manager.pids(bad), isBad, bad);
        assert.throws(() => manager.ensureParent(bad), isBad, bad);
        await assert.rejects(manager.remove(bad), isBad, bad);
      }
    });

    it("creates the parent idempotently", () => {
      const tree = make();
      tree.manager.ensureParent("/joblet");
      tree.manager.ensureParent("/joblet");
      assert.equal(tree.manager.exists("/joblet"), true);
      assert.equal(typeof tree.manager.capabilities().memorySwap, "boolean");
    });
  });
}
