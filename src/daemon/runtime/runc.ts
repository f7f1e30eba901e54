// A client for the OCI runtime binary (runc, or crun which takes the same verbs). Holds the global flags
// (binary, state root); each method is one runtime verb.
import { run, ExecError } from "./exec.js";

/** Container status as `runc state` reports it. */
export type RuntimeStatus = "creating" | "created" | "running" | "paused" | "stopped";

/** Drives one OCI runtime binary with one state root. */
export class RuntimeClient {
  constructor(
    readonly binary: string,
    /** The runtime's state directory (`--root`), under the daemon's state dir. */
    readonly root: string,
  ) {}

  /** Starts the user process of a created container (`runc start`). */
  async start(id: string): Promise<void> {
    await run(this.binary, ["--root", this.root, "start", id]);
  }

  /**
   * Sends `signal` to the container. With `all`, every process in the container's cgroup gets it: PID 1 of a
   * PID namespace ignores signals it has no handler for, so a polite stop must reach the whole tree.
   */
  async kill(id: string, signal: "TERM" | "KILL", all = true): Promise<void> {
    await run(this.binary, ["--root", this.root, "kill", ...(all ? ["--all"] : []), id, signal]);
  }

  /** Removes the container's runtime state and cgroup; `force` kills it first if it still runs. */
  async delete(id: string, force = false): Promise<void> {
    try {
      await run(this.binary, ["--root", this.root, "delete", ...(force ? ["--force"] : []), id]);
    } catch (err) {
      if (err instanceof ExecError && /does not exist|not found/.test(err.stderr)) return;
      throw err;
    }
  }

  /** The container's status, or undefined when the runtime does not know it. */
  async state(id: string): Promise<{ status: RuntimeStatus; pid: number } | undefined> {
    try {
      const { stdout } = await run(this.binary, ["--root", this.root, "state", id]);
      const s = JSON.parse(stdout) as { status: RuntimeStatus; pid: number };
      return { status: s.status, pid: s.pid };
    } catch (err) {
      if (err instanceof ExecError && /does not exist|not found/.test(err.stderr)) return undefined;
      throw err;
    }
  }
}
