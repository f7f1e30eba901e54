// Runs the manager against this machine's real cgroupfs (needs root). Each test creates a uniquely named
// parent "/joblet-cgtest-<random>" and removes it, leaving nothing behind.
//
// The test process is moved into every hierarchy except memory: the test runner's own memory cgroup belongs
// to whatever started it, and moving a process out of it would escape that limit. Memory readings are
// therefore only checked to be numbers here; the fake-tree tests check their parsing.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isJobletError } from "../../shared/errors.js";
import { blockDeviceFor } from "./blockdev.js";
import { detectCgroupMode, findV1Hierarchies } from "./detect.js";
import { createCgroupManager } from "./factory.js";
import type { CgroupManager, CgroupStats } from "./manager.js";

const ROOT = "/sys/fs/cgroup";
const children: ChildProcess[] = [];
const scratch = mkdtempSync("/var/tmp/cgroup-host-test-");

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
});

function uniqueParent(): string {
  return `/joblet-cgtest-${randomBytes(4).toString("hex")}`;
}

/** A shell that waits for a line on stdin, writes 1 MiB with O_DIRECT, then sleeps until killed. */
function startWorker(file: string): ChildProcess {
  const child = spawn("sh", ["-c", `read go; dd if=/dev/zero of=${file} bs=64k count=16 oflag=direct 2>/dev/null; exec sleep 30`], {
    stdio: ["pipe", "ignore", "inherit"],
  });
  children.push(child);
  return child;
}

