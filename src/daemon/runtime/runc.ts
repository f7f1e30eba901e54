// A client for the OCI runtime binary (runc, or crun which takes the same verbs). Holds the global flags
// (binary, state root); each method is one runtime verb.
import { closeSync, constants, fstatSync, openSync, readSync, unlinkSync } from "node:fs";
import { Socket } from "node:net";
import path from "node:path";
import { JobletError } from "../../shared/errors.js";
import { isAlive } from "./conmon.js";
import { run, ExecError } from "./exec.js";

/** How long a created container's init may take to take the start signal from its exec FIFO, milliseconds. */
const FIFO_START_TIMEOUT_MS = 10_000;

/** Container status as `runc state` reports it. */
export type RuntimeStatus = "creating" | "created" | "running" | "paused" | "stopped";

/** Drives one OCI runtime binary with one state root. */
export class RuntimeClient {
  constructor(
    readonly binary: string,
    /** The runtime's state directory (`--root`), under the daemon's state dir. */
    readonly root: string,
  ) {}

  /**
   * Starts the user process of a created container, as `runc start` does, without running the runtime
   * binary when the container's exec FIFO is where runc and crun keep it (`<root>/<id>/exec.fifo`): the
   * created container's init blocks opening that FIFO for writing; a reader lets it write one byte and exec
   * the user process, and the FIFO's removal marks the container running (runc's `exec()` in
   * libcontainer/container_linux.go; crun's `libcrun_container_start`). Measured here, `runc start` is a
   * Go process costing ~5 ms idle and ~40 ms of CPU on the loaded 2-core host, the largest part of the
   * start path after create itself. Without that FIFO (another runtime or layout) the binary runs.
   * `initPid` (runc's pidfile) lets a dead init fail the start at once instead of after a timeout.
   */
  async start(id: string, initPid?: number): Promise<void> {
    if (await startThroughFifo(path.join(this.root, id, "exec.fifo"), id, initPid)) return;
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

/** How often a start waiting on the exec FIFO checks that the init still lives, milliseconds (runc: 100). */
const FIFO_INIT_CHECK_MS = 100;

/** Bytes read from the non-blocking FIFO `fd`; 0 when there are none yet. */
function readStartByte(fd: number, buf: Buffer): number {
  try {
    return readSync(fd, buf, 0, buf.length, null);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
    return 0;
  }
}

/**
 * Takes the start byte from a created container's exec FIFO and removes the FIFO. False when `fifo` is not
 * a FIFO (the caller then runs the runtime's own start). Throws FAILED_PRECONDITION when the init died
 * before taking the signal or did not within FIFO_START_TIMEOUT_MS.
 *
 * The wait is on the event loop's epoll, not a poll: the read end is opened non-blocking (a dead init would
 * otherwise hang the open, and with it a thread of libuv's pool, for ever) and handed to a pipe handle,
 * which reports the init's byte when it comes. A FIFO reports end-of-file only after a writer has come and
 * gone, so an init that died before opening it sends nothing: a timer checks the init every
 * FIFO_INIT_CHECK_MS, as `runc start` does. (A 1 ms poll per start cost the daemon most of a CPU with 100
 * starts in flight: each empty read throws EAGAIN.)
 */
async function startThroughFifo(fifo: string, id: string, initPid: number | undefined): Promise<boolean> {
  let fd: number;
  try {
    fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  let handedOver = false;
  try {
    if (!fstatSync(fd).isFIFO()) return false;
    const buf = Buffer.alloc(16);
    // The init may have written already (the open above let its own open through, and a quick init writes
    // at once): no handle needed then.
    if (readStartByte(fd, buf) === 0) {
      handedOver = true;
      await waitForStartByte(fd, id, initPid, buf);
    }
    unlinkSync(fifo);
    return true;
  } finally {
    if (!handedOver) closeSync(fd);
  }
}

/** Waits on `fd` (a FIFO's non-blocking read end, closed here) until the start byte arrives. */
function waitForStartByte(fd: number, id: string, initPid: number | undefined, buf: Buffer): Promise<void> {
  let pipe: Socket;
  try {
    pipe = new Socket({ fd, readable: true, writable: false });
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return new Promise<void>((resolve, reject) => {
    const finish = (err?: JobletError) => {
      clearInterval(check);
      clearTimeout(deadline);
      pipe.removeAllListeners();
      // An error after this (the fd closed under it) has nobody left to tell.
      pipe.on("error", () => undefined);
      pipe.destroy();
      if (err) reject(err);
      else resolve();
    };
    const failed = (why: string) => new JobletError("FAILED_PRECONDITION", `job ${id} could not start: ${why}`);
    const deadline = setTimeout(() => finish(failed(`its container's init did not take the start signal within ${FIFO_START_TIMEOUT_MS} ms`)), FIFO_START_TIMEOUT_MS);
    const check = setInterval(() => {
      if (initPid === undefined || isAlive(initPid)) return;
      // A short job may write the start byte, exec and exit before its data event is handled (seen with `true`
      // under load): the byte then waits in the pipe, and the job did start.
      let got = 0;
      try {
        got = readStartByte(fd, buf);
      } catch {
        got = 0;
      }
      finish(got > 0 ? undefined : failed(`its container's init process ${initPid} ended before the start`));
    }, FIFO_INIT_CHECK_MS);
    pipe.on("data", () => finish());
    // End-of-file without a byte: the init opened the FIFO and closed it (died) without writing.
    pipe.on("end", () => finish(failed(`its container's init process${initPid === undefined ? "" : ` ${initPid}`} closed its start FIFO without taking the signal`)));
    pipe.on("error", (err) => finish(failed(`reading its exec FIFO failed: ${err.message}`)));
  });
}
