// Measures readLog throughput on a large k8s-file log and the cost of resuming from an offset with a cold and
// a warm offset index. Run: node --import tsx src/daemon/logs/read-throughput.bench.ts [MiB] [lineBytes...]
// (defaults: 1024 MiB of file, lines of 100 bytes and conmon's 8 KiB partial records), each with all output
// on stdout and with one line in 5 on stderr (chunks never mix streams, so that mix yields many more,
// smaller chunks). The file is written to the OS temp dir and removed afterwards; reads come from the page
// cache (the case of recent logs).
import { closeSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { encodeK8sOutput } from "./k8sfile.js";
import { clearIndexCache } from "./offset-index.js";
import { readLog, totalOutputBytes } from "./reader.js";

const MiB = 1 << 20;
const fileMiB = Number(process.argv[2] ?? 1024);
const lineSizes = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [100, 8192];

// Writes about fileMiB of log: a 4 MiB block of records repeated; every stderrEvery-th line on stderr (0: none).
function writeLog(p: string, lineBytes: number, stderrEvery: number): void {
  const parts: Buffer[] = [];
  let size = 0;
  let i = 0;
  while (size < 4 * MiB) {
    const line = Buffer.alloc(lineBytes, 0x61 + (i % 26));
    // A line of lineBytes - 1 bytes plus its newline; 8 KiB lines become one P record (no newline).
    if (lineBytes < 8192) line[lineBytes - 1] = 0x0a;
    const rec = encodeK8sOutput(stderrEvery > 0 && i % stderrEvery === 0 ? "stderr" : "stdout", line, 8192);
    parts.push(rec);
    size += rec.length;
    i++;
  }
  const block = Buffer.concat(parts);
  const fd = openSync(p, "w");
  for (let written = 0; written < fileMiB * MiB; written += block.length) writeSync(fd, block);
  closeSync(fd);
}

async function timeRead(p: string, from: number): Promise<{ ms: number; bytes: number; chunks: number }> {
  const t0 = performance.now();
  let bytes = 0;
  let chunks = 0;
  for await (const c of readLog(p, from)) {
    bytes += c.data.length;
    chunks++;
  }
  return { ms: performance.now() - t0, bytes, chunks };
}

async function firstChunkMs(p: string, from: number): Promise<number> {
  const t0 = performance.now();
  for await (const c of readLog(p, from)) {
    void c;
    break;
  }
  return performance.now() - t0;
}

for (const [lineBytes, stderrEvery] of lineSizes.flatMap((n) => [[n, 0], [n, 5]] as const)) {
  const p = path.join(tmpdir(), `joblet-log-bench-${process.pid}.log`);
  try {
    writeLog(p, lineBytes, stderrEvery);
    const fileBytes = statSync(p).size;
    clearIndexCache();
    const cold = await timeRead(p, 0);
    const warm = await timeRead(p, 0);
    const mibps = (bytes: number, ms: number): string => ((bytes / MiB / ms) * 1000).toFixed(0);
    console.log(
      `lines of ${lineBytes} B, ${stderrEvery > 0 ? `1 in ${stderrEvery} on stderr` : "all on stdout"}: file ${(fileBytes / MiB).toFixed(0)} MiB, output ${(cold.bytes / MiB).toFixed(0)} MiB in ${cold.chunks} chunks`,
    );
    console.log(
      `  read all from 0: ${cold.ms.toFixed(0)} ms cold index (${mibps(cold.bytes, cold.ms)} MiB/s output, ${mibps(fileBytes, cold.ms)} MiB/s file), ` +
        `${warm.ms.toFixed(0)} ms warm (${mibps(warm.bytes, warm.ms)} MiB/s output)`,
    );
    const nearEnd = cold.bytes - 1000;
    const middle = Math.floor(cold.bytes / 2) + 7;
    console.log(
      `  first chunk from offset ${middle} (middle): ${(await firstChunkMs(p, middle)).toFixed(2)} ms warm; from ${nearEnd}: ${(await firstChunkMs(p, nearEnd)).toFixed(2)} ms warm`,
    );
    const t0 = performance.now();
    await totalOutputBytes(p);
    console.log(`  totalOutputBytes warm: ${(performance.now() - t0).toFixed(2)} ms`);
    clearIndexCache();
    const t1 = performance.now();
    await totalOutputBytes(p);
    console.log(`  totalOutputBytes cold (scans the whole file once): ${(performance.now() - t1).toFixed(0)} ms`);
    clearIndexCache();
    console.log(`  first chunk from the middle, cold index (scans half the file once): ${(await firstChunkMs(p, middle)).toFixed(0)} ms`);
  } finally {
    rmSync(p, { force: true });
  }
}
