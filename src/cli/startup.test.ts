// rnx is run in loops: `--version` must not load the command parser, `--help` not the gRPC stack or the
// table renderer. Checked in real child processes with a preload that reports the CommonJS packages loaded.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

function loadedBy(args: string[]): { loaded: string[]; stdout: string; status: number | null } {
  const r = spawnSync(
    process.execPath,
    ["--require", path.join(here, "test-support", "report-modules.cjs"), "--import", import.meta.resolve("tsx"), path.join(here, "main.ts"), ...args],
    { encoding: "utf8", env: { ...process.env, RNX_CONFIG: "/nonexistent/rnx-config.yml" } },
  );
  const line = /loaded-modules: (.*)\n/.exec(r.stderr)?.[1] ?? assert.fail(`no report in ${r.stderr}`);
  return { loaded: line ? line.split(",") : [], stdout: r.stdout, status: r.status };
}

test("rnx --version prints the package version and loads none of the heavy packages", () => {
  const r = loadedBy(["--version"]);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^\d+\.\d+\.\d+\S*\n$/);
  assert.deepEqual(r.loaded, []);
});

test("rnx --help loads the parser only", () => {
  const r = loadedBy(["--help"]);
  assert.equal(r.status, 0);
  assert.deepEqual(r.loaded, ["commander"]);
});

// The control (the check can fail): a server command loads the generated proto module, which imports grpc-js
// for its unused client class when run from source; the bundle replaces that import (bundle.test.ts).
test("a command that talks to a server loads the generated proto module (the check can fail)", () => {
  const r = loadedBy(["list"]);
  assert.equal(r.status, 5, "no config → not found");
  assert.ok(r.loaded.includes("@grpc/grpc-js"), r.loaded.join(","));
});
