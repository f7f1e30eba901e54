// The training run behind the bundle's V8 code cache (scripts/bundle-cli.mjs; bin/rnx explains the cache):
// starts a fake daemon and has bin/rnx run rnx's common commands against it in one process, then write
// BUNDLE.cache. The cache holds the bytecode of every function these commands compiled, so they should take
// the paths real use takes: config, mTLS connect, the RPCs, the output formatting.
// Usage: node --import tsx src/cli/code-cache-train.ts BUNDLE
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Stream } from "../shared/proto/joblet.js";
import { FakeDaemon, fakeJob } from "./test-support/fake-daemon.js";

const ID = "0d5c6f3a-1111-4222-8333-444455556666";
const bundle = path.resolve(process.argv[2] ?? "dist/rnx.mjs");
const rnx = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "rnx");

const done = fakeJob({ id: ID, command: "make", args: ["test"], status: "COMPLETED", endTime: "2025-01-02T03:05:05Z" });
const daemon = await FakeDaemon.start({
  listJobs: () => [done, fakeJob({ id: ID.replace("0d5c", "1e6d"), status: "RUNNING" })],
  runJob: (req) => fakeJob({ ...req, id: ID, status: "RUNNING" }),
  getJobLogs: async (_req, send) => {
    await send({ payload: Buffer.from("output\n"), stream: Stream.STDOUT, offset: 0 });
    await send({ payload: Buffer.from("errors\n"), stream: Stream.STDERR, offset: 7 });
  },
  getJobStatus: () => done,
});
try {
  const config = ["--config", daemon.configPath];
  const commands = [
    [...config, "list"],
    [...config, "list", "--json"],
    [...config, "run", "--timeout", "1m", "-e", "A=1", "make", "test"],
    [...config, "status", ID],
    ["--help"],
  ];
  // Asynchronous: the fake daemon answers from this process's event loop.
  const child = spawn(process.execPath, [rnx], {
    env: { ...process.env, RNX_CODE_CACHE_TRAIN: JSON.stringify({ bundle, commands }) },
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 60_000,
  });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`training run exited ${code ?? signal}: ${stderr}`);
} finally {
  await daemon.close();
}
