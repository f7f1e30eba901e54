// Log throughput: a job writing a lot of output, read through Joblet, against the same command in a bare
// `runc run` container (the same spec, copied from a real Joblet job) writing straight into a local pipe.
// Three workloads: (a) `dd if=/dev/zero bs=1M` (large writes; conmon cuts them into 8 KiB `P` records),
// (b) 100-byte lines (`yes` of a 99-character string, cut by `head -c`; one `F` record per line) and (c)
// 100-byte lines written alternately to stdout and stderr, one write each (perl with autoflush; one chunk per
// line on the way out, the per-message cost), read with `2>&1`.
// For each, interleaved run by run:
//   baseline  `runc run … | wc -c`                       container stdout → pipe → reader, start to EOF
//   follow    `rnx run sh -c CMD | wc -c`                job output followed live: conmon → log file →
//                                                        daemon reader → gRPC → rnx → pipe, whole CLI
//   replay    `rnx log ID | wc -c`                        the finished job's log read back, whole CLI
// Every reader is `wc -c` (it must read every byte of a pipe) and its count is checked against the size.
// The daemon runs with no per-job log cap (logs.maxJobLogMB 0): a 1 GiB job's log is larger than the
// default 1 GiB cap, and retention punching the middle out would change what is measured.
// Besides wall times it prints CPU seconds per GiB, which vary less on a loaded host: of the pipeline's own
// processes (the shell's `times`: rnx and wc; for the baseline runc, the container and wc), of the daemon
// (from /proc), of conmon and runc (a cpuacct cgroup around the daemon, which its helpers start in and stay
// in, less the daemon's own) and of the job (its recorded usage), and their total.
// Run as root: node --import tsx bench/log-throughput.ts
//   BENCH_RUNS (default 3), BENCH_DD_MB (default 1024), BENCH_LINES_MB (default 1024), BENCH_ALT_MB (default
//   64; the job itself writes them at only ~50 MB/s here); 0 skips a workload,
//   BENCH_DAEMON_NODE_FLAGS / BENCH_RNX_NODE_FLAGS: more Node flags for the daemon (which always gets those
//   of bin/joblet's `#!` line, as systemd runs it) and for rnx, e.g. BENCH_DAEMON_NODE_FLAGS=--initial-heap-size=32,
//   BENCH_CPU_PROF=DIR: --cpu-prof of the daemon and of every rnx process into DIR,
//   BENCH_BUILD=DIR: run bin/joblet and bin/rnx of another checkout or build (with its dist/ and node_modules),
//   to compare builds without rebuilding this one.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { ROOT, TestDaemon } from "../test/integration/harness.js";
import { bundleFromDaemon, cpuacctAround, hostLine, median, msSince, row, shebangNodeFlags, writeRunBundle, type RuncBundle } from "./lib.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DD_MB = Number(process.env.BENCH_DD_MB ?? 1024);
const LINES_MB = Number(process.env.BENCH_LINES_MB ?? 1024);
const ALT_MB = Number(process.env.BENCH_ALT_MB ?? 64);

