import assert from "node:assert/strict";
import { test } from "node:test";
import { cutToWidth, displayWidth, formatBytes, formatDurationMs, jobDurationMs, shellJoin, shortId } from "./format.js";
import { outputWidth, useColor } from "./io.js";
import { renderJobTable, sortJobs } from "./job-table.js";
import { plainTable } from "./table.js";
import { fakeJob } from "./test-support/fake-daemon.js";

test("durations", () => {
  assert.equal(formatDurationMs(850), "850ms");
  assert.equal(formatDurationMs(12_345), "12.3s");
  assert.equal(formatDurationMs(245_000), "4m05s");
  assert.equal(formatDurationMs(2 * 3_600_000 + 7 * 60_000), "2h07m");
  assert.equal(formatDurationMs(3 * 86_400_000 + 4 * 3_600_000), "3d04h");
  assert.equal(jobDurationMs("", "", 0), undefined);
  assert.equal(jobDurationMs("2025-01-01T00:00:00Z", "2025-01-01T00:00:01.5Z", 0), 1500);
  assert.equal(jobDurationMs("2025-01-01T00:00:00Z", "", Date.parse("2025-01-01T00:01:00Z")), 60_000);
});

test("sizes, IDs, command lines", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(64 * 1024 ** 3), "64.0 GiB");
  assert.equal(shortId("0d5c6f3a-1111-4222"), "0d5c6f3a");
  assert.equal(shellJoin(["sh", "-c", "echo 'hi' && ls"]), `sh -c 'echo '\\''hi'\\'' && ls'`);
  assert.equal(shellJoin(["ls", "-la", "/tmp/a.b"]), "ls -la /tmp/a.b");
  assert.equal(shellJoin(["echo", ""]), "echo ''");
});

test("cutting to a width never exceeds it and marks the cut", () => {
  assert.equal(cutToWidth("abcdef", 10), "abcdef");
  assert.equal(cutToWidth("abcdef", 4), "abc…");
  assert.equal(cutToWidth("a\nb\tc", 10), "a b c");
});

test("colour only on a terminal without NO_COLOR; width from the terminal or $COLUMNS", () => {
  const tty = { isTTY: true, columns: 100 } as unknown as NodeJS.WriteStream;
  const pipe = {} as unknown as NodeJS.WriteStream;
  assert.equal(useColor(tty, {}), true);
  assert.equal(useColor(tty, { NO_COLOR: "1" }), false);
  assert.equal(useColor(tty, { TERM: "dumb" }), false);
  assert.equal(useColor(pipe, {}), false);
  assert.equal(outputWidth(tty, { COLUMNS: "50" }), 100);
  assert.equal(outputWidth(pipe, { COLUMNS: "50" }), 50);
  assert.equal(outputWidth(pipe, {}), undefined);
});

test("the list table fits the width by cutting COMMAND, and has no escapes without colour", () => {
  const jobs = [fakeJob({ command: "python3", args: ["-c", "x".repeat(200)] }), fakeJob({ id: "ffffffff-2", status: "COMPLETED", endTime: "2025-01-02T03:04:06Z" })];
  const nowMs = Date.parse("2025-01-02T03:05:05Z");
  const text = renderJobTable(jobs, { width: 80, color: false, nowMs });
  const lines = text.trimEnd().split("\n");
  assert.equal(lines.length, 3);
  for (const l of lines) assert.ok(l.length <= 80, `${l.length}: ${l}`);
  assert.match(lines[1]!, /^0d5c6f3a +RUNNING +\S+ \S+ +1m00s +python3 -c x+…$/);
  assert.match(lines[2]!, /^ffffffff +COMPLETED +\S+ \S+ +1\.0s +echo hi$/);
  assert.ok(!text.includes("\u001b"));
  const wide = renderJobTable(jobs, { color: false, nowMs });
  assert.ok(wide.includes("x".repeat(200)), "no width: never cut");
  const colored = renderJobTable(jobs, { width: 80, color: true, nowMs });
  assert.ok(colored.includes("\u001b[36mRUNNING\u001b[39m"));
});

test("display width: colour escapes 0, combining marks 0, CJK and emoji 2 columns", () => {
  assert.equal(displayWidth("abc"), 3);
  assert.equal(displayWidth("\u001b[36mRUNNING\u001b[39m"), 7);
  assert.equal(displayWidth("日本語"), 6);
  assert.equal(displayWidth("e\u0301"), 1);
  assert.equal(displayWidth("🚀 go"), 5);
  assert.equal(displayWidth("ｘ"), 2, "fullwidth form");
  assert.equal(cutToWidth("日本語テキスト", 7), "日本語…");
  assert.ok(displayWidth(cutToWidth("日本語テキスト", 6)) <= 6);
});

test("plain tables: columns aligned by display width, colour escapes not counted, header bold only with colour", () => {
  const text = plainTable(["NAME", "VALUE"], [["日本", "x"], ["\u001b[31mred\u001b[39m", "y"], ["ab", ""]], false);
  assert.equal(text, "NAME   VALUE\n日本   x\n\u001b[31mred\u001b[39m    y\nab\n");
  assert.equal(plainTable(["A", "B"], [["1", "2"]], true), "\u001b[1mA\u001b[22m   \u001b[1mB\u001b[22m\n1   2\n");
});

test("a job whose command line holds newlines or escapes stays on one row, piped or not", () => {
  const jobs = [fakeJob({ command: "sh", args: ["-c", "echo a\necho b\u001b[2J"] }), fakeJob({ id: "ffffffff-2" })];
  const nowMs = Date.parse("2025-01-02T03:05:05Z");
  for (const width of [undefined, 200]) {
    const lines = renderJobTable(jobs, { width, color: false, nowMs }).trimEnd().split("\n");
    assert.equal(lines.length, 3, String(width));
    assert.match(lines[1]!, /sh -c 'echo a echo b \[2J'$/);
  }
});

test("rendering a 2000-job list takes well under a second (cli-table3 took 150 ms for 100)", () => {
  const jobs = Array.from({ length: 2000 }, (_, i) => fakeJob({ id: `${String(i).padStart(8, "0")}-x`, args: [`${i}`] }));
  const start = performance.now();
  const text = renderJobTable(jobs, { width: 120, color: true, nowMs: Date.parse("2025-01-02T03:05:05Z") });
  const ms = performance.now() - start;
  assert.equal(text.trimEnd().split("\n").length, 2001);
  assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
});

test("sortJobs: oldest first by creation (else start) time, then ID; input already in order comes back as it was", () => {
  const row = (id: string, createTime: string, startTime = "") => ({ id, status: "COMPLETED", command: "true", args: [], startTime, endTime: "", createTime });
  const a = row("a", "2025-01-02T03:04:05Z");
  const b = row("b", "2025-01-02T03:04:05Z");
  const c = row("c", "", "2025-01-02T03:04:06.5+00:00");
  const d = row("d", "2025-01-02T04:00:00+01:00"); // 03:00Z: the oldest
  assert.deepEqual(sortJobs([c, b, a, d]).map((j) => j.id), ["d", "a", "b", "c"]);
  const inOrder = [d, a, b, c];
  const sorted = sortJobs(inOrder);
  assert.deepEqual(sorted, inOrder);
  assert.notEqual(sorted, inOrder, "a new array");
});
