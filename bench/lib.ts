// Shared helpers of the bench scripts: timing loops, medians, hyperfine, the host description and a job
// spec copied from a real daemon so that bare-runc baselines run the same spec as Joblet's jobs.
// Benchmarks print medians and ratios against a baseline measured in the same invocation; they never
// pass or fail on absolute times.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { TestDaemon } from "../test/integration/harness.js";

// Every rnx a bench runs (hyperfine inherits this environment) keeps its verified daemon certificates in a
// dir of this invocation, not in the home directory: the benches' daemons each have a new CA. A warm-up run
// fills it, so measured runs see what a user's second and later commands see.
if (!process.env.RNX_CACHE_DIR) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-bench-rnx-cache-"));
  process.env.RNX_CACHE_DIR = dir;
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
}

/** Median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Milliseconds since `startNs` (a process.hrtime.bigint() value). */
export function msSince(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}

/**
 * One line describing the host: CPUs, kernel, load average now, and whether NODE_EXTRA_CA_CERTS is set. Node
 * reads that file at every start (with the system bundle, ~65 ms on the 2-core VM), so every Node process
 * measured pays it; without it, rnx pays ~25 ms instead the first time a TLS context gets a `ca` (Node 20
 * parses its bundled root store then), which `node -e 0` never does: the CLI rows move in opposite directions.
 */
export function hostLine(): string {
  const [l1, l5, l15] = os.loadavg().map((x) => x.toFixed(2));
  const extraCa = process.env.NODE_EXTRA_CA_CERTS ? "set" : "unset";
  return `host: nproc=${os.cpus().length} kernel=${os.release()} node=${process.version} loadavg=${l1} ${l5} ${l15} NODE_EXTRA_CA_CERTS=${extraCa}`;
}

/** Runs argv (argv[0] an executable) once and resolves with its wall time in milliseconds; throws on a non-zero exit. */
export function timeOnce(argv: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.once("error", reject);
    p.once("close", (code) => {
      const ms = msSince(t0);
      if (code === 0) resolve(ms);
      else reject(new Error(`${argv.join(" ")} exited ${code}: ${err}`));
    });
  });
}

/** Median wall time (ms) of `runs` sequential runs of argv after `warmup` unmeasured ones (a loop, no hyperfine). */
export async function loopMedian(argv: readonly string[], runs: number, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await timeOnce(argv);
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await timeOnce(argv));
  return median(xs);
}

/** True when hyperfine is on PATH (and BENCH_NO_HYPERFINE is unset). */
export function haveHyperfine(): boolean {
  if (process.env.BENCH_NO_HYPERFINE) return false;
  return spawnSync("hyperfine", ["--version"], { stdio: "ignore" }).status === 0;
}

