import assert from "node:assert/strict";
import { test } from "node:test";
import { isJobletError } from "../shared/errors.js";
import { parseEnvFlags, parseNetwork, parseRunOptions, parseTimeoutMs, parseWorkdir } from "./run-options.js";

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isJobletError(err, "INVALID_ARGUMENT"), String(err));
    return err.message;
  }
  assert.fail("expected INVALID_ARGUMENT");
}

test("no options: every field at its 'server default' value", () => {
  assert.deepEqual(parseRunOptions({}, {}), {
    maxCPU: 0,
    maxMemory: 0,
    maxIOBPS: 0,
    cpuCores: "",
    timeoutMs: 0,
    env: [],
    workdir: "",
    network: "",
  });
});

test("every option together becomes the request's fields", () => {
  const opts = parseRunOptions(
    { maxCpu: "50", timeout: "5m", env: ["A=1", "HOME", "B=x=y"], workdir: "src/app/", network: "NONE" },
    { HOME: "/home/me" },
  );
  assert.deepEqual(opts, {
    maxCPU: 50,
    maxMemory: 0,
    maxIOBPS: 0,
    cpuCores: "",
    timeoutMs: 300_000,
    env: ["A=1", "HOME=/home/me", "B=x=y"],
    workdir: "src/app",
    network: "none",
  });
});

test("--timeout: units, bare seconds, 0 for the server's default", () => {
  for (const [text, ms] of [
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["500ms", 500],
    ["2d", 172_800_000],
    ["1.5m", 90_000],
    ["45", 45_000],
    [" 10s ", 10_000],
    ["0", 0],
    ["0s", 0],
    ["2147483647ms", 2_147_483_647],
  ] as const) {
    assert.equal(parseTimeoutMs("--timeout", text), ms, text);
  }
});

test("--timeout: bad values are refused naming the flag, the forms and the value", () => {
  assert.equal(
    refusal(() => parseTimeoutMs("--timeout", "5 minutes")),
    '--timeout: expected a duration such as "30s", "5m", "1h", "500ms" or "2d", or a whole number of seconds, got "5 minutes"',
  );
  for (const bad of ["", "-5", "5x", "1e3", "s", "1.5", "1h30m", "30S"]) {
    assert.match(refusal(() => parseTimeoutMs("--timeout", bad)), /^--timeout: expected a duration such as "30s"/, bad);
  }
  assert.match(refusal(() => parseTimeoutMs("--timeout", "25d")), /at most 2147483647ms \(about 24\.8 days\), got "25d"$/);
  assert.match(refusal(() => parseTimeoutMs("--timeout", "2147484")), /at most 2147483647ms/);
  assert.match(refusal(() => parseTimeoutMs("--timeout", "0.1ms")), /at least 1ms, got "0\.1ms"$/);
});

test("-e/--env: KEY=VALUE kept as given, KEY alone copied from rnx's environment or left out", () => {
  assert.deepEqual(parseEnvFlags("--env", ["A=1", "EMPTY=", "URL=a=b&c", "PATH", "UNSET", "_x9=ü"], { PATH: "/usr/bin" }), [
    "A=1",
    "EMPTY=",
    "URL=a=b&c",
    "PATH=/usr/bin",
    "_x9=ü",
  ]);
  // An inherited empty value is still a value.
  assert.deepEqual(parseEnvFlags("--env", ["E"], { E: "" }), ["E="]);
});

test("-e/--env: bad keys are refused naming the flag, the form and the value", () => {
  assert.equal(
    refusal(() => parseEnvFlags("--env", ["1A=x"], {})),
    "--env: expected KEY=VALUE (or KEY to pass on rnx's own $KEY), KEY made of letters, digits and _, not starting with a digit, got \"1A=x\"",
  );
  for (const bad of ["=x", "", "A-B=1", "A B=1", "ÄB=1", "A.B"]) {
    assert.match(refusal(() => parseEnvFlags("--env", ["OK=1", bad], {})), /^--env: expected KEY=VALUE/, bad);
  }
  assert.match(refusal(() => parseEnvFlags("--env", ["A=x\0y"], {})), /without NUL bytes/);
  assert.match(refusal(() => parseEnvFlags("--env", Array.from({ length: 1025 }, (_, i) => `K${i}=v`), {})), /at most 1024 variables, got "1025 variables"/);
  assert.match(refusal(() => parseEnvFlags("--env", [`BIG=${"x".repeat(256 * 1024)}`], {})), /at most 262144 bytes of KEY=VALUE in all/);
});

test("--workdir: relative to /work, an absolute path under /work made relative", () => {
  for (const [text, dir] of [
    ["src", "src"],
    ["src/app", "src/app"],
    ["src/app///", "src/app"],
    ["/work/src/app", "src/app"],
    ["/work", ""],
    ["/work/", ""],
    ["", ""],
    ["a..b/.c", "a..b/.c"],
  ] as const) {
    assert.equal(parseWorkdir("--workdir", text), dir, text);
  }
});

test("--workdir: paths leaving /work or with empty, . or .. parts are refused", () => {
  assert.equal(
    refusal(() => parseWorkdir("--workdir", "../etc")),
    '--workdir: expected a directory relative to /work such as "src/app" (or "/work/src/app"), without "." or ".." parts, got "../etc"',
  );
  for (const bad of ["/", "/etc", "/workspace", "/work/../etc", "a/../b", "./a", "a/.", "a//b", "/work//a", ".", ".."]) {
    assert.match(refusal(() => parseWorkdir("--workdir", bad)), /^--workdir: expected a directory relative to \/work/, bad);
  }
  assert.match(refusal(() => parseWorkdir("--workdir", "a".repeat(1025))), /at most 1024 bytes/);
  assert.match(refusal(() => parseWorkdir("--workdir", `a/${"b".repeat(256)}`)), /each directory name at most 255 bytes \(the kernel's NAME_MAX\)/);
  assert.equal(parseWorkdir("--workdir", `a/${"b".repeat(255)}`), `a/${"b".repeat(255)}`);
});

test("--network: host or none, any case; anything else refused", () => {
  assert.equal(parseNetwork("--network", "host"), "host");
  assert.equal(parseNetwork("--network", "None"), "none");
  assert.equal(refusal(() => parseNetwork("--network", "bridge")), '--network: expected "host" (the host\'s network) or "none" (loopback only), got "bridge"');
  assert.match(refusal(() => parseNetwork("--network", "")), /got ""$/);
});

test("the first bad option is reported even when the limits are fine", () => {
  assert.match(refusal(() => parseRunOptions({ maxCpu: "50", network: "off" }, {})), /^--network: /);
  assert.match(refusal(() => parseRunOptions({ maxCpu: "x", network: "off" }, {})), /^--max-cpu: /);
});
