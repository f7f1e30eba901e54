// Runs rnx as a child process (`node --import tsx src/cli/main.ts …`) so tests see the real exit code and
// the real separation of stdout and stderr.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "main.ts");
const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** tsx's loader as a URL, so the child finds it whatever its working directory. */
const TSX = import.meta.resolve("tsx");

/** What a finished rnx process left. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Options for `rnxProcess`. */
export interface RnxProcessOptions {
  /** Extra environment; RNX_CONFIG, JOBLET_SERVER and NO_COLOR are cleared unless given here. */
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the child after this long, milliseconds. */
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

/** Starts rnx with `args`; `done` resolves when it exits. */
export function rnxProcess(args: readonly string[], opts: RnxProcessOptions = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const env: NodeJS.ProcessEnv = { ...process.env, RNX_CONFIG: undefined, JOBLET_SERVER: undefined, NO_COLOR: undefined, ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const child = spawn(process.execPath, ["--import", TSX, MAIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on("data", (b: Buffer) => out.push(b));
  child.stderr!.on("data", (b: Buffer) => err.push(b));
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
  const done = new Promise<CliResult>((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8") });
    }),
  );
  return { child, done };
}

/** Runs rnx with `args` to completion. */
export function rnx(args: readonly string[], opts: RnxProcessOptions = {}): Promise<CliResult> {
  return rnxProcess(args, opts).done;
}