/** Shell-quotes one word for hyperfine's command strings. */
function shq(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Median wall time (ms) of each command, measured by hyperfine (`-N`, no shell) when installed, else by a loop
 * of `runs` runs per command. hyperfine runs one command's batch after another, so a load that comes or goes
 * during the invocation would favour some rows: the runs are split into up to 5 rounds of all the commands
 * (warm-up in the first), and each median is taken over the times of every round.
 */
export async function medians(cmds: readonly (readonly string[])[], runs: number, warmup = 3): Promise<number[]> {
  if (!haveHyperfine()) {
    const out: number[] = [];
    for (const c of cmds) out.push(await loopMedian(c, runs, warmup));
    return out;
  }
  const rounds = Math.max(1, Math.min(5, Math.floor(runs / 2)));
  const times: number[][] = cmds.map(() => []);
  const dir = mkdtempSync(path.join(os.tmpdir(), "joblet-bench-hf-"));
  try {
    for (let r = 0; r < rounds; r++) {
      const json = path.join(dir, `round-${r}.json`);
      const perRound = Math.ceil(runs / rounds);
      const args = ["-N", "--style", "none", "--warmup", String(r === 0 ? warmup : 1), "--runs", String(perRound), "--export-json", json, ...cmds.map((c) => c.map(shq).join(" "))];
      const res = spawnSync("hyperfine", args, { encoding: "utf8" });
      if (res.status !== 0) throw new Error(`hyperfine failed: ${res.stderr}`);
      const out = JSON.parse(readFileSync(json, "utf8")) as { results: { times: number[] }[] };
      out.results.forEach((x, i) => times[i]!.push(...x.times.map((t) => t * 1000)));
    }
    return times.map((t) => median(t));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Formats a millisecond value. */
export function ms(x: number): string {
  return `${x.toFixed(1)} ms`;
}

/** Prints one result row: name, value, and what it is compared against. */
export function row(name: string, value: string, note = ""): void {
  console.log(`  ${name.padEnd(46)} ${value.padStart(12)}  ${note}`);
}

/** A reusable bare-runc setup: a runtime root and a bundle holding a copy of a real Joblet job's spec. */
export interface RuncBundle {
  /** Directory holding config.json. */
  bundleDir: string;
  /** runc --root for the bare runs. */
  stateRoot: string;
  /** The spec (parsed config.json) of the daemon's job, to edit per run. */
  spec: Record<string, any>;
  /** cgroup parent of the bare runs, unique to this bench run (cgroupsPath = `${cgroupParent}/<id>`). */
  cgroupParent: string;
  /** Removes the bundle dir, the runtime root and the cgroup parent in every hierarchy. */
  destroy(): void;
}

/**
 * Starts a `sleep 30` job on `d`, copies its bundle's config.json (the exact spec Joblet gives a job: same
 * rootfs, mounts, namespaces, user namespace, seccomp, limits), stops the job, and returns a bundle that runs
 * the same spec under bare runc. Each bare run writes its own config.json (args, cgroupsPath) first.
 */
export async function bundleFromDaemon(d: TestDaemon): Promise<RuncBundle> {
  const r = await d.rnx(["run", "--detach", "sleep", "30"]);
  if (r.code !== 0) throw new Error(`rnx run --detach failed: ${r.stderr}`);
  const id = r.stdout.trim();
  const src = path.join(d.bundlesDir(), id, "config.json");
  let text = "";
  for (let i = 0; i < 100 && !text; i++) {
    try {
      text = readFileSync(src, "utf8");
    } catch {
      await sleep(20);
    }
  }
  if (!text) throw new Error(`no spec at ${src}`);
  await d.rnx(["stop", id]);
  const base = mkdtempSync(path.join(os.tmpdir(), "joblet-bench-runc-"));
  const bundleDir = path.join(base, "bundle");
  // runc's state where the daemon's is (d.runDir: the /dev/shm tmpfs here), as runc's default /run/runc is
  // on systemd hosts: both sides make their per-container files on the same kind of file system.
  const stateRoot = mkdtempSync(path.join(path.dirname(d.runDir), "joblet-bench-runc-state-"));
  mkdirSync(bundleDir);
  const spec = JSON.parse(text) as Record<string, any>;
  // The job's work dir stays while the finished job is kept; copy it (ownership = the mapped uid) anyway so
  // the bare runs never write into the daemon's.
  const work = spec.mounts.find((m: { destination: string }) => m.destination === "/work");
  if (work) {
    const own = path.join(base, "work");
    cpSync(work.source, own, { recursive: true, preserveTimestamps: true });
    const st = spawnSync("stat", ["-c", "%u:%g", work.source], { encoding: "utf8" }).stdout.trim();
    spawnSync("chown", [st, own]);
    work.source = own;
  }
  spec.process.terminal = false;
  const cgroupParent = `/joblet-bench-${path.basename(base).replace(/[^a-zA-Z0-9]/g, "")}`;
  return {
    bundleDir,
    stateRoot,
    spec,
    cgroupParent,
    destroy() {
      for (const c of spawnSync("runc", ["--root", stateRoot, "list", "-q"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean)) {
        spawnSync("runc", ["--root", stateRoot, "delete", "--force", c]);
      }
      for (const ctrl of readdirSync("/sys/fs/cgroup")) {
        const dir = path.join("/sys/fs/cgroup", ctrl, cgroupParent);
        spawnSync("sh", ["-c", `[ -d '${dir}' ] && find '${dir}' -depth -type d -exec rmdir {} + 2>/dev/null; true`]);
      }
      rmSync(base, { recursive: true, force: true });
      rmSync(stateRoot, { recursive: true, force: true });
    },
  };
}

/** Writes a per-run bundle `<bundleDir>-<id>` for container `id` running `args`; returns its directory. */
export function writeRunBundle(b: RuncBundle, id: string, args: string[]): string {
  const dir = `${b.bundleDir}-${id}`;
  mkdirSync(dir, { recursive: true });
  const spec = structuredClone(b.spec);
  spec.process.args = args;
  spec.linux.cgroupsPath = `${b.cgroupParent}/${id}`;
  writeFileSync(path.join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

/** The Node flags in the `#!/usr/bin/env -S node …` line of `file` (bin/joblet's, as systemd and a shell run it). */
export function shebangNodeFlags(file: string): string[] {
  const first = readFileSync(file, "utf8").split("\n", 1)[0]!;
  return (/^#!\/usr\/bin\/env -S node (.*)$/.exec(first)?.[1] ?? "").split(" ").filter(Boolean);
}

/**
 * A private cpuacct cgroup holding the daemon: everything it spawns (conmon, `runc create`) starts in it and
 * stays there (a job's own processes move to the job's cgroup), so its usage is the CPU the daemon and its
 * helpers spend. Undefined where there is no cgroup v1 cpuacct hierarchy.
 */
export function cpuacctAround(pid: number): { usageMs(): number; destroy(): void } | undefined {
  const root = "/sys/fs/cgroup/cpuacct";
  if (!existsSync(path.join(root, "cpuacct.usage"))) return undefined;
  const dir = path.join(root, `joblet-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "cgroup.procs"), String(pid));
  return {
    usageMs: () => Number(readFileSync(path.join(dir, "cpuacct.usage"), "utf8")) / 1e6,
    destroy: () => {
      // Back to the root so the directory can go; the daemon may already have exited.
      for (const p of readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
        try {
          writeFileSync(path.join(root, "cgroup.procs"), p);
        } catch {
          /* exited meanwhile */
        }
      }
      try {
        rmdirSync(dir);
      } catch {
        /* a helper still inside; the next run uses another name */
      }
    },
  };
}
