import assert from "node:assert/strict";
import { test } from "node:test";
import { JOB_TRAILER_MAX_BYTES, decodeJobTrailer, encodeJobTrailer } from "./job-trailer.js";
import { GetJobStatusRes } from "./proto/joblet.js";

const job = (over: Partial<GetJobStatusRes> = {}): GetJobStatusRes => ({
  ...GetJobStatusRes.fromPartial({ id: "0d5c6f3a-1111-4222-8333-444455556666", command: "sh", args: ["-c", "exit 3"], status: "FAILED", exitCode: 3 }),
  ...over,
});

test("a job's record goes through the trailer as HTTP/2 delivers it: base64, padded or not", () => {
  const bytes = encodeJobTrailer(job({ signal: "SIGKILL", oomKilled: true, reason: "killed by the kernel's OOM killer" }))!;
  const b64 = bytes.toString("base64");
  for (const text of [b64, b64.replace(/=+$/, ""), [b64]]) {
    assert.deepEqual(decodeJobTrailer(text), job({ signal: "SIGKILL", oomKilled: true, reason: "killed by the kernel's OOM killer" }));
  }
});

test("a record over the size cap is not sent as a trailer; a missing or undecodable value gives nothing", () => {
  assert.equal(encodeJobTrailer(job({ args: ["x".repeat(JOB_TRAILER_MAX_BYTES)] })), undefined);
  assert.ok(encodeJobTrailer(job({ args: ["x".repeat(JOB_TRAILER_MAX_BYTES - 200)] })));
  assert.equal(decodeJobTrailer(undefined), undefined);
  assert.equal(decodeJobTrailer(""), undefined);
  // Field 1 (id, a string) claiming 100 bytes that are not there.
  assert.equal(decodeJobTrailer(Buffer.from([0x0a, 100, 0x41]).toString("base64")), undefined);
});
