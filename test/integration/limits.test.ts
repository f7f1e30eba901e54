// Every resource limit, proved by what the kernel did to a real job: CPU by the cgroup's usage against wall
// time, cores by the job's affinity, memory by an OOM kill the daemon reads from the cgroup, I/O by direct-IO
// throughput, process count by failed forks; plus defaults and the concurrency limit from the config. Each
// limit has a control run without it, so a limit that is silently not applied fails the test.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import { RunJobReq, type Job, type JobletServiceClient } from "../../src/shared/proto/joblet.js";
import { TestDaemon } from "./harness.js";

const MiB = 1024 * 1024;
/** gRPC status codes, numbered as in grpc-js's `status` enum. */
const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;

/** A daemon with its gRPC client. */
interface Node {
  d: TestDaemon;
  client: JobletServiceClient;
}

/** `plain`: the default config (no default limits). `configured`: defaults, pids and concurrency limits from CONFIG. */
let plain: Node;
let configured: Node;
const CONFIG = { defaultMemoryLimit: 64, defaultCpuLimit: 50, maxConcurrentJobs: 2, pidsLimit: 32, stopGracePeriod: "1s" };

before(async () => {
  const [d, c] = await Promise.all([TestDaemon.start(), TestDaemon.start({ joblet: CONFIG })]);
  plain = { d, client: d.client() };
  configured = { d: c, client: c.client() };
});
after(async () => {
  for (const n of [plain, configured]) {
    n?.client.close();
    await n?.d.destroy();
  }
});

function getStatus(n: Node, id: string): Promise<Job> {
  return new Promise((resolve, reject) => n.client.getJobStatus({ id }, (err, res) => (err ? reject(err) : resolve(res as Job))));
}

