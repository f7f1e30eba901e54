// Measures what a cut costs on a large log: the first enforce on a log far over its cap (a daemon that
// starts after a job wrote 1 GiB while it was down) decodes the whole middle once; later ones decode only
// what was appended. Run: node --import tsx src/daemon/logs/retention.bench.ts [MiB] [lineBytes...]
// (defaults: 1024 MiB, lines of 100 bytes and conmon's 8 KiB partial records). The log is written to the
// OS temp dir (it must support hole punching) and removed afterwards.
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { encodeK8sOutput } from "./k8sfile.js";
import { clearIndexCache } from "./offset-index.js";
import { totalOutputBytes } from "./reader.js";
import { LogCap, removeLog } from "./retention.js";

const MiB = 1 << 20;
const fileMiB = Number(process.argv[2] ?? 1024);
const lineSizes = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [100, 8192];

// About `mib` MiB of records of lineBytes each (a 4 MiB block repeated), appended to p.
function appendLog(p: string, lineBytes: number, mib: number): void {
  const parts: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < 4 * MiB; i++) {
    const line = Buffer.alloc(lineBytes, 0x61 + (i % 26));
    if (lineBytes < 8192) line[lineBytes - 1] = 0x0a;
    const rec = encodeK8sOutput(i % 5 === 0 ? "stderr" : "stdout", line, 8192);
    parts.push(rec);
    size += rec.length;
  }
  const block = Buffer.concat(parts);
  const fd = openSync(p, "a");
  for (let written = 0; written < mib * MiB; written += block.length) writeSync(fd, block);
  closeSync(fd);
}

const dir = mkdtempSync(path.join(tmpdir(), "joblet-retention-bench-"));
const cap = new LogCap({ maxBytes: 64 * MiB, headBytes: 8 * MiB });
const mib = (bytes: number): string => (bytes / MiB).toFixed(1);
try {
  for (const lineBytes of lineSizes) {
    const p = path.join(dir, `lines-${lineBytes}.log`);
    appendLog(p, lineBytes, fileMiB);
    const before = statSync(p);
    clearIndexCache();
    let t0 = performance.now();
    const first = await cap.enforce(p);
    const firstMs = performance.now() - t0;
    const after = statSync(p);
    t0 = performance.now();
    const again = await cap.enforce(p);
    const idleMs = performance.now() - t0;
    appendLog(p, lineBytes, 64);
    t0 = performance.now();
    const grown = await cap.enforce(p);
    const grownMs = performance.now() - t0;
    clearIndexCache();
    t0 = performance.now();
    await totalOutputBytes(p);
    const totalMs = performance.now() - t0;
    console.log(
      `${lineBytes}-byte lines, ${mib(before.size)} MiB log, cap 64 MiB (head 8): first enforce ${firstMs.toFixed(0)} ms ` +
        `(dropped ${mib(first.droppedOutputBytes)} MiB of output, allocated ${mib(before.blocks * 512)} -> ${mib(after.blocks * 512)} MiB); ` +
        `again ${idleMs.toFixed(2)} ms (${again.holes} holes); after 64 MiB more ${grownMs.toFixed(0)} ms (dropped ${mib(grown.droppedOutputBytes)} MiB); ` +
        `cold totalOutputBytes ${totalMs.toFixed(0)} ms`,
    );
    await removeLog(p);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