const PROF_DIR = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined;
const PROF_FLAGS = PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROF_DIR}`] : [];
const words = (s: string | undefined): string[] => (s ?? "").split(" ").filter(Boolean);
const BUILD = process.env.BENCH_BUILD ? path.resolve(process.env.BENCH_BUILD) : ROOT;
const JOBLET = path.join(BUILD, "bin", "joblet");
const RNX = path.join(BUILD, "bin", "rnx");
const DAEMON_FLAGS = [...shebangNodeFlags(JOBLET), ...words(process.env.BENCH_DAEMON_NODE_FLAGS), ...PROF_FLAGS];
const RNX_FLAGS = [...words(process.env.BENCH_RNX_NODE_FLAGS), ...PROF_FLAGS];
const MiB = 1 << 20;
// Pairs of 100-byte lines (one to stdout, one to stderr) in ALT_MB MiB.
const ALT_PAIRS = Math.floor((ALT_MB * MiB) / 200);
// 99 characters plus the newline `yes` adds: 100-byte lines.
const LINE = "0123456789abcdefghijklmnopqrstuvwxyz".repeat(3).slice(0, 99);

/** One workload: a shell command writing exactly `bytes` bytes to stdout. */
interface Workload {
  name: string;
  bytes: number;
  /** Read stderr too (`2>&1`): the command writes to both. */
  merge?: boolean;
  script: string;
}

const WORKLOADS: Workload[] = [
  { name: `dd bs=1M, ${DD_MB} MiB`, bytes: DD_MB * MiB, script: `dd if=/dev/zero bs=1M count=${DD_MB} 2>/dev/null` },
  { name: `100-byte lines, ${LINES_MB} MiB`, bytes: LINES_MB * MiB, script: `yes ${LINE} | head -c ${LINES_MB * MiB}` },
  {
    name: `100-byte lines alternating stdout/stderr, ${ALT_MB} MiB`,
    bytes: ALT_PAIRS * 200,
    merge: true,
    script: `perl -e 'select(STDERR); $|=1; select(STDOUT); $|=1; $l="${LINE}\\n"; for (1..${ALT_PAIRS}) { print STDOUT $l; print STDERR $l }'`,
  },
].filter((w) => w.bytes > 0);

/** Wall time and CPU time of one piped run, in milliseconds. */
interface Timing {
  wallMs: number;
  /** user + system CPU of the pipeline's processes (the command and wc), from the shell's `times`. */
  cpuMs: number;
  /** CPU the daemon used meanwhile (0 for the baseline). */
  daemonCpuMs: number;
  /** CPU of the daemon's helpers meanwhile: conmon and runc (NaN without a cpuacct cgroup; 0 for the baseline). */
  helpersCpuMs: number;
  /** CPU of the job's own processes, from its record (0 for replays and the baseline, where `cpuMs` has it). */
  jobCpuMs: number;
}

/** Where the daemon's CPU is read from: its pid, and the cgroup around it and its helpers. */
interface DaemonCpu {
  pid: number;
  groupMs?: () => number;
}

/** user + system CPU time of process `pid` so far, in ms (/proc/<pid>/stat fields 14 and 15, in clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

// "1m2.500s" → 62500
function shellTimeMs(t: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(t);
  return m ? (Number(m[1]) * 60 + Number(m[2])) * 1000 : NaN;
}

/**
 * Runs `sh -c "<argv> | wc -c; times"` (`<argv> 2>&1 | …` with `merge`); resolves with its wall and CPU time, and the CPU the daemon and its
 * helpers used meanwhile. Throws unless it exits 0 and wc counted `bytes`.
 */
function timePiped(argv: readonly string[], bytes: number, daemon?: DaemonCpu, merge = false): Promise<Timing> {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  const daemonPid = daemon?.pid;
  return new Promise((resolve, reject) => {
    const d0 = daemonPid === undefined ? 0 : processCpuMs(daemonPid);
    const g0 = daemon?.groupMs?.() ?? NaN;
    const t0 = process.hrtime.bigint();
    const p = spawn("sh", ["-c", `${quoted}${merge ? " 2>&1" : ""} | wc -c; times`], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.once("error", reject);
    p.once("close", (code) => {
      const wallMs = msSince(t0);
      const daemonCpuMs = daemonPid === undefined ? 0 : processCpuMs(daemonPid) - d0;
      const helpersCpuMs = daemon === undefined ? 0 : (daemon.groupMs?.() ?? NaN) - g0 - daemonCpuMs;
      // wc's count, then `times`: the shell's own user/sys, then its children's.
      const lines = out.trim().split("\n");
      const counted = Number(lines[0]);
      const [user, sys] = (lines[2] ?? "").split(" ").map(shellTimeMs);
      if (code === 0 && counted === bytes) resolve({ wallMs, cpuMs: user! + sys!, daemonCpuMs, helpersCpuMs, jobCpuMs: 0 });
      else reject(new Error(`${argv.join(" ")} | wc -c: exit ${code}, counted ${lines[0]} bytes of ${bytes}: ${err}`));
    });
  });
}

/** Job IDs with a log file in the daemon's state dir. */
function logIds(d: TestDaemon): Set<string> {
  return new Set(readdirSync(path.join(d.dir, "state", "logs")).filter((f) => f.endsWith(".log")).map((f) => f.slice(0, -4)));
}

/**
 * Stops the harness's daemon process (jobs and state stay) and starts `node <flags> <BUILD>/bin/joblet` on the
 * same config; resolves with the process once it serves. Stop it with SIGTERM (a CPU profile is written at exit).
 */
async function relaunchWithFlags(d: TestDaemon, flags: readonly string[]): Promise<ChildProcess> {
  await d.stopProcess("SIGTERM");
  const proc = spawn(process.execPath, [...flags, JOBLET, "--config", d.configFile], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start with ${flags.join(" ")}:\n${log}`)), 20_000);
    proc.stderr!.on("data", (x: Buffer) => {
      log += x.toString();
      if (log.includes('"joblet serving"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code}:\n${log}`));
    });
  });
  proc.removeAllListeners("exit");
  return proc;
}

/** MB/s (10^6 bytes per second) of `bytes` in `ms`. */
function mbps(bytes: number, ms: number): string {
  return `${((bytes / 1e6) / (ms / 1000)).toFixed(0)} MB/s`;
}

/** The timings of the three ways, one entry per run. */
interface Runs {
  base: Timing[];
  follow: Timing[];
  replay: Timing[];
}

