// 100 jobs of `sleep 1` submitted at once over the gRPC API (RunJob returns once the job started, like
// `rnx run --detach`), then ListJobs polled every 50 ms until all are COMPLETED, against 100 bare
// `runc run` of the same spec started at once. Total wall time, rounds alternate, medians and the ratio.
// Run as root: node --import tsx bench/concurrent.ts   (BENCH_JOBS=N, BENCH_ROUNDS=N)
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import type { JobletServiceClient, Jobs, RunJobRes } from "../src/shared/proto/joblet.js";
import { TestDaemon, unary } from "../test/integration/harness.js";
import { bundleFromDaemon, hostLine, median, ms, msSince, row, writeRunBundle, type RuncBundle } from "./lib.js";

const JOBS = Number(process.env.BENCH_JOBS ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const POLL_MS = 50;

/** Submits JOBS `sleep 1` jobs at once and resolves with the wall time (ms) until all are COMPLETED. */
async function viaApi(c: JobletServiceClient): Promise<number> {
  const t0 = process.hrtime.bigint();
  const started = await Promise.all(Array.from({ length: JOBS }, () => unary<RunJobRes>((cb) => c.runJob({ command: "sleep", args: ["1"], maxCPU: 0, cpuCores: "", maxMemory: 0, maxIOBPS: 0, timeoutMs: 0, env: [], workdir: "", network: "" }, cb))));
  const ids = new Set(started.map((j) => j.id));
  for (;;) {
    const { jobs } = await unary<Jobs>((cb) => c.listJobs({}, cb));
    const mine = jobs.filter((j) => ids.has(j.id));
    const done = mine.filter((j) => j.status !== "INITIALIZING" && j.status !== "RUNNING");
    if (done.length === ids.size) {
      const t = msSince(t0);
      const bad = done.filter((j) => j.status !== "COMPLETED" || j.exitCode !== 0);
      if (bad.length) throw new Error(`${bad.length} jobs did not complete: ${JSON.stringify(bad[0])}`);
      return t;
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

async function main(): Promise<void> {
  console.log(`concurrent: ${JOBS} × sleep 1 over the API vs ${JOBS} bare runc run at once, ${ROUNDS} rounds`);
  console.log(hostLine());
  const d = await TestDaemon.start({ joblet: { maxConcurrentJobs: Math.max(200, JOBS * 2) }, logging: { level: "info" } });
  const bundle = await bundleFromDaemon(d);
  const c = d.client();
  try {
    const api: number[] = [];
    const bare: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      bare.push(await bareRunc(bundle, r));
      api.push(await viaApi(c));
      console.log(`  round ${r + 1}: bare runc ${ms(bare.at(-1)!)}, Joblet API ${ms(api.at(-1)!)}  (${hostLine()})`);
    }
    const a = median(api);
    const b = median(bare);
    console.log("results (medians):");
    row(`${JOBS} bare runc run at once`, ms(b));
    row(`${JOBS} jobs over the API, until all COMPLETED`, ms(a), `${(a / b).toFixed(2)}× bare  (target ≤ 1.3×; polled every ${POLL_MS} ms)`);
  } finally {
    c.close();
    bundle.destroy();
    await d.destroy();
  }
}

await main();
