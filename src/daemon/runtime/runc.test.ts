// RuntimeClient.start takes a created container's start signal from its exec FIFO, the way `runc start` does,
// and runs the runtime binary only when there is no such FIFO. A shell stands in for the container's init.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { JobletError } from "../../shared/errors.js";
import { ExecError } from "./exec.js";
import { RuntimeClient } from "./runc.js";

let root: string;

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), "runc-client-test-"));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Makes `<root>/<id>/exec.fifo` as runc create leaves it; returns its path. */
function makeFifo(id: string): string {
  mkdirSync(path.join(root, id));
  const fifo = path.join(root, id, "exec.fifo");
  execFileSync("mkfifo", ["-m", "0622", fifo]);
  return fifo;
}

test("start lets a waiting init go through its exec FIFO, removes the FIFO and runs no runtime binary", async () => {
  const fifo = makeFifo("c1");
  const marker = path.join(root, "went-on");
  // Like runc init: blocks opening the FIFO for writing, writes "0", then goes on (here: writes a marker).
  const init = spawn("sh", ["-c", `printf 0 > '${fifo}' && echo yes > '${marker}'`], { stdio: "ignore" });
  const exited = new Promise<number | null>((resolve) => init.once("exit", resolve));
  // /bin/false as the runtime: running it would fail the start.
  await new RuntimeClient("/bin/false", root).start("c1", init.pid);
  assert.equal(await exited, 0);
  assert.equal(readFileSync(marker, "utf8"), "yes\n");
  assert.equal(existsSync(fifo), false, "the FIFO's removal marks the container running");
});

test("start waits for an init that opens the FIFO late, without polling it", async () => {
  const fifo = makeFifo("c5");
  // The init reaches the FIFO 300 ms after the start began: the start byte arrives through the event loop.
  const init = spawn("sh", ["-c", `sleep 0.3 && printf 0 > '${fifo}'`], { stdio: "ignore" });
  const exited = new Promise<number | null>((resolve) => init.once("exit", resolve));
  const t0 = Date.now();
  await new RuntimeClient("/bin/false", root).start("c5", init.pid);
  assert.ok(Date.now() - t0 >= 250, "it waited for the init");
  assert.equal(await exited, 0);
  assert.equal(existsSync(fifo), false);
});

test("start fails, naming the job, when the init opens the FIFO and closes it without the signal", async () => {
  const fifo = makeFifo("c6");
  // Opens the FIFO for writing and closes it at once, then lingers: end-of-file, not the liveness check.
  const init = spawn("sh", ["-c", `: > '${fifo}'; sleep 5`], { stdio: "ignore" });
  try {
    await assert.rejects(new RuntimeClient("/bin/false", root).start("c6", init.pid), (err: unknown) => {
      assert.ok(err instanceof JobletError);
      assert.equal(err.code, "FAILED_PRECONDITION");
      assert.match(err.message, /job c6 could not start: .*closed its start FIFO without taking the signal/);
      return true;
    });
  } finally {
    init.kill("SIGKILL");
  }
});

test("start fails at once, naming the job, when the init died before taking the signal", async () => {
  makeFifo("c2");
  const dead = spawn("true");
  await new Promise((resolve) => dead.once("exit", resolve));
  const t0 = Date.now();
  await assert.rejects(new RuntimeClient("/bin/false", root).start("c2", dead.pid), (err: unknown) => {
    assert.ok(err instanceof JobletError);
    assert.equal(err.code, "FAILED_PRECONDITION");
    assert.match(err.message, /job c2 could not start: .*init process \d+ ended before the start/);
    return true;
  });
  assert.ok(Date.now() - t0 < 2_000, "no waiting for the timeout");
});

test("start runs the runtime binary when the container has no exec FIFO (or it is not a FIFO)", async () => {
  await assert.rejects(new RuntimeClient("/bin/false", root).start("c3"), (err: unknown) => {
    assert.ok(err instanceof ExecError);
    assert.match(err.command, /^\/bin\/false --root .* start c3$/);
    return true;
  });
  mkdirSync(path.join(root, "c4"));
  writeFileSync(path.join(root, "c4", "exec.fifo"), "0");
  await new RuntimeClient("/bin/true", root).start("c4");
  assert.equal(existsSync(path.join(root, "c4", "exec.fifo")), true, "a regular file is left alone");
});
