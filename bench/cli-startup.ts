// CLI start-up: `rnx --version` and `rnx list` (100 finished jobs) against bare `node -e 0`, and `rnx list`
// with 10,000 jobs in the store against 10. Rows beyond the first real jobs are copies of a real finished
// job's row with new UUIDs, inserted into the stopped daemon's SQLite store. A bare ListJobs call (node:http2 and
// node:tls, the node's PEMs from JSON, the answer read and dropped) on the 100-job daemon is the floor under
// `rnx list`: Node's own http2/TLS start-up, the handshake and the daemon's answer; above it is rnx's own cost.
// Run as root: node --import tsx bench/cli-startup.ts   (BENCH_RUNS=N to change the run count;
// BENCH_RNX_OTHER=PATH/bin/rnx adds another build's `rnx list` on the same daemons, in the same invocation)
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { loadRnxConfig, selectNode } from "../src/shared/config/rnx.js";
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

/**
 * The bare ListJobs call (exits 1 unless it ends with gRPC status 0): argv[2] is a JSON file with the node's
 * address and PEMs. Like rnx on a daemon certificate it has verified before (verified-servers.ts), it makes no
 * chain check (`ca: []`): with a `ca`, Node 20 would first parse its bundled root store (~25 ms).
 */
const BARE_LIST = `import fs from "node:fs"; import http2 from "node:http2"; import tls from "node:tls";
const n = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const i = n.address.lastIndexOf(":"); const host = n.address.slice(0, i).replace(/^\\[(.*)\\]$/, "$1");
const s = http2.connect("https://" + n.address, { createConnection: () => tls.connect({ host, port: Number(n.address.slice(i + 1)),
  ca: [], rejectUnauthorized: false, key: n.keyPem, cert: n.certPem, ALPNProtocols: ["h2"], servername: /^[\\d.]+$|:/.test(host) ? undefined : host }) });
const st = s.request({ ":method": "POST", ":path": "/joblet.JobletService/ListJobs", "content-type": "application/grpc", te: "trailers" });
st.end(Buffer.alloc(5));
let ok = false;
st.on("trailers", (t) => (ok = t["grpc-status"] === "0"));
st.on("data", () => {});
st.on("close", () => { process.exitCode = ok ? 0 : 1; s.close(); });
`;

/** Writes the bare call and `d`'s default node as JSON into `dir`; returns the command line. */
function bareList(d: TestDaemon, dir: string): string[] {
  const script = path.join(dir, "bare-list.mjs");
  const node = path.join(dir, "node.json");
  writeFileSync(script, BARE_LIST);
  writeFileSync(node, JSON.stringify(selectNode(loadRnxConfig(d.rnxConfigFile), "default")));
  return [NODE, script, node];
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
  const tmp = mkdtempSync(path.join(os.tmpdir(), "joblet-bench-cli-"));
  try {
    for (const n of [10, 100, 10_000]) daemons.push(await daemonWith(n));
    const list = (d: TestDaemon, rnx = RNX): string[] => [NODE, rnx, "--config", d.rnxConfigFile, "list"];
    const others = OTHER ? [list(daemons[0]!, OTHER), list(daemons[1]!, OTHER), list(daemons[2]!, OTHER)] : [];
    const [bare, version, list10, list100, list10k, call100, o10, o100, o10k] = await medians(
      [[NODE, "-e", "0"], [NODE, RNX, "--version"], list(daemons[0]!), list(daemons[1]!), list(daemons[2]!), bareList(daemons[1]!, tmp), ...others],
      RUNS,
    );
    console.log(hostLine());
    console.log("results (medians):");
    row("node -e 0 (baseline)", ms(bare!));
    row("rnx --version", ms(version!), `+${(version! - bare!).toFixed(1)} ms over node  (target ≤ +60 ms)`);
    row("rnx list, 100 jobs", ms(list100!), `+${(list100! - bare!).toFixed(1)} ms over node  (target ≤ +60 ms)`);
    row("bare http2+TLS ListJobs call, 100 jobs", ms(call100!), `+${(call100! - bare!).toFixed(1)} ms over node (the floor under rnx list)`);
    row("rnx list's own cost, 100 jobs", ms(list100! - call100!), "over the bare call");
    row("rnx list, 10 jobs", ms(list10!));
    row("rnx list, 10,000 jobs", ms(list10k!), `${(list10k! / list10!).toFixed(2)}× list with 10  (target ≤ 3×)`);
    if (OTHER) {
      row(`other build: list, 10 jobs`, ms(o10!), OTHER);
      row(`other build: list, 100 jobs`, ms(o100!), `+${(o100! - bare!).toFixed(1)} ms over node, ${(o100! - call100!).toFixed(1)} ms over the bare call`);
      row(`other build: list, 10,000 jobs`, ms(o10k!), `${(o10k! / o10!).toFixed(2)}× its list with 10`);
    }
  } finally {
    for (const d of daemons) await d.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