/** Runs workload `w` `runs` times, each time bare runc, then rnx run, then rnx log of that job (then removes it). */
async function measure(d: TestDaemon, daemon: DaemonCpu, b: RuncBundle, w: Workload, runs: number): Promise<Runs> {
  const r: Runs = { base: [], follow: [], replay: [] };
  const rnx = [process.execPath, ...RNX_FLAGS, RNX, "--config", d.rnxConfigFile];
  const s = (t: Timing): string => `${(t.wallMs / 1000).toFixed(2)} s`;
  for (let i = 0; i < runs; i++) {
    const id = `lt-${process.pid}-${i}-${w.bytes}`;
    const dir = writeRunBundle(b, id, ["sh", "-c", w.script]);
    r.base.push(await timePiped(["runc", "--root", b.stateRoot, "run", "-b", dir, id], w.bytes, undefined, w.merge));

    const before = logIds(d);
    r.follow.push(await timePiped([...rnx, "run", "sh", "-c", w.script], w.bytes, daemon, w.merge));
    const fresh = [...logIds(d)].filter((x) => !before.has(x));
    if (fresh.length !== 1) throw new Error(`expected one new job log, found ${fresh.length}`);
    const jobId = fresh[0]!;
    r.follow.at(-1)!.jobCpuMs = await jobCpuMs(d, jobId);
    r.replay.push(await timePiped([...rnx, "log", jobId], w.bytes, daemon, w.merge));
    const rm = await d.rnx(["rm", jobId]);
    if (rm.code !== 0) throw new Error(`rnx rm ${jobId}: ${rm.stderr}`);
    console.log(`    run ${i + 1}/${runs}: runc ${s(r.base.at(-1)!)}, rnx run ${s(r.follow.at(-1)!)}, rnx log ${s(r.replay.at(-1)!)}`);
  }
  return r;
}

/** CPU the job's processes used, ms, from its record (NaN if it has none). */
async function jobCpuMs(d: TestDaemon, id: string): Promise<number> {
  const st = await d.rnx(["status", "--json", id]);
  const ns = st.code === 0 ? (JSON.parse(st.stdout) as { usage?: { cpuTimeNs?: number } }).usage?.cpuTimeNs : undefined;
  return ns === undefined ? NaN : ns / 1e6;
}

/** Prints one way's median throughput, its ratio to the baseline's, and median CPU seconds per GiB. */
function report(name: string, w: Workload, ts: Timing[], base: Timing[] | null): void {
  const wall = median(ts.map((t) => t.wallMs));
  const perGiB = (ms: number): string => ((ms / 1000) * (2 ** 30 / w.bytes)).toFixed(1);
  const med = (f: (t: Timing) => number): string => perGiB(median(ts.map(f)));
  const total = (t: Timing): number => t.cpuMs + t.daemonCpuMs + t.helpersCpuMs + t.jobCpuMs;
  const cpu = base
    ? `CPU/GiB: rnx + wc ${med((t) => t.cpuMs)} s, daemon ${med((t) => t.daemonCpuMs)} s, conmon + runc ${med((t) => t.helpersCpuMs)} s, job ${med((t) => t.jobCpuMs)} s, total ${med(total)} s`
    : `CPU/GiB: runc, job and wc ${med((t) => t.cpuMs)} s`;
  const ratio = base ? `, ${(median(base.map((t) => t.wallMs)) / wall).toFixed(2)}× runc (target ≥ 0.5×)` : "";
  row(name, mbps(w.bytes, wall), `${(wall / 1000).toFixed(2)} s${ratio}; ${cpu}`);
}

async function main(): Promise<void> {
  console.log(`log-throughput: job output through rnx run / rnx log vs bare runc run into a pipe, ${RUNS} runs`);
  if (BUILD !== ROOT) console.log(`build: ${BUILD}`);
  console.log(`node flags: daemon [${DAEMON_FLAGS.join(" ")}], rnx [${RNX_FLAGS.join(" ")}]`);
  console.log(hostLine());
  if (PROF_DIR) mkdirSync(PROF_DIR, { recursive: true });
  // The harness starts this checkout's daemon with JOBLET_DAEMON_NODE_ARGS; another build's is started here.
  process.env.JOBLET_DAEMON_NODE_ARGS = DAEMON_FLAGS.join(" ");
  const d = await TestDaemon.start({ logging: { level: "info" }, logs: { maxJobLogMB: 0 } });
  const bundle = await bundleFromDaemon(d);
  const own = BUILD !== ROOT ? await relaunchWithFlags(d, DAEMON_FLAGS) : undefined;
  const daemonPid = own?.pid ?? d.pid;
  const acct = cpuacctAround(daemonPid);
  if (!acct) console.log("no cgroup v1 cpuacct hierarchy: conmon + runc CPU is not measured (NaN)");
  const daemon: DaemonCpu = { pid: daemonPid, groupMs: acct?.usageMs };
  try {
    for (const w of WORKLOADS) {
      console.log(`${w.name}:`);
      // One unmeasured run warms the page cache, the rootfs and the daemon's JIT.
      await measure(d, daemon, bundle, w, 1);
      const r = await measure(d, daemon, bundle, w, RUNS);
      console.log(hostLine());
      report("bare runc run | wc -c", w, r.base, null);
      report("rnx run (live follow) | wc -c", w, r.follow, r.base);
      report("rnx log (finished job) | wc -c", w, r.replay, r.base);
    }
  } finally {
    // A CPU profile is written at a normal exit: SIGTERM first (destroy() kills with SIGKILL).
    if (PROF_DIR && !own) await d.stopProcess("SIGTERM");
    if (own && own.exitCode === null && own.signalCode === null) {
      const exited = new Promise((resolve) => own.once("exit", resolve));
      own.kill("SIGTERM");
      await exited;
    }
    bundle.destroy();
    await d.destroy();
    acct?.destroy();
  }
}

await main();
