import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../program.js";
import { memoryIo } from "../test-support/memory-io.js";

async function script(shell: string): Promise<string> {
  const io = memoryIo();
  assert.equal(await runCli(["completion", shell], io), 0, io.err());
  return io.out();
}

describe("rnx completion bash", () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "rnx-completion-"));
    file = path.join(dir, "rnx.bash");
    writeFileSync(file, await script("bash"));
    // A stand-in rnx on PATH: logs how it was asked and answers like `list -q` / `nodes -q`.
    const stub = path.join(dir, "rnx");
    writeFileSync(
      stub,
      `#!/bin/sh\necho "$*" >> "${dir}/asked"\ncase "$*" in *"list -q"*) printf '0d5c6f3a-1111\\n0e000000-2222\\n';; *"nodes -q"*) printf 'default\\nviewer\\n';; esac\n`,
    );
    chmodSync(stub, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Completes the last word of `words` in a real bash with the generated script loaded. */
  function complete(...words: string[]): string[] {
    const arr = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(" ");
    const r = spawnSync(
      "bash",
      ["--norc", "-c", `source "${file}"; COMP_WORDS=(${arr}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _rnx; printf '%s\\n' "\${COMPREPLY[@]}"`],
      { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, cwd: dir },
    );
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean);
  }

  test("the script is valid bash and registers the completion", () => {
    const r = spawnSync("bash", ["-n", file]);
    assert.equal(r.status, 0, String(r.stderr));
    assert.match(readFileSync(file, "utf8"), /^complete -F _rnx rnx$/m);
  });

  test("commands and global options", () => {
    assert.deepEqual(complete("rnx", "st"), ["status", "stop"]);
    assert.ok(complete("rnx", "").includes("config-help"));
    assert.deepEqual(complete("rnx", "--no"), ["--node"]);
  });

  test("run's flags, but not after the job's command", () => {
    assert.deepEqual(complete("rnx", "run", "--max"), ["--max-cpu", "--max-memory", "--max-iobps"]);
    assert.deepEqual(complete("rnx", "run", "--max-cpu", "50", "ls", "--max"), []);
  });

  test("job IDs from `rnx list -q`, passing on the --config already typed", () => {
    rmSync(path.join(dir, "asked"), { force: true });
    assert.deepEqual(complete("rnx", "--config", "/c.yml", "stop", "0d"), ["0d5c6f3a-1111"]);
    assert.deepEqual(complete("rnx", "status", ""), ["0d5c6f3a-1111", "0e000000-2222"]);
    assert.deepEqual(readFileSync(path.join(dir, "asked"), "utf8").split("\n").filter(Boolean), ["--config /c.yml list -q", "list -q"]);
  });

  test("node names, statuses and shells", () => {
    assert.deepEqual(complete("rnx", "--node", "v"), ["viewer"]);
    assert.deepEqual(complete("rnx", "list", "--status", "f"), ["failed"]);
    assert.deepEqual(complete("rnx", "completion", ""), ["bash", "zsh"]);
    assert.deepEqual(complete("rnx", "run", "--network", ""), ["host", "none"]);
    assert.deepEqual(complete("rnx", "run", "--timeout", ""), [], "a duration has nothing to complete");
  });

  test("rm completes a job ID at every position, and its own flags", () => {
    assert.deepEqual(complete("rnx", "rm", "0d"), ["0d5c6f3a-1111"]);
    assert.deepEqual(complete("rnx", "rm", "0d5c6f3a-1111", "0e"), ["0e000000-2222"]);
    assert.deepEqual(complete("rnx", "delete", "x", "--js"), ["--json"]);
  });
});

describe("rnx completion zsh", () => {
  test("a compdef script covering every command, with job IDs and node names asked from rnx", async () => {
    const s = await script("zsh");
    assert.match(s, /^#compdef rnx\n/);
    for (const cmd of ["run", "list", "status", "log", "stop", "rm", "delete", "nodes", "config-help", "completion"]) {
      assert.match(s, new RegExp(`'${cmd}:`), cmd);
    }
    assert.match(s, /'1:job ID:_rnx_ids'/);
    assert.match(s, /\(rm\|delete\)\n[^;]*'\*:job ID:_rnx_ids'/, "rm takes job IDs at every position");
    assert.match(s, /'--network\[[^\]]*\]:network:\(host none\)'/);
    assert.match(s, /'--node\[[^\]]*\]:node:_rnx_nodes'/);
    assert.match(s, /'--max-cpu\[[^\]]*\]:max-cpu: '/);
    assert.match(s, /compdef _rnx rnx/);
  });

  test("an unknown shell is a usage error naming the choices", async () => {
    const io = memoryIo();
    assert.equal(await runCli(["completion", "fish"], io), 2);
    assert.match(io.err(), /shell: expected one of bash, zsh, got "fish"/);
  });
});
