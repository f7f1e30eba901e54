#!/usr/bin/env node
// Runs the test suite with Node's built-in runner. Node 20's runner has no globs, so this finds the files:
// unit tests (src/**/*.test.ts, next to the code) and integration tests (test/integration/*.test.ts, which
// need root, runc, conmon and a built bin/). `--unit` runs only the unit tests; extra arguments filter files
// by substring.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const args = process.argv.slice(2);
const unitOnly = args.includes("--unit");
const filters = args.filter((a) => !a.startsWith("--"));

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith(".test.ts")) out.push(path.relative(root, p));
  }
  return out;
}

let files = find(path.join(root, "src"));
if (!unitOnly) files.push(...find(path.join(root, "test")));
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
files.sort();
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
// Integration tests share one machine's cgroups and runc state: run files one at a time.
const res = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=spec", ...files],
  { cwd: root, stdio: "inherit" },
);
process.exit(res.status ?? 1);
