// CLI start-up: `rnx --version` and `rnx list` (100 finished jobs) against bare `node -e 0`, and `rnx list`
// with 10,000 jobs in the store against 10. Rows beyond the first real jobs are copies of a real finished
// job's row with new UUIDs, inserted into the stopped daemon's SQLite store.
// Run as root: node --import tsx bench/cli-startup.ts   (BENCH_RUNS=N to change the run count;
// BENCH_RNX_OTHER=PATH/bin/rnx adds another build's `rnx list` on the same daemons, in the same invocation)
import { randomUUID } from "node:crypto";
import path from "node:path";
import Database from "better-sqlite3";
import { ROOT, TestDaemon } from "../test/integration/harness.js";
import { hostLine, medians, ms, row } from "./lib.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const RNX = path.join(ROOT, "bin", "rnx");
const NODE = process.execPath;
/** Another build's bin/rnx to compare with (e.g. one from before a change), or undefined. */
const OTHER = process.env.BENCH_RNX_OTHER;

/** Stops the daemon, brings the jobs table to `total` rows by copying a finished job's row, restarts it. */
async function fillTo(d: TestDaemon, total: number): Promise<void> {
  await d.stopProcess("SIGTERM");
  const db = new Database(path.join(d.dir, "state", "joblet.db"));
  try {
    const have = (db.prepare("SELECT count(*) AS n FROM jobs").get() as { n: number }).n;
    const model = db.prepare("SELECT * FROM jobs WHERE status = 'COMPLETED' ORDER BY seq LIMIT 1").get() as Record<string, unknown> | undefined;
    if (!model) throw new Error("no COMPLETED job to copy");
    const cols = Object.keys(model).filter((c) => c !== "seq");
    const insert = db.prepare(`INSERT INTO jobs (${cols.join(", ")}) VALUES (${cols.map((c) => "@" + c).join(", ")})`);
    db.transaction(() => {
      for (let i = have; i < total; i++) insert.run({ ...Object.fromEntries(cols.map((c) => [c, model[c]])), id: randomUUID() });
    })();
  } finally {
    db.close();
  }
  await d.launch();
}

/** A daemon holding `total` finished jobs: one real `rnx run true`, the rest copied rows. */
async function daemonWith(total: number): Promise<TestDaemon> {
  const d = await TestDaemon.start({ joblet: { retention: { maxJobs: 100_000 } }, logging: { level: "info" } });
  const r = await d.rnx(["run", "true"]);
  if (r.code !== 0) {
    await d.destroy();
    throw new Error(`rnx run true failed: ${r.stderr}`);
  }
  await fillTo(d, total);
  return d;
}

async function main(): Promise<void> {
  console.log("cli-startup: rnx --version / rnx list vs node -e 0; rnx list with 10,000 jobs vs 10");
  console.log(hostLine());
  // Three daemons at once, so that one hyperfine invocation interleaves every command: load from other
  // work on the host then affects baseline and measure alike.
  const daemons: TestDaemon[] = [];
  try {
    for (const n of [10, 100, 10_000]) daemons.push(await daemonWith(n));
    const list = (d: TestDaemon, rnx = RNX): string[] => [NODE, rnx, "--config", d.rnxConfigFile, "list"];
    const others = OTHER ? [list(daemons[0]!, OTHER), list(daemons[1]!, OTHER), list(daemons[2]!, OTHER)] : [];
    const [bare, version, list10, list100, list10k, o10, o100, o10k] = await medians(
      [[NODE, "-e", "0"], [NODE, RNX, "--version"], list(daemons[0]!), list(daemons[1]!), list(daemons[2]!), ...others],
      RUNS,
    );
    console.log(hostLine());
    console.log("results (medians):");
    row("node -e 0 (baseline)", ms(bare!));
    row("rnx --version", ms(version!), `+${(version! - bare!).toFixed(1)} ms over node  (target ≤ +60 ms)`);
    row("rnx list, 100 jobs", ms(list100!), `+${(list100! - bare!).toFixed(1)} ms over node  (target ≤ +60 ms)`);
    row("rnx list, 10 jobs", ms(list10!));
    row("rnx list, 10,000 jobs", ms(list10k!), `${(list10k! / list10!).toFixed(2)}× list with 10  (target ≤ 3×)`);
    if (OTHER) {
      row(`other build: list, 10 jobs`, ms(o10!), OTHER);
      row(`other build: list, 100 jobs`, ms(o100!), `+${(o100! - bare!).toFixed(1)} ms over node`);
      row(`other build: list, 10,000 jobs`, ms(o10k!), `${(o10k! / o10!).toFixed(2)}× its list with 10`);
    }
  } finally {
    for (const d of daemons) await d.destroy();
  }
}

await main();
