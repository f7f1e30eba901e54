import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { isJobletError } from "../../shared/errors.js";
import { detectCgroupMode, findV1Hierarchies } from "./detect.js";

const tmp = mkdtempSync(path.join(tmpdir(), "cgroup-detect-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function tree(files: string[]): string {
  const root = mkdtempSync(path.join(tmp, "root-"));
  for (const f of files) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), "");
  }
  return root;
}

describe("detectCgroupMode", () => {
  it("v2: the root is a cgroup2 mount", () => {
    assert.equal(detectCgroupMode(tree(["cgroup.controllers", "cgroup.procs", "system.slice/cgroup.procs"])), "v2");
  });
  it("hybrid: v1 controller directories and a cgroup2 mount at unified", () => {
    assert.equal(detectCgroupMode(tree(["cpu/cgroup.procs", "memory/cgroup.procs", "unified/cgroup.controllers", "unified/cgroup.procs"])), "hybrid");
  });
  it("v1: controller directories only", () => {
    assert.equal(detectCgroupMode(tree(["cpu,cpuacct/cgroup.procs", "memory/cgroup.procs", "systemd/cgroup.procs"])), "v1");
  });
  it("v1: an empty unified directory (not mounted) does not make it hybrid", () => {
    const root = tree(["memory/cgroup.procs"]);
    mkdirSync(path.join(root, "unified"));
    assert.equal(detectCgroupMode(root), "v1");
  });
  it("fails with FAILED_PRECONDITION when there is no cgroup hierarchy", () => {
    const root = tree(["not-a-cgroup/file"]);
    assert.throws(() => detectCgroupMode(root), (err: unknown) => isJobletError(err, "FAILED_PRECONDITION") && err.message.includes(root));
    assert.throws(() => detectCgroupMode(path.join(tmp, "missing")), (err: unknown) => isJobletError(err, "FAILED_PRECONDITION"));
  });
  it("this machine: the brief's layout, or at least a valid one", () => {
    const mode = detectCgroupMode();
    assert.ok(["v1", "v2", "hybrid"].includes(mode));
    if (existsSync("/sys/fs/cgroup/unified/cgroup.controllers")) assert.equal(mode, "hybrid");
  });
});

describe("findV1Hierarchies", () => {
  it("scans a fake tree, counting a combined hierarchy once despite its symlinks", () => {
    const root = tree(["cpu,cpuacct/cgroup.procs", "memory/cgroup.procs", "unified/cgroup.controllers", "unified/cgroup.procs"]);
    symlinkSync("cpu,cpuacct", path.join(root, "cpu"));
    symlinkSync("cpu,cpuacct", path.join(root, "cpuacct"));
    assert.deepEqual(findV1Hierarchies(root, "/nonexistent"), [
      { dir: path.join(root, "cpu,cpuacct"), controllers: ["cpu", "cpuacct"] },
      { dir: path.join(root, "memory"), controllers: ["memory"] },
    ]);
  });

  it("reads controllers from mountinfo super options, dropping mount options", () => {
    const mountinfo = path.join(tmp, "mountinfo");
    writeFileSync(
      mountinfo,
      [
        "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755",
        "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct",
        "33 30 0:30 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,clone_children",
        "39 30 0:36 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd",
        "40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
        "41 22 0:28 / /mnt/elsewhere rw - cgroup cgroup rw,cpu,cpuacct",
      ].join("\n"),
    );
    assert.deepEqual(findV1Hierarchies("/sys/fs/cgroup", mountinfo), [
      { dir: "/sys/fs/cgroup/cpu,cpuacct", controllers: ["cpu", "cpuacct"] },
      { dir: "/sys/fs/cgroup/cpuset", controllers: ["cpuset"] },
      { dir: "/sys/fs/cgroup/systemd", controllers: ["name=systemd"] },
    ]);
  });

  it("this machine: finds cpu, cpuacct and memory when they are v1", (t) => {
    if (detectCgroupMode() === "v2") return t.skip("this host is cgroup v2");
    const hierarchies = findV1Hierarchies();
    for (const c of ["cpu", "cpuacct", "memory", "pids", "blkio", "cpuset"]) {
      const h = hierarchies.find((x) => x.controllers.includes(c));
      assert.ok(h && existsSync(path.join(h.dir, "cgroup.procs")), `${c} hierarchy in ${JSON.stringify(hierarchies)}`);
    }
  });
});
