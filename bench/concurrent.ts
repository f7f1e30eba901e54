// 100 jobs of `sleep 1` submitted at once over the gRPC API (RunJob returns once the job started, like
// `rnx run --detach`), then each job's log followed until the daemon ends the stream at the job's recorded end
// (what `rnx log` does; idle streams cost nothing while the jobs sleep), then ListJobs once to check that all
// are COMPLETED; against 100 bare `runc run` of the same spec started at once, whose ends the bench learns
// from wait(2) at no cost. Total wall time, rounds alternate, medians and the ratio.
// BENCH_WAIT=poll instead polls ListJobs every 50 ms (the bench's method until 2026-12-07): that polling is
// itself load on the daemon and on this process — 20 lists a second of all the jobs in the store — which
// the bare side does not carry.
// Run as root: node --import tsx bench/concurrent.ts   (BENCH_JOBS=N, BENCH_ROUNDS=N, BENCH_WAIT=follow|poll)
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { JobletServiceClient, Jobs, RunJobRes } from "../src/shared/proto/joblet.js";
import { jobOutput, ROOT, TestDaemon, unary } from "../test/integration/harness.js";
import { bundleFromDaemon, cpuacctAround, hostLine, median, ms, msSince, row, shebangNodeFlags, writeRunBundle, type RuncBundle } from "./lib.js";

