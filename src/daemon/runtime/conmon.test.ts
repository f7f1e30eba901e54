// conmon's sync-pipe line (API version 1), as the daemon reads it to learn that `runc create` finished.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSyncReply, runtimeRootDir, supervisionPaths } from "./conmon.js";

test("parseSyncReply reads the container pid, and the message of a failed create", () => {
  assert.deepEqual(parseSyncReply('{"data": 4242}'), { pid: 4242 });
  assert.deepEqual(parseSyncReply('{"data": -1, "message": "exec: \\"nope\\": executable file not found in $PATH"}'), {
    pid: -1,
    message: 'exec: "nope": executable file not found in $PATH',
  });
  assert.deepEqual(parseSyncReply('{"pid": 7}'), { pid: 7 });
});

test("parseSyncReply returns undefined for anything else", () => {
  for (const line of ["", "4242", "{}", '{"data": "x"}', "{not json"]) assert.equal(parseSyncReply(line), undefined, line);
});

test("supervisionPaths: runtime state under runDir, exit codes and logs under the state dir", () => {
  const id = "0b0e5c1e-6f4c-4d8e-9a51-2d0c1f3b7a10";
  const split = { stateDir: "/var/lib/joblet", runDir: "/run/joblet" };
  const p = supervisionPaths(split, id);
  assert.equal(p.bundleDir, `/run/joblet/run/${id}`);
  assert.equal(p.pidFile, `/run/joblet/run/${id}/pidfile`);
  assert.equal(p.conmonPidFile, `/run/joblet/run/${id}/conmon.pid`);
  assert.equal(p.socketDir, "/run/joblet/sockets");
  assert.equal(runtimeRootDir(split), "/run/joblet/runtime");
  assert.equal(p.exitDir, "/var/lib/joblet/exits");
  assert.equal(p.logPath, `/var/lib/joblet/logs/${id}.log`);
  // Without state.runDir: the layout of earlier versions, so jobs running across an upgrade are found again.
  const same = supervisionPaths({ stateDir: "/var/lib/joblet", runDir: "/var/lib/joblet" }, id);
  assert.equal(same.bundleDir, `/var/lib/joblet/run/${id}`);
  assert.equal(same.socketDir, "/var/lib/joblet/sockets");
  assert.equal(runtimeRootDir({ stateDir: "/s", runDir: "/s" }), "/s/runtime");
});
