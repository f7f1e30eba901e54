// Daemon-side start: the duration of each RunJob call as the daemon itself logs it (debug line
// `"rpc":"RunJob","ms":…`, from the call received to the job started), against a bare `runc run` of the same
// spec, `true`, runs interleaved one by one. runc run also waits for `true` to exit and deletes the
// container (a few ms); RunJob returns once `runc start` did.
// Run as root: node --import tsx bench/daemon-start.ts   (BENCH_RUNS=N)
import type { RunJobRes } from "../src/shared/proto/joblet.js";
import { TestDaemon, unary } from "../test/integration/harness.js";
import { bundleFromDaemon, hostLine, median, ms, row, timeOnce, writeRunBundle } from "./lib.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 20);

/** RunJob durations (ms) logged by the daemon since log offset `from`. */
function runJobMs(log: string, from: number): number[] {
  const out: number[] = [];
  for (const line of log.slice(from).split("\n")) {
    if (!line.includes('"rpc":"RunJob"')) continue;
    const m = /"ms":([\d.]+)/.exec(line);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

/** Median of each start phase the daemon logged ("job started", phasesMs) after log offset `from`. */
function startPhases(log: string, from: number): string {
  const phases = new Map<string, number[]>();
  for (const line of log.slice(from).split("\n")) {
    if (!line.includes('"job started"')) continue;
    const entry = JSON.parse(line) as { phasesMs?: Record<string, number> };
    for (const [k, v] of Object.entries(entry.phasesMs ?? {})) if (k !== "conmonPid") phases.set(k, [...(phases.get(k) ?? []), v]);
  }
  return [...phases].map(([k, xs]) => `${k} ${median(xs).toFixed(1)}`).join(", ") || "(not logged by this build)";
}

async function main(): Promise<void> {
  console.log("daemon-start: RunJob received → job started (daemon's own log) vs bare runc run of the same spec");
  console.log(hostLine());
  const d = await TestDaemon.start({ logging: { level: "debug" } });
  const bundle = await bundleFromDaemon(d);
  const c = d.client();
  try {
    const dir = writeRunBundle(bundle, "bench-start", ["true"]);
    const runc = ["runc", "--root", bundle.stateRoot, "run", "-b", dir, "bench-start"];
    const req = { command: "true", args: [], maxCPU: 0, cpuCores: "", maxMemory: 0, maxIOBPS: 0, timeoutMs: 0, env: [], workdir: "", network: "" };
    // Warm-up of both paths (first TLS connection, page cache).
    await unary<RunJobRes>((cb) => c.runJob(req, cb));
    await timeOnce(runc);
    const from = d.log.length;
    const bare: number[] = [];
    const client: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      bare.push(await timeOnce(runc));
      const t0 = process.hrtime.bigint();
      await unary<RunJobRes>((cb) => c.runJob(req, cb));
      client.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    await new Promise((r) => setTimeout(r, 200));
    const daemon = runJobMs(d.log, from);
    if (daemon.length < RUNS) throw new Error(`found ${daemon.length} RunJob log lines, expected ${RUNS}: is debug logging on?`);
    const b = median(bare);
    const s = median(daemon);
    console.log(hostLine());
    console.log("results (medians):");
    row("bare runc run true (same spec)", ms(b));
    row("RunJob in the daemon (its log)", ms(s), `${s - b >= 0 ? "+" : "−"}${Math.abs(s - b).toFixed(1)} ms over runc  (target ≤ +10 ms)`);
    row("RunJob as the client sees it", ms(median(client)));
    console.log(`  start phases in the daemon (medians): ${startPhases(d.log, from)}`);
  } finally {
    c.close();
    bundle.destroy();
    await d.destroy();
  }
}

await main();