const JOBS = Number(process.env.BENCH_JOBS ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const POLL_MS = 50;
const WAIT = process.env.BENCH_WAIT === "poll" ? "poll" : "follow";
/** Clock ticks per second of /proc/PID/stat's CPU times (USER_HZ; 100 on Linux everywhere). */
const TICKS_PER_S = 100;

/** CPU time (ms) of process `pid` itself (utime + stime), or of its reaped children (cutime + cstime). */
function procCpuMs(pid: number | "self", children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields after the command name start at field 3 (state): utime is field 14, cutime field 16.
  const i = children ? 13 : 11;
  return ((Number(f[i]) + Number(f[i + 1])) * 1000) / TICKS_PER_S;
}

/**
 * Submits JOBS `sleep 1` jobs at once and resolves with the wall time (ms) until all are COMPLETED and the
 * CPU time (ms) their cgroups recorded (the runtime's init inside the container, then `sleep`).
 */
async function viaApi(c: JobletServiceClient): Promise<{ ms: number; jobsCpuMs: number; timeline: string }> {
  const t0 = process.hrtime.bigint();
  const wall0 = Date.now();
  const started = await Promise.all(Array.from({ length: JOBS }, () => unary<RunJobRes>((cb) => c.runJob({ command: "sleep", args: ["1"], maxCPU: 0, cpuCores: "", maxMemory: 0, maxIOBPS: 0, timeoutMs: 0, env: [], workdir: "", network: "" }, cb))));
  const ids = new Set(started.map((j) => j.id));
  if (WAIT === "follow") await Promise.all([...ids].map((id) => jobOutput(c, id)));
  for (;;) {
    const { jobs } = await unary<Jobs>((cb) => c.listJobs({}, cb));
    const mine = jobs.filter((j) => ids.has(j.id));
    const done = mine.filter((j) => j.status !== "INITIALIZING" && j.status !== "RUNNING");
    if (done.length === ids.size) {
      const t = msSince(t0);
      const bad = done.filter((j) => j.status !== "COMPLETED" || j.exitCode !== 0);
      if (bad.length) throw new Error(`${bad.length} jobs did not complete: ${JSON.stringify(bad[0])}`);
      // When the daemon recorded each job accepted, running and ended, ms after the first RunJob was sent.
      const at = (xs: string[]) => xs.map((x) => Date.parse(x) - wall0).sort((a, b) => a - b);
      const [accepted, running, ended] = [at(done.map((j) => j.createTime)), at(done.map((j) => j.startTime)), at(done.map((j) => j.endTime))];
      const span = (xs: number[]) => `${xs[0]}–${xs.at(-1)} (median ${median(xs)})`;
      const timeline = `accepted ${span(accepted)}, running ${span(running)}, ended ${span(ended)} ms`;
      return { ms: t, jobsCpuMs: done.reduce((sum, j) => sum + (j.usage?.cpuTimeNs ?? 0), 0) / 1e6, timeline };
    }
    await sleep(POLL_MS);
  }
}

/** Starts JOBS `runc run` of `sleep 1` at once and resolves with the wall time (ms) until all exited 0. */
async function bareRunc(b: RuncBundle, round: number): Promise<number> {
  const dirs = Array.from({ length: JOBS }, (_, i) => writeRunBundle(b, `c${round}-${i}`, ["sleep", "1"]));
  const t0 = process.hrtime.bigint();
  const codes = await Promise.all(
    dirs.map(
      (dir, i) =>
        new Promise<number | null>((resolve) => {
          const p = spawn("runc", ["--root", b.stateRoot, "run", "-b", dir, `c${round}-${i}`], { stdio: "ignore" });
          p.once("error", () => resolve(-1));
          p.once("close", (code) => resolve(code));
        }),
    ),
  );
  const t = msSince(t0);
  const bad = codes.filter((c) => c !== 0).length;
  if (bad) throw new Error(`${bad} bare runc runs failed`);
  return t;
}

/** Median and maximum of each start phase the daemon logged ("job started", phasesMs) after log offset `from`. */
function startPhases(log: string, from: number): string {
  const phases = new Map<string, number[]>();
  for (const line of log.slice(from).split("\n")) {
    if (!line.includes('"job started"')) continue;
    const entry = JSON.parse(line) as { ms?: number; phasesMs?: Record<string, number> };
    for (const [k, v] of Object.entries({ totalMs: entry.ms ?? NaN, ...entry.phasesMs })) {
      if (k !== "conmonPid") phases.set(k, [...(phases.get(k) ?? []), v]);
    }
  }
  return [...phases].map(([k, xs]) => `${k} ${median(xs).toFixed(0)}/${Math.max(...xs).toFixed(0)}`).join(", ");
}

async function main(): Promise<void> {
  console.log(`concurrent: ${JOBS} × sleep 1 over the API vs ${JOBS} bare runc run at once, ${ROUNDS} rounds`);
  console.log(hostLine());
  // The daemon as systemd runs it: with bin/joblet's #! Node flags (the harness runs `node bin/joblet`, which
  // ignores that line); JOBLET_DAEMON_NODE_ARGS set by the caller wins.
  process.env.JOBLET_DAEMON_NODE_ARGS ??= shebangNodeFlags(`${ROOT}/bin/joblet`).join(" ");
  console.log(`daemon Node flags: ${process.env.JOBLET_DAEMON_NODE_ARGS || "(none)"}`);
  const d = await TestDaemon.start({ joblet: { maxConcurrentJobs: Math.max(200, JOBS * 2) }, logging: { level: "info" } });
  const bundle = await bundleFromDaemon(d);
  const c = d.client();
  const acct = cpuacctAround(d.pid);
  try {
    const api: number[] = [];
    const bare: number[] = [];
    const cpu = { bare: [] as number[], daemon: [] as number[], helpers: [] as number[], jobs: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      const bare0 = procCpuMs("self", true);
      bare.push(await bareRunc(bundle, r));
      cpu.bare.push(procCpuMs("self", true) - bare0);
      const daemon0 = procCpuMs(d.pid);
      const group0 = acct?.usageMs() ?? NaN;
      const logFrom = d.log.length;
      const res = await viaApi(c);
      api.push(res.ms);
      cpu.jobs.push(res.jobsCpuMs);
      const daemonMs = procCpuMs(d.pid) - daemon0;
      cpu.daemon.push(daemonMs);
      cpu.helpers.push((acct?.usageMs() ?? NaN) - group0 - daemonMs);
      console.log(
        `  round ${r + 1}: bare runc ${ms(bare.at(-1)!)} (CPU ${ms(cpu.bare.at(-1)!)}), Joblet API ${ms(api.at(-1)!)} ` +
          `(CPU daemon ${ms(daemonMs)}, conmon+runc ${ms(cpu.helpers.at(-1)!)}, in the jobs' cgroups ${ms(res.jobsCpuMs)})  (${hostLine()})\n    ${res.timeline}\n    start phases (median/max): ${startPhases(d.log, logFrom)}`,
      );
    }
    const a = median(api);
    const b = median(bare);
    console.log("results (medians):");
    row(`${JOBS} bare runc run at once`, ms(b), `CPU of the runc processes ${ms(median(cpu.bare))}`);
    row(`${JOBS} jobs over the API, until all COMPLETED`, ms(a), `${(a / b).toFixed(2)}× bare  (target ≤ 1.3×; ends seen by ${WAIT === "poll" ? `ListJobs every ${POLL_MS} ms` : "following each job's log"})`);
    row("  CPU: the daemon / conmon + runc / in jobs", `${ms(median(cpu.daemon))} / ${ms(median(cpu.helpers))} / ${ms(median(cpu.jobs))}`, `(${os.cpus().length} CPUs)`);
  } finally {
    c.close();
    bundle.destroy();
    // A clean stop first, so that a daemon run with --cpu-prof (JOBLET_DAEMON_NODE_ARGS) writes its profile.
    await d.stopProcess("SIGTERM");
    await d.destroy();
    acct?.destroy();
  }
}

await main();
