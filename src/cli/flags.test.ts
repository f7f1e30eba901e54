import assert from "node:assert/strict";
import { test } from "node:test";
import { isJobletError } from "../shared/errors.js";
import { parseCpuList, parseRunLimits } from "./flags.js";

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isJobletError(err, "INVALID_ARGUMENT"), String(err));
    return err.message;
  }
  assert.fail("expected INVALID_ARGUMENT");
}

test("absent flags are 0 and an empty CPU list", () => {
  assert.deepEqual(parseRunLimits({}), { maxCPU: 0, maxMemory: 0, maxIOBPS: 0, cpuCores: "" });
});

test("valid values become the request's fields", () => {
  assert.deepEqual(parseRunLimits({ maxCpu: "150", maxMemory: "512", maxIobps: "10485760", cpuCores: "0-1,4-5" }), {
    maxCPU: 150,
    maxMemory: 512,
    maxIOBPS: 10485760,
    cpuCores: "0-1,4-5",
  });
  assert.equal(parseRunLimits({ maxCpu: "0" }).maxCPU, 0);
  assert.equal(parseRunLimits({ maxCpu: "2147483647" }).maxCPU, 2147483647);
});

test("each bad value is refused naming the flag, the expected form and the value given", () => {
  assert.equal(
    refusal(() => parseRunLimits({ maxCpu: "abc" })),
    '--max-cpu: expected a whole percent of one CPU, 0 or more (100 = one CPU, 150 = one and a half), got "abc"',
  );
  for (const [raw, flag, given] of [
    [{ maxCpu: "-5" }, "--max-cpu", '"-5"'],
    [{ maxCpu: "1.5" }, "--max-cpu", '"1.5"'],
    [{ maxCpu: "50%" }, "--max-cpu", '"50%"'],
    [{ maxCpu: "" }, "--max-cpu", '""'],
    [{ maxMemory: "512MB" }, "--max-memory", '"512MB"'],
    [{ maxMemory: "1e3" }, "--max-memory", '"1e3"'],
    [{ maxIobps: "0x10" }, "--max-iobps", '"0x10"'],
    [{ cpuCores: "a-b" }, "--cpu-cores", '"a-b"'],
  ] as const) {
    const msg = refusal(() => parseRunLimits(raw));
    assert.ok(msg.startsWith(`${flag}: expected `), msg);
    assert.ok(msg.endsWith(`got ${given}`), msg);
  }
});

test("values beyond int32 are refused, not wrapped", () => {
  assert.match(refusal(() => parseRunLimits({ maxMemory: "2147483648" })), /^--max-memory: expected .*at most 2147483647, got "2147483648"$/);
  assert.match(refusal(() => parseRunLimits({ maxIobps: "99999999999999999999" })), /^--max-iobps: /);
});

test("CPU lists: the forms the issue names, spaces removed, ranges low to high", () => {
  for (const ok of ["2", "0-3", "1,3,5", "0-1,4-5", "7-7"]) assert.equal(parseCpuList("--cpu-cores", ok), ok);
  assert.equal(parseCpuList("--cpu-cores", " 0 - 1 , 3 "), "0-1,3");
  for (const bad of ["", ",", "1,", "-1", "1-", "1--2", "1-2-3", "x", "1;2", "0-4096"]) {
    assert.match(refusal(() => parseCpuList("--cpu-cores", bad)), /^--cpu-cores: expected a CPU list such as "2", "0-3", "1,3,5" or "0-1,4-5"/, bad);
  }
  assert.match(refusal(() => parseCpuList("--cpu-cores", "3-1")), /range runs from low to high\), got "3-1"$/);
});