/** Every directory named `cgPath` under any mount below `root`: what must be gone after remove(). */
function leftovers(root: string, cgPath: string): string[] {
  const roots = detectCgroupMode(root) === "v2" ? [root] : [...findV1Hierarchies(root).map((h) => h.dir), path.join(root, "unified")];
  return roots.map((r) => path.join(r, cgPath)).filter((d) => existsSync(d));
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function assertNumbers(stats: CgroupStats | undefined): CgroupStats {
  assert.ok(stats, "stats of an existing cgroup");
  for (const [k, v] of Object.entries(stats)) assert.ok(Number.isFinite(v) && v >= 0, `${k} = ${v}`);
  return stats;
}

/** Moves a worker into `job`, lets it do its I/O, then checks busy removal and final removal. */
async function exerciseBusyCgroup(
  manager: CgroupManager,
  root: string,
  parent: string,
  procsFiles: string[],
  opts: { countsPids: boolean },
): Promise<CgroupStats> {
  const job = `${parent}/job`;
  const worker = startWorker(path.join(scratch, `io-${path.basename(parent)}`));
  const pid = worker.pid!;
  for (const f of procsFiles) writeFileSync(f, `${pid}\n`);
  worker.stdin!.end("go\n");
  await waitFor("the worker to be listed", () => manager.pids(job).includes(pid));
  await waitFor("dd to finish", () => {
    const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    return comm === "sleep";
  });
  const stats = assertNumbers(manager.stats(job));
  if (opts.countsPids) assert.ok(stats.pids >= 1, `pids.current ${stats.pids}`);

  await assert.rejects(manager.remove(job), (err: unknown) => {
    assert.ok(isJobletError(err, "FAILED_PRECONDITION"), String(err));
    assert.ok(err.message.includes(String(pid)), err.message);
    assert.ok(err.message.includes(job), err.message);
    return true;
  });
  assert.equal(manager.exists(job), true, "a busy cgroup stays");
  // The parent cannot go while its child is busy; the error names the child's processes.
  await assert.rejects(manager.remove(parent), (err: unknown) => isJobletError(err, "FAILED_PRECONDITION") && err.message.includes(String(pid)));

  worker.kill("SIGKILL");
  await once(worker, "exit");
  await manager.remove(parent);
  assert.equal(manager.exists(job), false);
  assert.equal(manager.exists(parent), false);
  assert.deepEqual(leftovers(root, parent), []);
  return stats;
}

describe("CgroupManager on this machine's /sys/fs/cgroup", () => {
  const manager = createCgroupManager();

  it("detects the same mode as detectCgroupMode", () => assert.equal(manager.mode, detectCgroupMode(ROOT)));

  it("prepares a parent, reads a job's usage, refuses to remove it while busy, then removes everything", async () => {
    const parent = uniqueParent();
    const job = `${parent}/job`;
    try {
      manager.ensureParent(parent);
      // runc creates the job's cgroup; ensureParent on the job path does the same mkdirs.
      manager.ensureParent(job);
      assert.equal(manager.exists(job), true);
      assertNumbers(manager.stats(job));
      assert.deepEqual(manager.pids(job), []);
      assert.equal(manager.oomKills(job), 0);

      let procsFiles: string[];
      if (manager.mode === "v2") {
        procsFiles = [path.join(ROOT, job, "cgroup.procs")];
      } else {
        const hierarchies = findV1Hierarchies(ROOT);
        const cpuset = hierarchies.find((h) => h.controllers.includes("cpuset"));
        if (cpuset) {
          for (const p of [parent, job]) {
            assert.notEqual(readFileSync(path.join(cpuset.dir, p, "cpuset.cpus"), "utf8").trim(), "", `cpuset.cpus of ${p}`);
            assert.notEqual(readFileSync(path.join(cpuset.dir, p, "cpuset.mems"), "utf8").trim(), "", `cpuset.mems of ${p}`);
          }
        }
        procsFiles = hierarchies.filter((h) => !h.controllers.includes("memory")).map((h) => path.join(h.dir, job, "cgroup.procs"));
        // Recent kernels only account blkio.throttle bytes on a disk once some throttle rule has been set on
        // it since boot (see v1.ts), so give the job a limit far above the disk's speed, as --max-iobps would.
        const blkio = hierarchies.find((h) => h.controllers.includes("blkio"));
        if (blkio) {
          const disk = blockDeviceFor(scratch);
          writeFileSync(path.join(blkio.dir, job, "blkio.throttle.write_bps_device"), `${disk.major}:${disk.minor} ${2 ** 40}\n`);
        }
      }
      const stats = await exerciseBusyCgroup(manager, ROOT, parent, procsFiles, { countsPids: true });
      assert.ok(stats.cpuTimeNs > 0, `cpuTimeNs ${stats.cpuTimeNs}`);
      assert.ok(stats.ioWriteBytes >= 1024 * 1024, `ioWriteBytes ${stats.ioWriteBytes} after a 1 MiB O_DIRECT write`);
    } finally {
      await manager.remove(parent).catch(() => undefined);
    }
    assert.deepEqual(leftovers(ROOT, parent), []);
  });

  it("reports swap control as the kernel offers it", async () => {
    const parent = uniqueParent();
    try {
      manager.ensureParent(parent);
      const expected =
        manager.mode === "v2"
          ? existsSync(path.join(ROOT, parent, "memory.swap.max"))
          : existsSync(path.join(findV1Hierarchies(ROOT).find((h) => h.controllers.includes("memory"))!.dir, "memory.memsw.limit_in_bytes"));
      assert.equal(manager.capabilities().memorySwap, expected);
    } finally {
      await manager.remove(parent);
    }
  });
});

describe("V2 manager on the real cgroup2 mount of a hybrid host", () => {
  const unified = path.join(ROOT, "unified");
  const hybrid = existsSync(path.join(unified, "cgroup.controllers"));

  it("creates, lists, refuses busy removal and removes on real cgroup2", { skip: hybrid ? false : "no cgroup2 mount at /sys/fs/cgroup/unified" }, async () => {
    const manager = createCgroupManager({ root: unified });
    assert.equal(manager.mode, "v2");
    const parent = uniqueParent();
    const job = `${parent}/job`;
    try {
      manager.ensureParent(job);
      assert.equal(manager.exists(job), true);
      // The unified mount of a hybrid host has no pids controller: pids.current is absent and reads 0.
      await exerciseBusyCgroup(manager, unified, parent, [path.join(unified, job, "cgroup.procs")], { countsPids: false });
    } finally {
      await manager.remove(parent).catch(() => undefined);
    }
    assert.equal(existsSync(path.join(unified, parent)), false);
  });
});
