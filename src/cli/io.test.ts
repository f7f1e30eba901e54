import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

const dir = mkdtempSync(path.join(tmpdir(), "rnx-io-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const ioModule = fileURLToPath(new URL("./io.ts", import.meta.url));

/** What jobSinks decides in a process whose stdout and stderr are set up by `sh -c CMD` (CMD runs it as $P). */
function decidedUnder(shell: string): string {
  const probe = path.join(dir, "probe.mts");
  writeFileSync(
    probe,
    `import { jobSinks, processIo, sameOpenFile } from ${JSON.stringify(ioModule)};
const s = jobSinks(processIo());
process.stdout.write(\`merged=\${s.stderr === s.stdout} same=\${sameOpenFile(1, 2)}\\n\`);`,
  );
  const P = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(probe)}`;
  const r = spawnSync("sh", ["-c", shell.replaceAll("$P", P)], { encoding: "utf8", cwd: process.cwd() });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test("a job's stderr goes to rnx's stdout stream when rnx's stdout and stderr are one file or pipe", { skip: process.platform === "win32" }, () => {
  assert.equal(decidedUnder("$P 2>&1 | cat"), "merged=true same=true", "2>&1 into a pipe");
  assert.equal(decidedUnder(`$P >${dir}/both 2>&1; cat ${dir}/both`), "merged=true same=true", "2>&1 into a file");
  assert.equal(decidedUnder(`$P >${dir}/f1 2>${dir}/f1; cat ${dir}/f1`), "merged=true same=true", "the same file opened twice");
});

test("a job's stdout and stderr stay apart when rnx's are different files or pipes", () => {
  assert.equal(decidedUnder(`$P 2>/dev/null | cat`), "merged=false same=false");
  assert.equal(decidedUnder(`$P 2>${dir}/err | cat`), "merged=false same=false");
  assert.equal(decidedUnder(`($P | cat) 2>&1 | cat`), "merged=false same=false", "two different pipes");
});
