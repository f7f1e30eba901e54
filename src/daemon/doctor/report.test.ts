import assert from "node:assert/strict";
import { test } from "node:test";
import { fail, formatBytes, ok, warn } from "./check.js";
import { formatReport } from "./report.js";

test("one aligned line per check, hints under warnings and failures, and a verdict", () => {
  const text = formatReport({
    configFile: "/etc/joblet/joblet-config.yml",
    ok: false,
    durationMs: 2345,
    checks: [
      ok("config", "config", "valid"),
      warn("cgroup.swap", "swap limit", "swap accounting is off", "boot with swapaccount=1"),
      fail("runtime", "OCI runtime", "runtime.path: \"x\" is not an executable", "install runc"),
    ],
  });
  assert.equal(
    text,
    [
      "joblet doctor: /etc/joblet/joblet-config.yml",
      "✓ config       valid",
      "! swap limit   swap accounting is off",
      "               → boot with swapaccount=1",
      '✗ OCI runtime  runtime.path: "x" is not an executable',
      "               → install runc",
      "NOT OK: jobs cannot run here with every limit enforced until the ✗ lines are fixed (3 checks, 1 failed, 1 warning, 2.3 s)",
      "",
    ].join("\n"),
  );
});

test("the verdict is OK when nothing failed, warnings included", () => {
  const text = formatReport({ configFile: "c", ok: true, durationMs: 100, checks: [ok("a", "a", "x"), warn("b", "b", "y", "z")] });
  assert.match(text, /^OK: this host can run jobs with every limit enforced \(2 checks, 0 failed, 1 warning, 0\.1 s\)$/m);
});

test("formatBytes uses binary units", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(4 * 1024 * 1024), "4.0 MiB");
  assert.equal(formatBytes(79.4 * 1024 ** 3), "79 GiB");
});
