// The upload session: limits checked before any byte, exactly one ending (complete or fail), a quiet client
// abandoned, and every call refused once the session has ended.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { parseDaemonConfig } from "../../shared/config/daemon.js";
import { JobletError } from "../../shared/errors.js";
import type { JobRecord, JobUpload } from "../store/record.js";
import { checkDeclaredUpload, UPLOAD_DISK_RESERVE_BYTES, UploadSession } from "./upload-session.js";

const PEM_CERT = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n";
const MiB = 1024 * 1024;

function config(extra: Record<string, unknown> = {}) {
  return parseDaemonConfig({ version: "3.0", security: { serverCert: PEM_CERT, serverKey: PEM_KEY, caCert: PEM_CERT }, ...extra }, "joblet-config.yml");
}

function refusal(fn: () => void): JobletError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof JobletError, String(err));
    return err;
  }
  assert.fail("expected a refusal");
}

test("declared totals: within every limit passes; the limits are inclusive", () => {
  const c = config({ uploads: { maxTotalMB: 2, maxEntries: 3 } });
  checkDeclaredUpload({ bytes: 2 * MiB, entries: 3 }, c, 10 * 1024 * MiB);
  checkDeclaredUpload({ bytes: 0, entries: 0 }, c, 10 * 1024 * MiB);
});

test("declared totals: each refusal names the setting and the sizes", () => {
  const c = config({ uploads: { maxTotalMB: 2, maxEntries: 3 }, filesystem: { workSizeMB: 1 } });
  const free = 10 * 1024 * MiB;
  let e = refusal(() => checkDeclaredUpload({ bytes: 2 * MiB + 1, entries: 1 }, c, free));
  assert.equal(e.code, "RESOURCE_EXHAUSTED");
  assert.match(e.message, /uploads\.maxTotalMB = 2 \(2\.0 MiB\)/);
  assert.match(e.message, /2\.0 MiB in 1 entries/);
  e = refusal(() => checkDeclaredUpload({ bytes: 1, entries: 4 }, c, free));
  assert.match(e.message, /uploads\.maxEntries = 3/);
  e = refusal(() => checkDeclaredUpload({ bytes: MiB + 1, entries: 1 }, c, free));
  assert.match(e.message, /filesystem\.workSizeMB = 1/);
  e = refusal(() => checkDeclaredUpload({ bytes: MiB, entries: 1 }, c, MiB + UPLOAD_DISK_RESERVE_BYTES - 1));
  assert.match(e.message, /does not fit on the server's disk/);
  e = refusal(() => checkDeclaredUpload({ bytes: -1, entries: 1 }, c, free));
  assert.equal(e.code, "INVALID_ARGUMENT");
  assert.match(e.message, /header\.totalBytes/);
  e = refusal(() => checkDeclaredUpload({ bytes: 1, entries: 1.5 }, c, free));
  assert.match(e.message, /header\.totalEntries/);
});

test("declared totals: uploads switched off (0) are refused as such", () => {
  const e = refusal(() => checkDeclaredUpload({ bytes: 0, entries: 0 }, config({ uploads: { maxTotalMB: 0 } }), 10 * 1024 * MiB));
  assert.equal(e.code, "FAILED_PRECONDITION");
  assert.match(e.message, /does not accept uploads/);
});

const tmp = mkdtempSync(path.join(os.tmpdir(), "upload-session-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/** A session over a new empty dir whose hooks record what happened. */
function session(declared: { bytes: number; entries: number }, idleMs = 60_000) {
  const dir = path.join(tmp, String(n++));
  mkdirSync(dir);
  const events: string[] = [];
  const s = new UploadSession(
    "job-1",
    dir,
    declared,
    undefined,
    {
      complete: async (upload: JobUpload) => {
        events.push(`complete ${upload.files} ${upload.bytes}`);
        return { id: "job-1" } as JobRecord;
      },
      fail: (reason: string) => {
        events.push(`fail ${reason}`);
      },
    },
    idleMs,
  );
  return { s, dir, events };
}

test("a whole upload completes once and starts the job with its totals", async () => {
  const { s, dir, events } = session({ bytes: 5, entries: 1 });
  await s.entry({ path: "a.txt", kind: "file", mode: 0o644, size: 5, linkTarget: "" });
  await s.data(Buffer.from("hel"));
  await s.data(Buffer.from("lo"));
  const job = await s.complete();
  assert.equal(job.id, "job-1");
  assert.deepEqual(events, ["complete 1 5"]);
  assert.equal(readFileSync(path.join(dir, "a.txt"), "utf8"), "hello");
  await s.settled;
  await s.fail("late");
  assert.deepEqual(events, ["complete 1 5"], "a failure after completion changes nothing");
});

test("a bad entry fails the session once, with the writer's reason; later calls are refused", async () => {
  const { s, events } = session({ bytes: 1, entries: 2 });
  await assert.rejects(s.entry({ path: "../x", kind: "file", mode: 0o644, size: 1, linkTarget: "" }), /path/);
  await s.settled;
  assert.equal(events.length, 1);
  assert.match(events[0]!, /^fail upload refused: .*path/);
  await assert.rejects(s.data(Buffer.from("x")), /has ended/);
  await assert.rejects(s.complete(), /has ended/);
  await s.fail("again");
  assert.equal(events.length, 1);
});

test("an upload short of its declared bytes does not complete", async () => {
  const { s, events } = session({ bytes: 5, entries: 1 });
  await s.entry({ path: "a", kind: "file", mode: 0o644, size: 5, linkTarget: "" });
  await s.data(Buffer.from("he"));
  await assert.rejects(s.complete());
  assert.equal(events.length, 1);
  assert.match(events[0]!, /^fail /);
});

test("a cancel (a stop) waits for the step in progress and ends the session with its reason", async () => {
  const { s, events } = session({ bytes: 4 * MiB, entries: 1 });
  await s.entry({ path: "big", kind: "file", mode: 0o644, size: 4 * MiB, linkTarget: "" });
  const writing = s.data(Buffer.alloc(4 * MiB));
  s.cancel("stopped by admin during its upload");
  await writing;
  await s.settled;
  assert.deepEqual(events, ["fail stopped by admin during its upload"]);
  assert.equal(s.failure, "stopped by admin during its upload");
});

test("a client that sends nothing for the idle time loses its upload", async () => {
  const { s, events } = session({ bytes: 1, entries: 1 }, 50);
  // The session's timer does not hold the process open (unref): this one does, for the test.
  const keepAlive = setTimeout(() => undefined, 5_000);
  await s.settled;
  clearTimeout(keepAlive);
  assert.equal(events.length, 1);
  assert.match(events[0]!, /nothing received from the client for 0\.05 s/);
});
