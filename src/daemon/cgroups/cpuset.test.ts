import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { isJobletError } from "../../shared/errors.js";
import { formatCpuList, onlineCpus, onlineMems, parseCpuList, validateCpuCores } from "./cpuset.js";

describe("parseCpuList", () => {
  const good: [string, number[]][] = [
    ["", []],
    ["2", [2]],
    ["0-3", [0, 1, 2, 3]],
    ["1,3,5", [1, 3, 5]],
    ["0-1,4-5", [0, 1, 4, 5]],
    ["3,1,1-2", [1, 2, 3]],
    ["7-7", [7]],
    ["8191", [8191]],
  ];
  for (const [text, ids] of good) it(`parses ${JSON.stringify(text)}`, () => assert.deepEqual(parseCpuList(text), ids));

  const bad = ["0,", ",0", "0,,1", "3-1", "a", "0-", "-1", " 0", "0 ", "0\n", "1.5", "+1", "0x1", "8192", "0-99999999999"];
  for (const text of bad) it(`rejects ${JSON.stringify(text)}`, () => assert.throws(() => parseCpuList(text)));
});

describe("formatCpuList", () => {
  const cases: [number[], string][] = [
    [[], ""],
    [[0], "0"],
    [[0, 1], "0-1"],
    [[0, 1, 2, 4], "0-2,4"],
    [[5, 3, 1], "1,3,5"],
    [[4, 0, 1, 5, 1], "0-1,4-5"],
  ];
  for (const [ids, text] of cases) it(`formats ${JSON.stringify(ids)}`, () => assert.equal(formatCpuList(ids), text));
  it("round-trips with parseCpuList", () => {
    for (const text of ["0-3", "1,3,5", "0-1,4-5", "0,2-9,11"]) assert.equal(formatCpuList(parseCpuList(text)), text);
  });
});

describe("validateCpuCores", () => {
  const online = [0, 1];
  const ok: [string, string][] = [
    ["0", "0"],
    ["1", "1"],
    ["0-1", "0-1"],
    ["0,1", "0-1"],
    ["1,0,1", "0-1"],
  ];
  for (const [spec, norm] of ok) it(`accepts ${JSON.stringify(spec)} as ${norm}`, () => assert.equal(validateCpuCores(spec, online), norm));

  const bad = ["", "2", "0-2", "0,,1", "1-0", " 0", "0 ", "all", "-1", "0;1", "x".repeat(300), "0," + "0,".repeat(200) + "0", "0-9000"];
  for (const spec of bad) {
    it(`rejects ${JSON.stringify(spec.slice(0, 30))}`, () => {
      assert.throws(
        () => validateCpuCores(spec, online),
        (err: unknown) => {
          assert.ok(isJobletError(err, "INVALID_ARGUMENT"));
          assert.match(err.message, /^cpuCores: /);
          assert.match(err.message, /online CPUs 0-1/);
          assert.ok(err.message.includes(JSON.stringify(spec).slice(0, 50)), err.message);
          assert.ok(err.hint, "a hint says what is wrong");
          return true;
        },
      );
    });
  }
  it("names the offline CPU in the hint", () => {
    assert.throws(() => validateCpuCores("0,3-4", online), (err: unknown) => isJobletError(err) && /CPU 3-4 not online/.test(err.hint ?? ""));
  });
});

describe("onlineCpus / onlineMems", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "cpuset-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads a fake sysfs", () => {
    mkdirSync(path.join(dir, "devices/system/cpu"), { recursive: true });
    mkdirSync(path.join(dir, "devices/system/node"), { recursive: true });
    writeFileSync(path.join(dir, "devices/system/cpu/online"), "0-3,6\n");
    writeFileSync(path.join(dir, "devices/system/node/online"), "0-1\n");
    assert.deepEqual(onlineCpus(dir), [0, 1, 2, 3, 6]);
    assert.deepEqual(onlineMems(dir), [0, 1]);
  });

  it("defaults memory nodes to [0] when the node directory is absent", () => {
    const empty = mkdtempSync(path.join(dir, "nonuma-"));
    assert.deepEqual(onlineMems(empty), [0]);
    assert.throws(() => onlineCpus(empty));
  });

  it("reads this machine's /sys", () => {
    const cpus = onlineCpus();
    assert.ok(cpus.length >= 1 && cpus[0] === 0, `online CPUs: ${cpus}`);
    assert.ok(onlineMems().includes(0));
    assert.equal(validateCpuCores("0", cpus), "0");
  });
});
