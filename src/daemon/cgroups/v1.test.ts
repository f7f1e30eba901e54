import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { createCgroupManager } from "./factory.js";
import { describeManagerContract, SAMPLE, type FakeTree, type FakeValues } from "./manager.contract.js";
import { parseBlkioServiceBytes, V1CgroupManager } from "./v1.js";

const tmp = mkdtempSync(path.join(tmpdir(), "cgroup-v1-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Layout = "separate" | "combined";

/** Hierarchy directory names per layout; "combined" is the usual systemd host with symlinks. */
const HIERARCHIES: Record<Layout, string[]> = {
  separate: ["blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd"],
  combined: ["blkio", "cpu,cpuacct", "cpuset", "devices", "memory", "net_cls,net_prio", "pids", "systemd"],
};

interface FakeV1 {
  root: string;
  /** Hierarchy directory per controller name. */
  ctrl: (controller: string) => string;
  hierarchyDirs: string[];
  unifiedDir: string | undefined;
}

function fakeV1Root(layout: Layout, opts: { hybrid?: boolean; memsw?: boolean } = {}): FakeV1 {
  const root = mkdtempSync(path.join(tmp, `${layout}-`));
  const hierarchyDirs = HIERARCHIES[layout].map((name) => path.join(root, name));
  for (const dir of hierarchyDirs) {
    mkdirSync(dir);
    writeFileSync(path.join(dir, "cgroup.procs"), "1\n");
  }
  if (layout === "combined") {
    symlinkSync("cpu,cpuacct", path.join(root, "cpu"));
    symlinkSync("cpu,cpuacct", path.join(root, "cpuacct"));
  }
  const ctrl = (controller: string) => hierarchyDirs.find((d) => path.basename(d).split(",").includes(controller))!;
  writeFileSync(path.join(ctrl("cpuset"), "cpuset.cpus"), "0-1\n");
  writeFileSync(path.join(ctrl("cpuset"), "cpuset.mems"), "0\n");
  if (opts.memsw) writeFileSync(path.join(ctrl("memory"), "memory.memsw.limit_in_bytes"), "9223372036854771712\n");
  let unifiedDir: string | undefined;
  if (opts.hybrid) {
    unifiedDir = path.join(root, "unified");
    mkdirSync(unifiedDir);
    writeFileSync(path.join(unifiedDir, "cgroup.controllers"), "hugetlb\n");
  }
  return { root, ctrl, hierarchyDirs, unifiedDir };
}

function blkioText(v: FakeValues): string {
  const lines = v.io.flatMap((d) => [
    `${d.dev} Read ${d.readBytes}`,
    `${d.dev} Write ${d.writeBytes}`,
    `${d.dev} Sync 0`,
    `${d.dev} Async ${d.readBytes + d.writeBytes}`,
    `${d.dev} Discard 0`,
    `${d.dev} Total ${d.readBytes + d.writeBytes}`,
  ]);
  const total = v.io.reduce((s, d) => s + d.readBytes + d.writeBytes, 0);
  return `${lines.join("\n")}\nTotal ${total}\n`;
}

function fakeV1Tree(layout: Layout, opts: { hybrid?: boolean } = {}): () => FakeTree {
  return () => {
    const fake = fakeV1Root(layout, opts);
    const manager = createCgroupManager({ root: fake.root, mountinfoPath: "/nonexistent/mountinfo" });
    const allRoots = [...fake.hierarchyDirs, ...(fake.unifiedDir ? [fake.unifiedDir] : [])];
    const dirsOf = (cgPath: string) => allRoots.map((r) => path.join(r, cgPath));
    return {
      manager,
      writeCgroup(cgPath: string, v: FakeValues) {
        for (const d of dirsOf(cgPath)) mkdirSync(d, { recursive: true });
        const at = (controller: string, file: string, text: string) => writeFileSync(path.join(fake.ctrl(controller), cgPath, file), text);
        at("cpuacct", "cpuacct.usage", `${v.cpuTimeNs}\n`);
        at("cpu", "cpu.shares", "1024\n");
        at("memory", "memory.usage_in_bytes", `${v.memoryCurrentBytes}\n`);
        at("memory", "memory.max_usage_in_bytes", `${v.memoryPeakBytes}\n`);
        at("memory", "memory.oom_control", `oom_kill_disable 0\nunder_oom 0\noom_kill ${v.oomKills}\n`);
        at("blkio", "blkio.throttle.io_service_bytes", blkioText(v));
        at("pids", "pids.current", `${v.pids}\n`);
        at("pids", "cgroup.procs", v.procs.map((p) => `${p}\n`).join(""));
      },
      mkdirEmpty(cgPath: string) {
        for (const d of dirsOf(cgPath)) mkdirSync(d, { recursive: true });
      },
      dirsOf,
    };
  };
}

describeManagerContract("v1, cpu and cpuacct separate", fakeV1Tree("separate"));
describeManagerContract("v1, cpu,cpuacct combined", fakeV1Tree("combined"));
describeManagerContract("hybrid", fakeV1Tree("separate", { hybrid: true }));

describe("V1CgroupManager", () => {
  it("is chosen for v1 and hybrid roots", () => {
    const v1 = createCgroupManager({ root: fakeV1Root("combined").root, mountinfoPath: "/nonexistent" });
    assert.ok(v1 instanceof V1CgroupManager);
    assert.equal(v1.mode, "v1");
    const hybrid = createCgroupManager({ root: fakeV1Root("separate", { hybrid: true }).root, mountinfoPath: "/nonexistent" });
    assert.ok(hybrid instanceof V1CgroupManager);
    assert.equal(hybrid.mode, "hybrid");
  });

  it("finds hierarchies through mountinfo whatever their directory names", () => {
    // Directories named so that scanning would get the controllers wrong; mountinfo has the truth.
    const root = mkdtempSync(path.join(tmp, "mountinfo-"));
    for (const d of ["a", "b"]) {
      mkdirSync(path.join(root, d, "joblet/x"), { recursive: true });
      writeFileSync(path.join(root, d, "cgroup.procs"), "");
    }
    writeFileSync(path.join(root, "a/joblet/x/cpuacct.usage"), "777\n");
    writeFileSync(path.join(root, "b/joblet/x/memory.usage_in_bytes"), "4096\n");
    const mountinfo = path.join(tmp, "mountinfo-fake");
    writeFileSync(
      mountinfo,
      [
        `22 1 254:0 / / rw - ext4 /dev/vda rw`,
        `31 30 0:28 / ${root}/a rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct`,
        `34 30 0:31 / ${root}/b rw,nosuid - cgroup cgroup rw,memory`,
        `35 30 0:31 / ${root}/b-again rw,nosuid - cgroup cgroup rw,memory`,
        "",
      ].join("\n"),
    );
    const m = createCgroupManager({ root, mountinfoPath: mountinfo });
    const stats = m.stats("/joblet/x");
    assert.equal(stats?.cpuTimeNs, 777);
    assert.equal(stats?.memoryCurrentBytes, 4096);
  });

  it("falls back to blkio.io_service_bytes without blk-throttle files", () => {
    const fake = fakeV1Root("separate");
    const m = createCgroupManager({ root: fake.root, mountinfoPath: "/nonexistent" });
    for (const d of fake.hierarchyDirs) mkdirSync(path.join(d, "joblet/io"), { recursive: true });
    writeFileSync(path.join(fake.ctrl("blkio"), "joblet/io/blkio.io_service_bytes"), blkioText(SAMPLE));
    assert.equal(m.stats("/joblet/io")?.ioReadBytes, 5096);
    assert.equal(m.stats("/joblet/io")?.ioWriteBytes, 8195);
  });

  it("creates the parent in every hierarchy and fills empty cpuset.cpus/mems from the level above", () => {
    const fake = fakeV1Root("combined");
    const m = createCgroupManager({ root: fake.root, mountinfoPath: "/nonexistent" });
    // A pre-existing, narrower setting is the admin's choice and is kept.
    mkdirSync(path.join(fake.ctrl("cpuset"), "joblet"));
    writeFileSync(path.join(fake.ctrl("cpuset"), "joblet/cpuset.cpus"), "1\n");
    m.ensureParent("/joblet/sub");
    for (const d of fake.hierarchyDirs) assert.ok(existsSync(path.join(d, "joblet/sub")), d);
    const cpuset = (rel: string) => readFileSync(path.join(fake.ctrl("cpuset"), rel), "utf8").trim();
    assert.equal(cpuset("joblet/cpuset.cpus"), "1");
    assert.equal(cpuset("joblet/cpuset.mems"), "0");
    assert.equal(cpuset("joblet/sub/cpuset.cpus"), "1");
    assert.equal(cpuset("joblet/sub/cpuset.mems"), "0");
    assert.ok(!existsSync(path.join(fake.ctrl("memory"), "joblet/cpuset.cpus")), "only the cpuset hierarchy gets cpuset files");
  });

  it("reports swap control only with memory.memsw files", () => {
    const without = createCgroupManager({ root: fakeV1Root("separate").root, mountinfoPath: "/nonexistent" });
    assert.equal(without.capabilities().memorySwap, false);
    const withSwap = createCgroupManager({ root: fakeV1Root("separate", { memsw: true }).root, mountinfoPath: "/nonexistent" });
    assert.equal(withSwap.capabilities().memorySwap, true);
  });

  it("covers the unified mount of a hybrid host in exists() and remove()", async () => {
    const fake = fakeV1Root("separate", { hybrid: true });
    const m = createCgroupManager({ root: fake.root, mountinfoPath: "/nonexistent" });
    mkdirSync(path.join(fake.unifiedDir!, "joblet/left"), { recursive: true });
    assert.equal(m.exists("/joblet/left"), true);
    await m.remove("/joblet/left");
    assert.equal(existsSync(path.join(fake.unifiedDir!, "joblet/left")), false);
  });
});

describe("parseBlkioServiceBytes", () => {
  it("sums Read and Write over devices and skips the Total line", () => {
    const text = "254:0 Read 10\n254:0 Write 20\n254:0 Sync 30\n254:0 Total 30\n8:0 Read 1\n8:0 Write 2\nTotal 33\n";
    assert.deepEqual(parseBlkioServiceBytes(text), { readBytes: 11, writeBytes: 22 });
  });
  it("gives zeros for an idle cgroup", () => assert.deepEqual(parseBlkioServiceBytes("Total 0\n"), { readBytes: 0, writeBytes: 0 }));
});
