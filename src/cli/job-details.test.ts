import assert from "node:assert/strict";
import { test } from "node:test";
import { formatUploadSummary, renderJobDetails } from "./job-details.js";
import { fakeJob } from "./test-support/fake-daemon.js";

test("the upload summary: counts with plurals, no empty kinds, the first names, control characters made harmless", () => {
  assert.equal(
    formatUploadSummary({ files: 12, directories: 3, symlinks: 1, bytes: 4300, roots: ["script.py", "tests"] }),
    "12 files, 3 dirs, 1 symlink, 4.2 KiB: script.py, tests",
  );
  assert.equal(formatUploadSummary({ files: 1, directories: 0, symlinks: 0, bytes: 9, roots: ["x.py"] }), "1 file, 9 B: x.py");
  assert.equal(formatUploadSummary({ files: 0, directories: 1, symlinks: 2, bytes: 0, roots: ["d"] }), "0 files, 1 dir, 2 symlinks, 0 B: d");
  assert.equal(formatUploadSummary({ files: 0, directories: 0, symlinks: 0, bytes: 0, roots: [] }), "0 files, 0 B");
  assert.equal(
    formatUploadSummary({ files: 7, directories: 0, symlinks: 0, bytes: 7, roots: ["a", "b", "c", "d", "e\u001b[2J", "f", "g"] }),
    "7 files, 7 B: a, b, c, d, e [2J, +2 more",
  );
});

test("rnx status shows the upload line, '-' when nothing was uploaded", () => {
  const opts = { color: false, nowMs: 0 };
  assert.match(renderJobDetails(fakeJob(), opts), /^Uploaded: +-$/m);
  const job = fakeJob({ upload: { files: 2, directories: 1, symlinks: 0, bytes: 2048, roots: ["tests"] } });
  assert.match(renderJobDetails(job, opts), /^Uploaded: +2 files, 1 dir, 2\.0 KiB: tests$/m);
});
