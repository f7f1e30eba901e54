// conmon's sync-pipe line (API version 1), as the daemon reads it to learn that `runc create` finished.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSyncReply } from "./conmon.js";

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
