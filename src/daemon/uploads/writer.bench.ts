// Measures UploadWriter against plain fs.promises writes of the same data in the same run:
// 1. one large file in 256 KiB chunks (the CLI's chunk size): MB/s of each, and their ratio;
// 2. many small files (4 KiB each, 100 per directory): entries/s of each, the baseline being open/write/close
//    plus mkdir per directory, without the writer's checks, fchown and fchmod.
// Rounds alternate writer and baseline so that load drift hits both; medians are printed. Data goes through the
// page cache (no fsync), so this shows the writer's own overhead rather than the disk's speed.
// Run: node --import tsx src/daemon/uploads/writer.bench.ts [MiB=200] [smallFiles=5000] [rounds=5] [dir=os.tmpdir()]
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { UploadWriter } from "./writer.js";

const MiB = 1 << 20;
const CHUNK_BYTES = 256 * 1024;
const SMALL_FILE_BYTES = 4096;
const FILES_PER_DIR = 100;
const fileMiB = Number(process.argv[2] ?? 200);
const smallFiles = Number(process.argv[3] ?? 5000);
const rounds = Number(process.argv[4] ?? 5);
const baseDir = process.argv[5] ?? tmpdir();
// The owner a daemon would pass for a user-namespaced job; chown needs root, so without root none is set.
const owner = process.getuid?.() === 0 ? { uid: 100_000, gid: 100_000 } : undefined;

// Four distinct chunks, cycled, so the data is not one repeated page.
const chunks = Array.from({ length: 4 }, () => randomBytes(CHUNK_BYTES));
const chunkCount = Math.ceil((fileMiB * MiB) / CHUNK_BYTES);
const small = randomBytes(SMALL_FILE_BYTES);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// Runs `body` in a fresh empty dir, removes the dir, and returns body's wall time in milliseconds.
async function timed(body: (dir: string) => Promise<void>): Promise<number> {
  const parent = mkdtempSync(path.join(baseDir, "joblet-upload-bench-"));
  const dir = path.join(parent, "work");
  mkdirSync(dir);
  try {
    const t0 = performance.now();
    await body(dir);
    return performance.now() - t0;
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}

async function baselineLarge(dir: string): Promise<void> {
  const fh = await open(path.join(dir, "big"), "wx", 0o644);
  for (let i = 0; i < chunkCount; i++) await fh.write(chunks[i % chunks.length]!);
  await fh.close();
}

async function writerLarge(dir: string): Promise<void> {
  const w = new UploadWriter(dir, { owner, declaredBytes: chunkCount * CHUNK_BYTES, declaredEntries: 1 });
  await w.begin({ path: "big", kind: "file", mode: 0o644, size: chunkCount * CHUNK_BYTES, linkTarget: "" });
  for (let i = 0; i < chunkCount; i++) await w.write(chunks[i % chunks.length]!);
  await w.finish();
}

const smallDirs = Math.ceil(smallFiles / FILES_PER_DIR);

async function baselineSmall(dir: string): Promise<void> {
  for (let i = 0; i < smallFiles; i++) {
    if (i % FILES_PER_DIR === 0) await mkdir(path.join(dir, `d${i / FILES_PER_DIR}`), 0o755);
    const fh = await open(path.join(dir, `d${Math.floor(i / FILES_PER_DIR)}`, `f${i}`), "wx", 0o644);
    await fh.write(small);
    await fh.close();
  }
}

async function writerSmall(dir: string): Promise<void> {
  const w = new UploadWriter(dir, { owner, declaredBytes: smallFiles * SMALL_FILE_BYTES, declaredEntries: smallFiles + smallDirs });
  for (let i = 0; i < smallFiles; i++) {
    if (i % FILES_PER_DIR === 0) await w.begin({ path: `d${i / FILES_PER_DIR}`, kind: "directory", mode: 0o755, size: 0, linkTarget: "" });
    await w.begin({ path: `d${Math.floor(i / FILES_PER_DIR)}/f${i}`, kind: "file", mode: 0o644, size: SMALL_FILE_BYTES, linkTarget: "" });
    await w.write(small);
  }
  await w.finish();
}

console.log(`host: load ${loadavg().map((x) => x.toFixed(2)).join(" ")}, node ${process.version}, dir ${baseDir}, owner ${owner ? `${owner.uid}:${owner.gid}` : "none"}`);
console.log(`large: ${fileMiB} MiB in ${chunkCount} chunks of ${CHUNK_BYTES / 1024} KiB; small: ${smallFiles} files of ${SMALL_FILE_BYTES} bytes in ${smallDirs} dirs; ${rounds} rounds`);

const large = { base: [] as number[], writer: [] as number[] };
const many = { base: [] as number[], writer: [] as number[] };
// ABBA order: whichever runs right after the other's 200 MiB was removed pays for that writeback, so the first
// slot alternates.
for (let r = 0; r < rounds; r++) {
  if (r % 2 === 0) {
    large.base.push(await timed(baselineLarge));
    large.writer.push(await timed(writerLarge));
  } else {
    large.writer.push(await timed(writerLarge));
    large.base.push(await timed(baselineLarge));
  }
}
for (let r = 0; r < rounds; r++) {
  if (r % 2 === 0) {
    many.base.push(await timed(baselineSmall));
    many.writer.push(await timed(writerSmall));
  } else {
    many.writer.push(await timed(writerSmall));
    many.base.push(await timed(baselineSmall));
  }
}
const samples = (xs: number[]): string => xs.map((ms) => ms.toFixed(0)).join(" ");
console.log(`large ms: baseline ${samples(large.base)} | writer ${samples(large.writer)}`);
console.log(`small ms: baseline ${samples(many.base)} | writer ${samples(many.writer)}`);
const mbPerS = (ms: number): number => (chunkCount * CHUNK_BYTES) / 1e6 / (ms / 1000);
const entriesPerS = (ms: number, entries: number): number => entries / (ms / 1000);
const lb = median(large.base);
const lw = median(large.writer);
const sb = median(many.base);
const sw = median(many.writer);
console.log(`large file   baseline ${mbPerS(lb).toFixed(0)} MB/s   writer ${mbPerS(lw).toFixed(0)} MB/s   writer/baseline throughput ${(lb / lw).toFixed(2)}`);
console.log(
  `small files  baseline ${entriesPerS(sb, smallFiles + smallDirs).toFixed(0)} entries/s   writer ${entriesPerS(sw, smallFiles + smallDirs).toFixed(0)} entries/s   writer/baseline throughput ${(sb / sw).toFixed(2)}`,
);
