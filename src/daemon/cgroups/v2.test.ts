import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { createCgroupManager } from "./factory.js";
import { describeManagerContract, SAMPLE, type FakeTree, type FakeValues } from "./manager.contract.js";
import { parseIoStat, V2CgroupManager } from "./v2.js";

const tmp = mkdtempSync(path.join(tmpdir(), "cgroup-v2-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A fake cgroup2 mount: the root's cgroup.controllers lists what the kernel offers. */
function fakeV2Root(controllers = "cpuset cpu io memory hugetlb pids rdma misc"): string {
  const root = mkdtempSync(path.join(tmp, "root-"));
  writeFileSync(path.join(root, "cgroup.controllers"), `${controllers}\n`);
  writeFileSync(path.join(root, "cgroup.subtree_control"), "");
  return root;
}

function fakeV2Tree(): FakeTree {
  const root = fakeV2Root();
  const manager = createCgroupManager({ root });
  const dirOf = (cgPath: string) => path.join(root, cgPath);
  return {
    manager,
    writeCgroup(cgPath: string, v: FakeValues) {
      const dir = dirOf(cgPath);
      mkdirSync(dir, { recursive: true });
      const usageUsec = v.cpuTimeNs / 1000;
      writeFileSync(path.join(dir, "cpu.stat"), `usage_usec ${usageUsec}\nuser_usec 100\nsystem_usec 23\nnr_periods 0\n`);
      writeFileSync(path.join(dir, "memory.current"), `${v.memoryCurrentBytes}\n`);
      writeFileSync(path.join(dir, "memory.peak"), `${v.memoryPeakBytes}\n`);
      const io = v.io.map((d) => `${d.dev} rbytes=${d.readBytes} wbytes=${d.writeBytes} rios=1 wios=2 dbytes=0 dios=0\n`).join("");
      writeFileSync(path.join(dir, "io.stat"), io);
      // "max" and "oom" come before "oom_kill": the reader must match the whole key.
      writeFileSync(path.join(dir, "memory.events"), `low 0\nhigh 0\nmax 7\noom 5\noom_kill ${v.oomKills}\noom_group_kill 0\n`);
      writeFileSync(path.join(dir, "pids.current"), `${v.pids}\n`);
      writeFileSync(path.join(dir, "cgroup.procs"), v.procs.map((p) => `${p}\n`).join(""));
    },
    mkdirEmpty(cgPath: string) {
      mkdirSync(dirOf(cgPath), { recursive: true });
    },
    dirsOf: (cgPath: string) => [dirOf(cgPath)],
  };
}

describeManagerContract("v2", fakeV2Tree);

describe("V2CgroupManager", () => {
  it("is chosen for a cgroup2 root", () => {
    const m = createCgroupManager({ root: fakeV2Root() });
    assert.ok(m instanceof V2CgroupManager);
    assert.equal(m.mode, "v2");
  });

  it("reports memory.peak as 0 on kernels without it", () => {
    const tree = fakeV2Tree();
    tree.writeCgroup("/joblet/old", SAMPLE);
    rmSync(path.join((tree.manager as V2CgroupManager).root, "joblet/old/memory.peak"));
    assert.equal(tree.manager.stats("/joblet/old")?.memoryPeakBytes, 0);
    assert.equal(tree.manager.stats("/joblet/old")?.memoryCurrentBytes, SAMPLE.memoryCurrentBytes);
  });

  it("enables the job controllers the kernel offers, from the root down to the parent", () => {
    const root = fakeV2Root("cpuset cpu io memory hugetlb pids rdma");
    // The kernel fills a new cgroup's cgroup.controllers from its parent's subtree_control; the fake tree
    // pre-creates it, offering a subset so the intersection is observable.
    mkdirSync(path.join(root, "joblet"));
    writeFileSync(path.join(root, "joblet/cgroup.controllers"), "cpu memory pids\n");
    writeFileSync(path.join(root, "joblet/cgroup.subtree_control"), "pids\n");
    const m = createCgroupManager({ root });
    m.ensureParent("/joblet");
    assert.equal(readFileSync(path.join(root, "cgroup.subtree_control"), "utf8"), "+cpu +cpuset +memory +io +pids");
    assert.equal(readFileSync(path.join(root, "joblet/cgroup.subtree_control"), "utf8"), "+cpu +memory", "pids was already enabled");
  });

  it("creates every level of a nested parent", () => {
    const root = fakeV2Root();
    const m = createCgroupManager({ root });
    m.ensureParent("/a/b/c");
    assert.ok(m.exists("/a/b/c"));
    assert.equal(readFileSync(path.join(root, "cgroup.subtree_control"), "utf8"), "+cpu +cpuset +memory +io +pids");
  });

  it("does not write subtree_control when everything is enabled", () => {
    const root = fakeV2Root("cpu memory");
    writeFileSync(path.join(root, "cgroup.subtree_control"), "cpu memory\n");
    createCgroupManager({ root }).ensureParent("/joblet");
    assert.equal(readFileSync(path.join(root, "cgroup.subtree_control"), "utf8"), "cpu memory\n");
  });

  it("reports swap control from the parent's memory.swap.max", () => {
    const root = fakeV2Root();
    const m = createCgroupManager({ root });
    assert.equal(m.capabilities().memorySwap, false, "unknown before ensureParent");
    m.ensureParent("/joblet");
    assert.equal(m.capabilities().memorySwap, false);
    writeFileSync(path.join(root, "joblet/memory.swap.max"), "max\n");
    assert.equal(m.capabilities().memorySwap, true);
  });
});

describe("parseIoStat", () => {
  it("sums rbytes and wbytes over devices", () => {
    const text = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n253:0 rbytes=10 wbytes=20 rios=1 wios=1\n";
    assert.deepEqual(parseIoStat(text), { readBytes: 1459210, writeBytes: 314773524 });
  });
  it("gives zeros for an empty file", () => assert.deepEqual(parseIoStat(""), { readBytes: 0, writeBytes: 0 }));
});