/** `rnx status ID --json`, parsed: the documented JSON form of a job. */
async function statusJson(n: Node, id: string): Promise<{ status: string; exitCode: number; signal: string; oomKilled: boolean; maxCPU: number; maxMemory: number; maxIOBPS: number; cpuCores: string; reason: string; startTime: string; endTime: string; usage: { cpuTimeNs: number; memoryPeakBytes: number; ioReadBytes: number; ioWriteBytes: number } | null }> {
  const r = await n.d.rnx(["status", id, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function runDetached(n: Node, args: string[]): Promise<string> {
  const r = await n.d.rnx(["run", "--detach", ...args]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f-]{8,}$/);
  return id;
}

async function waitEnded(n: Node, id: string, timeoutMs = 60_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await getStatus(n, id);
    if (job.endTime) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Reads a file of job `id`'s cgroup in v1 hierarchy `controller`. */
function cgroupFile(n: Node, controller: string, id: string, file: string): string {
  return readFileSync(path.join("/sys/fs/cgroup", controller, n.d.cgroupParent, id, file), "utf8").trim();
}

async function stop(n: Node, id: string): Promise<void> {
  const r = await n.d.rnx(["stop", id]);
  assert.equal(r.code, 0, r.stderr);
}

/** Seconds and bytes dd reported ("20971520 bytes (21 MB, 20 MiB) copied, 3.95 s, 5.3 MB/s"), in order. */
function ddReports(stderr: string): { bytes: number; seconds: number }[] {
  return [...stderr.matchAll(/^(\d+) bytes .* copied, ([\d.]+) s,/gm)].map((m) => ({ bytes: Number(m[1]), seconds: Number(m[2]) }));
}

/**
 * The whole disk ("MAJOR:MINOR") holding `dir`, found independently of the daemon: the filesystem's device
 * number from stat, its sysfs entry, and for a partition the disk it is part of.
 */
function diskOf(dir: string): string {
  const res = spawnSync("stat", ["-c", "%Hd:%Ld", dir], { encoding: "utf8" });
  assert.equal(res.status, 0, res.stderr);
  let sys = realpathSync(`/sys/dev/block/${res.stdout.trim()}`);
  if (existsSync(path.join(sys, "partition"))) sys = path.dirname(sys);
  return readFileSync(path.join(sys, "dev"), "utf8").trim();
}

/** CPU time over wall time of a finished job, from its cgroup usage and its start and end times. */
async function cpuRatio(n: Node, id: string): Promise<number> {
  const s = await statusJson(n, id);
  assert.equal(s.status, "COMPLETED", s.reason);
  assert.ok(s.usage, "no usage recorded");
  const wallNs = (Date.parse(s.endTime) - Date.parse(s.startTime)) * 1e6;
  return s.usage.cpuTimeNs / wallNs;
}

/** How many CFS periods job `id` has been throttled in (v1 cpu.stat nr_throttled). */
function cpuThrottled(n: Node, id: string): number {
  const m = /^nr_throttled (\d+)$/m.exec(cgroupFile(n, "cpu", id, "cpu.stat"));
  assert.ok(m, "cpu.stat has no nr_throttled");
  return Number(m[1]);
}

/** A busy loop for `seconds` of wall time. */
const BUSY = (seconds: number) => ["python3", "-c", `import time\nend = time.time() + ${seconds}\nwhile time.time() < end: pass`];

/**
 * cgroup v1 cpu.shares, the CFS weight (default 1024, max 262144). The test raises it for its own daemon's
 * cgroup parent and for the measured job: other work on the host (each task weighing 1024) then cannot take
 * the job's CPU, so the ratio measures the quota, not the contention. The quota is a separate mechanism
 * (cfs_quota_us): a heavier weight does not lift it.
 */
const HEAVY_SHARES = "262144";

function raiseShares(n: Node, id?: string): void {
  writeFileSync(path.join("/sys/fs/cgroup/cpu", n.d.cgroupParent, id ?? "", "cpu.shares"), HEAVY_SHARES);
}

/** CPU time over wall time of a busy loop, with how often the kernel throttled it in its first second. */
async function measureBusy(n: Node, flags: string[]): Promise<{ ratio: number; throttled: number; quotaUs: string }> {
  const id = await runDetached(n, [...flags, ...BUSY(3)]);
  raiseShares(n);
  raiseShares(n, id);
  const quotaUs = cgroupFile(n, "cpu", id, "cpu.cfs_quota_us");
  assert.equal(cgroupFile(n, "cpu", id, "cpu.cfs_period_us"), "100000");
  await sleep(1000);
  const throttled = cpuThrottled(n, id);
  await waitEnded(n, id);
  return { ratio: await cpuRatio(n, id), throttled, quotaUs };
}

/** Attempts at the CPU measurement, should other work still keep the control off a whole CPU. */
const CPU_ATTEMPTS = 3;

test("CPU: --max-cpu 50 holds a busy loop to half a CPU by cgroup usage; without it the loop takes a whole one", async (t) => {
  const seen: string[] = [];
  for (let attempt = 1; attempt <= CPU_ATTEMPTS; attempt++) {
    // The control first: it shows whether the host gives a job a whole CPU right now. If it does not (other
    // load despite the weight), neither ratio means anything, so the pair is measured again.
    const free = await measureBusy(plain, []);
    const limited = await measureBusy(plain, ["--max-cpu", "50"]);
    const load = os.loadavg()[0]!.toFixed(1);
    seen.push(`unlimited ${free.ratio.toFixed(3)}, --max-cpu 50 ${limited.ratio.toFixed(3)} (load ${load})`);
    t.diagnostic(
      `CPU time / wall time: --max-cpu 50 → ${limited.ratio.toFixed(3)} (throttled in ${limited.throttled} periods of 100 ms by its first second), ` +
        `unlimited → ${free.ratio.toFixed(3)}; load average ${load}`,
    );
    assert.equal(limited.quotaUs, "50000");
    assert.equal(free.quotaUs, "-1");
    assert.equal(free.throttled, 0, "the unlimited job was throttled");
    // Other load only ever lowers a job's share: the upper bound holds however busy the host is.
    assert.ok(limited.ratio <= 0.65, `--max-cpu 50 used ${limited.ratio.toFixed(3)} of a CPU`);
    if (free.ratio <= 0.8) continue;
    assert.ok(limited.ratio >= 0.35, `--max-cpu 50 used only ${limited.ratio.toFixed(3)} of a CPU while an unlimited job got ${free.ratio.toFixed(3)}`);
    assert.ok(limited.throttled > 0, "the kernel never throttled the limited job");
    return;
  }
  assert.fail(`the host was too busy to measure: the unlimited control never got more than 0.8 of a CPU in ${CPU_ATTEMPTS} attempts: ${seen.join("; ")}`);
});

test("cores: --cpu-cores pins the job to those CPUs (Cpus_allowed_list inside)", async () => {
  assert.ok(os.cpus().length >= 2, "this test needs at least 2 CPUs");
  for (const [spec, expected] of [
    ["1", "1"],
    ["0-1", "0-1"],
  ] as const) {
    const r = await plain.d.rnx(["run", "--cpu-cores", spec, "grep", "Cpus_allowed_list", "/proc/self/status"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Cpus_allowed_list:\t${expected}\n`, `--cpu-cores ${spec}`);
  }
  // The control: without the flag the job may use every online CPU.
  const all = await plain.d.rnx(["run", "grep", "Cpus_allowed_list", "/proc/self/status"]);
  assert.equal(all.stdout, `Cpus_allowed_list:\t0-${os.cpus().length - 1}\n`);
});

test("cores: an invalid spec is refused (rnx exits 2) with a message naming the field, the spec and the valid range", async () => {
  const online = `0-${os.cpus().length - 1}`;
  for (const spec of ["5", "1-0", "a", "0-7"]) {
    const r = await plain.d.rnx(["run", "--cpu-cores", spec, "true"]);
    assert.equal(r.code, 2, `--cpu-cores ${spec}: ${r.stderr}`);
    assert.match(r.stderr, /cpu-?cores/i, r.stderr);
    assert.ok(r.stderr.includes(`"${spec}"`), `the message does not quote the spec ${spec}: ${r.stderr}`);
  }
  // The daemon validates too (not only the CLI), against the host's online CPUs.
  for (const spec of ["5", "1-0", "a"]) {
    const err = await new Promise<{ code?: number; details?: string }>((resolve) =>
      plain.client.runJob(RunJobReq.fromPartial({ command: "true", cpuCores: spec }), (e, res) => resolve(e ?? { details: `accepted: ${res?.id}` })),
    );
    assert.equal(err.code, INVALID_ARGUMENT, `cpuCores ${spec}: ${err.details}`);
    assert.match(err.details ?? "", /cpuCores/);
    assert.ok(err.details?.includes(`"${spec}"`), err.details);
    if (spec === "5") assert.ok(err.details?.includes(online), `the valid range ${online} is not named: ${err.details}`);
  }
});

test("memory: a job over --max-memory is OOM-killed and reported as such (FAILED, oomKilled, rnx exit 137)", async () => {
  const r = await plain.d.rnx(["run", "--max-memory", "32", "python3", "-c", "b = bytearray(100 << 20)\nprint('survived')"]);
  assert.equal(r.code, 137, r.stderr);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /killed for exceeding its memory limit \(32 MB\)/);
  const id = /job ([0-9a-f-]+) was killed/.exec(r.stderr)?.[1];
  assert.ok(id, r.stderr);
  const s = await statusJson(plain, id);
  assert.equal(s.status, "FAILED");
  assert.equal(s.oomKilled, true);
  assert.equal(s.exitCode, 137);
  assert.equal(s.signal, "SIGKILL");
  assert.equal(s.maxMemory, 32);
  assert.match(s.reason, /memory limit/);
  assert.ok(s.usage && s.usage.memoryPeakBytes <= 32 * MiB, `peak ${s.usage?.memoryPeakBytes} bytes over the 32 MiB limit`);
});

test("memory: a job that merely exits 137 is not reported as OOM-killed", async () => {
  const id = await runDetached(plain, ["sh", "-c", "exit 137"]);
  await waitEnded(plain, id);
  const s = await statusJson(plain, id);
  assert.equal(s.exitCode, 137);
  assert.equal(s.status, "FAILED");
  assert.equal(s.oomKilled, false);
  assert.equal(s.signal, "");
  const r = await plain.d.rnx(["run", "sh", "-c", "exit 137"]);
  assert.equal(r.code, 137);
  assert.doesNotMatch(r.stderr, /memory/);
});

test("memory: no swap beyond the limit (memory+swap limit = memory limit in the job's cgroup)", async () => {
  const id = await runDetached(plain, ["--max-memory", "32", "sh", "-c", "sleep 30 & wait"]);
  try {
    assert.equal(cgroupFile(plain, "memory", id, "memory.limit_in_bytes"), String(32 * MiB));
    assert.equal(cgroupFile(plain, "memory", id, "memory.memsw.limit_in_bytes"), String(32 * MiB));
  } finally {
    await stop(plain, id);
  }
});

test("IO: --max-iobps throttles direct reads and writes on the work dir's disk; without it they are much faster", async (t) => {
  const limitBps = 5 * MiB;
  // 20 MiB written, then read back, bypassing the page cache (v1 blkio does not throttle buffered writeback).
  const script = "dd if=/dev/zero of=/work/f bs=1M count=20 oflag=direct && dd if=/work/f of=/dev/null bs=1M iflag=direct";
  const disk = diskOf(path.join(plain.d.dir, "state", "jobs"));

  const limited = await runDetached(plain, ["--max-iobps", String(limitBps), "sh", "-c", script]);
  assert.equal(cgroupFile(plain, "blkio", limited, "blkio.throttle.write_bps_device"), `${disk} ${limitBps}`);
  assert.equal(cgroupFile(plain, "blkio", limited, "blkio.throttle.read_bps_device"), `${disk} ${limitBps}`);
  await waitEnded(plain, limited);
  const limitedLog = await plain.d.rnx(["log", limited]);
  const [w, rd] = ddReports(limitedLog.stderr);
  assert.ok(w && rd, limitedLog.stderr);
  const s = await statusJson(plain, limited);
  assert.equal(s.status, "COMPLETED", s.reason);
  assert.equal(s.maxIOBPS, limitBps);
  // The daemon's usage counts the same bytes the throttle let through.
  assert.ok(s.usage && s.usage.ioWriteBytes >= 20 * MiB && s.usage.ioReadBytes >= 20 * MiB, `usage ${JSON.stringify(s.usage)}`);

  const free = await runDetached(plain, ["sh", "-c", script]);
  await waitEnded(plain, free);
  const freeLog = await plain.d.rnx(["log", free]);
  const [fw, frd] = ddReports(freeLog.stderr);
  assert.ok(fw && frd, freeLog.stderr);

  const mbps = (x: { bytes: number; seconds: number }) => (x.bytes / x.seconds / 1e6).toFixed(1);
  t.diagnostic(
    `limit ${limitBps / 1e6} MB/s on ${disk}: write ${w.seconds} s (${mbps(w)} MB/s), read ${rd.seconds} s (${mbps(rd)} MB/s); ` +
      `unlimited: write ${fw.seconds} s (${mbps(fw)} MB/s), read ${frd.seconds} s (${mbps(frd)} MB/s)`,
  );
  // 20 MiB at 5 MiB/s is 4 s; allow for the throttle's initial slice.
  assert.ok(w.seconds >= 3, `20 MiB written in ${w.seconds} s under a 5 MiB/s limit`);
  assert.ok(rd.seconds >= 3, `20 MiB read in ${rd.seconds} s under a 5 MiB/s limit`);
  assert.ok(fw.seconds < w.seconds / 2, `unlimited write took ${fw.seconds} s, limited ${w.seconds} s`);
  assert.ok(frd.seconds < rd.seconds / 2, `unlimited read took ${frd.seconds} s, limited ${rd.seconds} s`);
});

/** Forks `count` children that sleep, counting refused forks; then sleeps itself. */
const FORK_LOOP = (count: number) => [
  "python3",
  "-c",
  [
    "import os, time",
    "forked, refused, error = 0, 0, None",
    `for _ in range(${count}):`,
    "    try:",
    "        pid = os.fork()",
    "    except OSError as e:",
    "        refused, error = refused + 1, e",
    "        continue",
    "    if pid == 0:",
    "        time.sleep(60)",
    "        os._exit(0)",
    "    forked += 1",
    "print(f'forked {forked} refused {refused}: {error}', flush=True)",
    "time.sleep(60)",
  ].join("\n"),
];

test("pids: with joblet.pidsLimit 32 a fork loop stops at the limit, the host can still fork, rnx stop cleans up", async () => {
  const n = configured;
  const id = await runDetached(n, FORK_LOOP(100));
  try {
    assert.equal(cgroupFile(n, "pids", id, "pids.max"), "32");
    // The kernel counts the forks it refused for the limit in pids.events ("max N").
    const refused = () => Number(/^max (\d+)$/.exec(cgroupFile(n, "pids", id, "pids.events"))?.[1]);
    const deadline = Date.now() + 15_000;
    while (!(refused() > 0) && Date.now() < deadline) await sleep(50);
    assert.ok(refused() > 0, `no fork refused: ${cgroupFile(n, "pids", id, "pids.events")}`);
    assert.equal(Number(cgroupFile(n, "pids", id, "pids.current")), 32);
    const host = spawnSync("sh", ["-c", "for i in 1 2 3 4 5 6 7 8; do true & done; wait; echo ok"], { encoding: "utf8" });
    assert.equal(host.stdout, "ok\n", "the host cannot fork while the job is at its limit");
    await sleep(300);
    assert.equal(Number(cgroupFile(n, "pids", id, "pids.current")), 32, "the job grew past its pids limit");
  } finally {
    await stop(n, id);
  }
  const s = await statusJson(n, id);
  assert.equal(s.status, "STOPPED");
  // Python itself plus 31 children make 32: the other 69 forks failed with EAGAIN.
  const log = await n.d.rnx(["log", id]);
  assert.equal(log.stdout, "forked 31 refused 69: [Errno 11] Resource temporarily unavailable\n", log.stderr);
  assert.deepEqual(n.d.leftoverCgroups(), []);
  assert.deepEqual(n.d.runtimeContainers(), []);
});

test("defaults from the config: a job without flags gets joblet.defaultMemoryLimit and defaultCpuLimit; flags override them", async () => {
  const n = configured;
  const byDefault = await runDetached(n, ["sleep", "30"]);
  const explicit = await runDetached(n, ["--max-memory", "128", "--max-cpu", "150", "sleep", "30"]);
  try {
    const s = await statusJson(n, byDefault);
    assert.equal(s.maxMemory, 64);
    assert.equal(s.maxCPU, 50);
    assert.equal(cgroupFile(n, "memory", byDefault, "memory.limit_in_bytes"), String(64 * MiB));
    assert.equal(cgroupFile(n, "cpu", byDefault, "cpu.cfs_quota_us"), "50000");
    const e = await statusJson(n, explicit);
    assert.equal(e.maxMemory, 128);
    assert.equal(e.maxCPU, 150);
    assert.equal(cgroupFile(n, "memory", explicit, "memory.limit_in_bytes"), String(128 * MiB));
    assert.equal(cgroupFile(n, "cpu", explicit, "cpu.cfs_quota_us"), "150000");
    // The control: the default config sets no limits.
    const none = await runDetached(plain, ["sh", "-c", "sleep 30 & wait"]);
    try {
      const p = await statusJson(plain, none);
      assert.equal(p.maxMemory, 0);
      assert.equal(p.maxCPU, 0);
      assert.equal(cgroupFile(plain, "cpu", none, "cpu.cfs_quota_us"), "-1");
    } finally {
      await stop(plain, none);
    }
  } finally {
    await Promise.all([stop(n, byDefault), stop(n, explicit)]);
  }
});

test("maxConcurrentJobs: a run beyond joblet.maxConcurrentJobs is refused with RESOURCE_EXHAUSTED; after a stop it works", async () => {
  const n = configured;
  const first = await runDetached(n, ["sleep", "30"]);
  const second = await runDetached(n, ["sleep", "30"]);
  let third: string | undefined;
  try {
    const r = await n.d.rnx(["run", "--detach", "sleep", "30"]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /maxConcurrentJobs = 2/);
    const err = await new Promise<{ code?: number; details?: string }>((resolve) =>
      n.client.runJob(RunJobReq.fromPartial({ command: "sleep", args: ["30"] }), (e, res) => resolve(e ?? { details: `accepted: ${res?.id}` })),
    );
    assert.equal(err.code, RESOURCE_EXHAUSTED, err.details);
    assert.match(err.details ?? "", /maxConcurrentJobs/);

    await stop(n, first);
    third = await runDetached(n, ["sleep", "30"]);
    assert.equal((await getStatus(n, third)).status, "RUNNING");
  } finally {
    const running = [second, ...(third ? [third] : [])];
    if ((await getStatus(n, first)).endTime === "") running.push(first);
    await Promise.all(running.map((id) => stop(n, id)));
  }
});

test("after every job has ended: no cgroup and no container left on either daemon", async () => {
  for (const n of [plain, configured]) {
    const jobs = await new Promise<Job[]>((resolve, reject) => n.client.listJobs({}, (err, res) => (err ? reject(err) : resolve(res!.jobs))));
    assert.ok(jobs.length > 0);
    for (const job of jobs) assert.notEqual(job.endTime, "", `job ${job.id} (${job.command}) is ${job.status}`);
    assert.deepEqual(n.d.leftoverCgroups(), []);
    assert.deepEqual(n.d.runtimeContainers(), []);
  }
});
