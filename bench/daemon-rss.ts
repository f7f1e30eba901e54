// Daemon memory: VmRSS of the joblet process idle and with 100 running `sleep 30` jobs, and the memory each
// running job costs outside itself: the sum of VmRSS of every conmon (one per job) divided by the job count.
// Processes are found in /proc by their command line naming this daemon's temp dir.
// The daemon runs with the Node flags of bin/joblet's `#!` line, as systemd and a shell start it (the test
// harness runs `node bin/joblet`, which ignores that line); JOBLET_DAEMON_NODE_ARGS set by the caller wins.
// Idle is read twice: 2 s after start, and after BENCH_IDLE_S more seconds (V8's memory reducer releases
// start-up garbage 20-40 s into idleness). RSS is split into anonymous memory (V8 heap, malloc) and file pages
// (mostly the node binary's code and data, shared and reclaimable).
// Run as root: node --import tsx bench/daemon-rss.ts   (BENCH_JOBS=N, BENCH_IDLE_S=S, default 60)
import { readFileSync, readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Jobs, RunJobRes } from "../src/shared/proto/joblet.js";
import { ROOT, TestDaemon, unary } from "../test/integration/harness.js";
import { hostLine, row, shebangNodeFlags } from "./lib.js";

const JOBS = Number(process.env.BENCH_JOBS ?? 100);
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 60);
const MIB = 1024 * 1024;

/** A process: pid, comm, command line (NULs as spaces). */
interface Proc {
  pid: number;
  comm: string;
  cmdline: string;
}

/** Every process whose command line contains `needle`. */
function procsMentioning(needle: string): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ");
      if (!cmdline.includes(needle)) continue;
      out.push({ pid: Number(name), comm: readFileSync(`/proc/${name}/comm`, "utf8").trim(), cmdline });
    } catch {
      // The process ended while being read.
    }
  }
  return out;
}

/** A field of /proc/<pid>/status given in kB ("VmRSS", "VmHWM"), in bytes. */
function statusBytes(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** VmRSS of `pid` with its anonymous and file-backed parts. */
function rssLine(pid: number): string {
  return `${mib(statusBytes(pid, "VmRSS"))} (anon ${mib(statusBytes(pid, "RssAnon"))}, file ${mib(statusBytes(pid, "RssFile"))})`;
}

/** Formats bytes as MiB. */
function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}

async function main(): Promise<void> {
  console.log(`daemon-rss: joblet RSS idle and with ${JOBS} running sleep 30 jobs; conmon RSS per job`);
  console.log(hostLine());
  process.env.JOBLET_DAEMON_NODE_ARGS ??= shebangNodeFlags(`${ROOT}/bin/joblet`).join(" ");
  console.log(`daemon Node flags: ${process.env.JOBLET_DAEMON_NODE_ARGS || "(none)"}`);
  const d = await TestDaemon.start({ joblet: { maxConcurrentJobs: Math.max(200, JOBS * 2) }, logging: { level: "info" } });
  const c = d.client();
  try {
    const daemon = procsMentioning(d.configFile).find((p) => p.comm !== "conmon");
    if (!daemon) throw new Error("daemon process not found");
    await sleep(2000);
    const idle = statusBytes(daemon.pid, "VmRSS");
    const idleLine = rssLine(daemon.pid);
    await sleep(IDLE_S * 1000);
    const settled = statusBytes(daemon.pid, "VmRSS");
    const settledLine = rssLine(daemon.pid);

    const started = await Promise.all(Array.from({ length: JOBS }, () => unary<RunJobRes>((cb) => c.runJob({ command: "sleep", args: ["30"], maxCPU: 0, cpuCores: "", maxMemory: 0, maxIOBPS: 0, timeoutMs: 0, env: [], workdir: "", network: "" }, cb))));
    const ids = new Set(started.map((j) => j.id));
    for (let i = 0; ; i++) {
      const { jobs } = await unary<Jobs>((cb) => c.listJobs({}, cb));
      const running = jobs.filter((j) => ids.has(j.id) && j.status === "RUNNING").length;
      if (running === ids.size) break;
      if (i > 400) throw new Error(`only ${running} of ${ids.size} jobs running after 20 s`);
      await sleep(50);
    }
    await sleep(1000);
    const busy = statusBytes(daemon.pid, "VmRSS");
    const hwm = statusBytes(daemon.pid, "VmHWM");
    const helpers = procsMentioning(d.dir).filter((p) => p.pid !== daemon.pid);
    const conmons = helpers.filter((p) => p.comm === "conmon");
    const others = helpers.filter((p) => p.comm !== "conmon");
    const conmonSum = conmons.reduce((s, p) => s + statusBytes(p.pid, "VmRSS"), 0);
    const otherSum = others.reduce((s, p) => s + statusBytes(p.pid, "VmRSS"), 0);

    console.log(hostLine());
    console.log("results:");
    row("daemon VmRSS idle, 2 s after start", mib(idle), `(target ≤ 80 MB) ${idleLine}`);
    row(`daemon VmRSS idle, ${IDLE_S + 2} s after start`, mib(settled), `(target ≤ 80 MB) ${settledLine}`);
    row(`daemon VmRSS with ${ids.size} running jobs`, mib(busy), `(target ≤ 150 MB; VmHWM ${mib(hwm)}) ${rssLine(daemon.pid)}`);
    row(`conmon processes`, String(conmons.length));
    row("conmon VmRSS sum / running jobs", mib(conmonSum / ids.size), "(target ≤ 3 MB per job)");
    if (others.length) {
      row(`other processes naming the state dir`, `${others.length}`, `${mib(otherSum)} in all: ${[...new Set(others.map((p) => p.comm))].join(", ")}`);
    }
  } finally {
    c.close();
    await d.destroy();
  }
}

await main();
