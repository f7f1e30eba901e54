import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { isJobletError } from "../../shared/errors.js";
import { holesPathFor, readHolesSync, type LogHole } from "./holes.js";
import { decodeK8sRecords, encodeK8sOutput, type LogStream } from "./k8sfile.js";
import { clearIndexCache } from "./offset-index.js";
import { readLog, totalOutputBytes, type LogChunk, type LogGap, type ReadLogOptions } from "./reader.js";
import { diskFree, droppedOutputBytes, enforceBudget, LogCap, removeLog, RESERVE_FILE } from "./retention.js";

const KiB = 1024;
const MiB = 1024 * KiB;
// The test needs a filesystem that punches holes; the OS temp dir here is ext4.
const dir = mkdtempSync(path.join(tmpdir(), "joblet-retention-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileSeq = 0;
const newPath = (sub = ""): string => {
  const d = path.join(dir, sub);
  mkdirSync(d, { recursive: true });
  return path.join(d, `job-${++fileSeq}.log`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A job's output as written: the bytes in order, and the stream of each byte ("o" or "e"). */
interface Output {
  bytes: Buffer;
  streams: Buffer;
}

const letter = (s: LogStream): number => (s === "stdout" ? 0x6f : 0x65);

/**
 * Writes of printable text (never a NUL, so garbage from a punched range would show) to both streams,
 * encoded as conmon would: mostly short lines, some lines of 10-30 KiB (split in 8 KiB P records), some
 * writes without a newline. About `fileBytes` of log.
 */
function makeLog(fileBytes: number): { file: Buffer; expected: Output } {
  const lines: Buffer[] = [];
  const bytes: Buffer[] = [];
  const streams: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < fileBytes; i++) {
    const stream: LogStream = Math.random() < 0.7 ? "stdout" : "stderr";
    const r = Math.random();
    const len = r < 0.05 ? 10 * KiB + Math.floor(Math.random() * 20 * KiB) : Math.floor(Math.random() * 200);
    const text = randomBytes(len).map((b) => 0x21 + (b % 94));
    const data = Buffer.concat([Buffer.from(`w${i} `), text, r > 0.95 ? Buffer.alloc(0) : Buffer.from("\n")]);
    const rec = encodeK8sOutput(stream, data);
    lines.push(rec);
    bytes.push(data);
    streams.push(Buffer.alloc(data.length, letter(stream)));
    size += rec.length;
  }
  return { file: Buffer.concat(lines), expected: { bytes: Buffer.concat(bytes), streams: Buffer.concat(streams) } };
}

async function collect(gen: AsyncGenerator<LogChunk>): Promise<LogChunk[]> {
  const chunks: LogChunk[] = [];
  for await (const c of gen) chunks.push(c);
  return chunks;
}

/** Reads the whole log, recording chunks and gaps in the order the reader produced them. */
async function readAll(p: string, from: number, opts: ReadLogOptions = {}): Promise<{ events: (LogChunk | { gap: LogGap })[]; malformed: number }> {
  const events: (LogChunk | { gap: LogGap })[] = [];
  let malformed = 0;
  for await (const c of readLog(p, from, { ...opts, onGap: (gap) => events.push({ gap }), onMalformedLines: (n) => (malformed += n) })) events.push(c);
  return { events, malformed };
}

/**
 * Checks what a reader produced from `from`: chunks hold exactly the expected bytes at their offsets (and
 * only their own stream's), are contiguous except where a gap was reported just before, and gaps are
 * exactly `gaps`; the output ends at the end of `expected`.
 */
function assertGappedOutput(events: (LogChunk | { gap: LogGap })[], expected: Output, from: number, gaps: LogGap[]): void {
  let offset = from;
  const seenGaps: LogGap[] = [];
  for (const e of events) {
    if ("gap" in e) {
      assert.equal(e.gap.outputStart, offset, "a gap starts where the output before it ended");
      seenGaps.push(e.gap);
      offset = e.gap.outputEnd;
      continue;
    }
    assert.equal(e.offset, offset, "chunk follows the previous chunk or gap");
    assert.ok(e.data.equals(expected.bytes.subarray(offset, offset + e.data.length)), `bytes at ${offset} (${e.data.length})`);
    assert.ok(!e.data.includes(0), "no NUL bytes");
    const other = expected.streams.subarray(offset, offset + e.data.length).indexOf(letter(e.stream === "stdout" ? "stderr" : "stdout"));
    assert.equal(other, -1, "one stream per chunk");
    offset += e.data.length;
  }
  assert.equal(offset, expected.bytes.length, "read to the end");
  assert.deepEqual(seenGaps, gaps);
}

/** Output offsets of the record boundaries of an un-punched log: file position → offset. */
function boundaries(file: Buffer): Map<number, number> {
  const batch = decodeK8sRecords(file);
  const map = new Map<number, number>();
  for (const r of batch.records) map.set(r.fileStart, r.offset);
  map.set(batch.consumedBytes, batch.endOffset);
  return map;
}

const allocated = (p: string): number => statSync(p).blocks * 512;
const keptBytes = (p: string): number => statSync(p).size - readHolesSync(p).reduce((s, h) => s + h.fileEnd - h.fileStart, 0);

/** Asserts the hole is a run of whole records of `file` with the offsets and count the un-punched log gives. */
function assertHoleMatches(h: LogHole, file: Buffer): void {
  const b = boundaries(file);
  assert.ok(b.has(h.fileStart), `fileStart ${h.fileStart} is a record boundary`);
  assert.ok(b.has(h.fileEnd), `fileEnd ${h.fileEnd} is a record boundary`);
  assert.equal(h.outputStart, b.get(h.fileStart));
  assert.equal(h.outputEnd, b.get(h.fileEnd));
  const records = decodeK8sRecords(file).records.filter((r) => r.fileStart >= h.fileStart && r.fileStart < h.fileEnd).length;
  assert.equal(h.records, records);
}

/** Reads raw file bytes [start, end). */
function rawBytes(p: string, start: number, end: number): Buffer {
  const fd = openSync(p, "r");
  try {
    const buf = Buffer.alloc(end - start);
    readSync(fd, buf, 0, buf.length, start);
    return buf;
  } finally {
    closeSync(fd);
  }
}

describe("LogCap", () => {
  it("punches the middle of a log over the cap, keeps its size and offsets, and records the hole", async () => {
    const { file, expected } = makeLog(6 * MiB);
    const p = newPath();
    writeFileSync(p, file);
    const copy = newPath();
    writeFileSync(copy, file);
    const before = statSync(p);
    assert.ok(before.blocks * 512 >= file.length, "a dense file to begin with");

    const cap = new LogCap({ maxBytes: 1 * MiB, headBytes: 256 * KiB });
    const res = await cap.enforce(p);
    const holes = readHolesSync(p);
    assert.equal(holes.length, 1);
    const h = holes[0]!;
    assert.deepEqual(res, { droppedOutputBytes: h.outputEnd - h.outputStart, holes: 1 });

    // The file: same size, far fewer blocks, the punched part reads as zeros, the rest is untouched.
    const after = statSync(p);
    assert.equal(after.size, before.size);
    assert.ok(after.blocks * 512 <= 1 * MiB + 8 * KiB, `${after.blocks * 512} bytes allocated after the cut`);
    const punched = rawBytes(p, Math.ceil(h.fileStart / 4096) * 4096, Math.floor(h.fileEnd / 4096) * 4096);
    assert.ok(punched.every((x) => x === 0), "the middle is a hole");
    assert.ok(rawBytes(p, 0, h.fileStart).equals(file.subarray(0, h.fileStart)), "head intact");
    assert.ok(rawBytes(p, h.fileEnd, file.length).equals(file.subarray(h.fileEnd)), "tail intact");

    // The hole: whole records, starting at the first boundary at or after the head, offsets as un-punched.
    assertHoleMatches(h, file);
    assert.ok(h.fileStart >= 256 * KiB && file.subarray(256 * KiB - 1, h.fileStart - 1).indexOf(0x0a) === -1, "first boundary after the head");
    const kept = file.length - (h.fileEnd - h.fileStart);
    assert.ok(kept <= 1 * MiB, `kept ${kept}`);
    assert.ok(kept >= 1 * MiB - 96 * KiB - 64 * KiB, `kept ${kept}: about the cap less its slack`);
    assert.equal(droppedOutputBytes(p), h.outputEnd - h.outputStart);

    // Reading from 0: the head, the gap, then the tail at its un-punched offsets.
    const { events, malformed } = await readAll(p, 0);
    assertGappedOutput(events, expected, 0, [{ outputStart: h.outputStart, outputEnd: h.outputEnd }]);
    assert.equal(malformed, 0);
    const chunks = events.filter((e): e is LogChunk => !("gap" in e));
    assert.ok(chunks.every((c) => c.offset + c.data.length <= h.outputStart || c.offset >= h.outputEnd), "no chunk spans the hole");
    // The same tail, decoded from the un-punched copy.
    const copyTail = Buffer.concat((await collect(readLog(copy, h.outputEnd))).map((c) => c.data));
    assert.ok(Buffer.concat(chunks.filter((c) => c.offset >= h.outputEnd).map((c) => c.data)).equals(copyTail));

    // Resuming: inside the hole starts at its end, at its start reports all of it, at its end none of it.
    for (const from of [h.outputStart + 12345, h.outputStart, h.outputEnd - 1]) {
      const r = await readAll(p, from);
      assertGappedOutput(r.events, expected, from, [{ outputStart: from, outputEnd: h.outputEnd }]);
      assert.equal((r.events[1] as LogChunk).offset, h.outputEnd);
    }
    assertGappedOutput((await readAll(p, h.outputEnd)).events, expected, h.outputEnd, []);
    assertGappedOutput((await readAll(p, 1000)).events, expected, 1000, [{ outputStart: h.outputStart, outputEnd: h.outputEnd }]);
    assertGappedOutput((await readAll(p, 0, { maxChunkBytes: 777 })).events, expected, 0, [{ outputStart: h.outputStart, outputEnd: h.outputEnd }]);

    // Totals do not move, with a cold index or a warm one.
    clearIndexCache();
    assert.equal(await totalOutputBytes(p), expected.bytes.length);
    assert.equal(await totalOutputBytes(p), expected.bytes.length);

    // Idempotent.
    assert.deepEqual(await cap.enforce(p), { droppedOutputBytes: 0, holes: 0 });
    assert.deepEqual(readHolesSync(p), holes);
    assert.equal(statSync(p).blocks, after.blocks);
  });

  it("leaves a log under the cap alone", async () => {
    const { file, expected } = makeLog(900 * KiB);
    const p = newPath();
    writeFileSync(p, file);
    assert.deepEqual(await new LogCap({ maxBytes: 1 * MiB, headBytes: 256 * KiB }).enforce(p), { droppedOutputBytes: 0, holes: 0 });
    assert.equal(existsSync(holesPathFor(p)), false);
    assertGappedOutput((await readAll(p, 0)).events, expected, 0, []);
    assert.deepEqual(await new LogCap({ maxBytes: 1 * MiB, headBytes: 0 }).enforce(path.join(dir, "missing.log")), { droppedOutputBytes: 0, holes: 0 });
  });

  it("grows one hole as the log grows (append, enforce, append, enforce)", async () => {
    const { file, expected } = makeLog(12 * MiB);
    const p = newPath();
    const cap = new LogCap({ maxBytes: 1 * MiB, headBytes: 256 * KiB });
    const b = boundaries(file);
    // Cut the file at record boundaries and at arbitrary bytes (a record half written when enforcing).
    const cuts = [...b.keys()].filter((_, i, all) => i % Math.floor(all.length / 7) === 3).slice(0, 6);
    cuts.push(cuts[2]! + 17, file.length);
    cuts.sort((x, y) => x - y);
    let written = 0;
    let dropped = 0;
    for (const cut of cuts) {
      appendFileSync(p, file.subarray(written, cut));
      written = cut;
      dropped += (await cap.enforce(p)).droppedOutputBytes;
      const holes = readHolesSync(p);
      assert.ok(holes.length <= 1, "one merged hole");
      if (holes.length === 1) {
        assertHoleMatches(holes[0]!, file);
        assert.equal(dropped, holes[0]!.outputEnd - holes[0]!.outputStart);
      }
      assert.ok(keptBytes(p) <= 1 * MiB, `kept ${keptBytes(p)} after writing ${written}`);
      assert.ok(allocated(p) <= 1 * MiB + 16 * KiB, `allocated ${allocated(p)} after writing ${written}`);
    }
    const h = readHolesSync(p)[0]!;
    assert.ok(h.fileStart < 256 * KiB + 40 * KiB, "the hole still starts after the head");
    assertGappedOutput((await readAll(p, 0)).events, expected, 0, [{ outputStart: h.outputStart, outputEnd: h.outputEnd }]);
    clearIndexCache();
    assert.equal(await totalOutputBytes(p), expected.bytes.length);
  });

  it("keeps several holes apart when the kept head changes, and reads across all of them", async () => {
    const { file, expected } = makeLog(8 * MiB);
    const p = newPath();
    const b = [...boundaries(file).keys()];
    const firstPart = b.find((x) => x >= 2 * MiB)!;
    writeFileSync(p, file.subarray(0, firstPart));
    await new LogCap({ maxBytes: 1 * MiB, headBytes: 128 * KiB }).enforce(p);
    appendFileSync(p, file.subarray(firstPart));
    // A bigger head now (the daemon's config changed): the range kept before is kept, a second hole opens.
    await new LogCap({ maxBytes: 4 * MiB, headBytes: 2 * MiB }).enforce(p);
    const holes = readHolesSync(p);
    assert.equal(holes.length, 2);
    holes.forEach((h) => assertHoleMatches(h, file));
    assert.ok(holes[0]!.fileEnd < holes[1]!.fileStart);
    assert.ok(keptBytes(p) <= 4 * MiB);
    const gaps = holes.map((h) => ({ outputStart: h.outputStart, outputEnd: h.outputEnd }));
    assertGappedOutput((await readAll(p, 0)).events, expected, 0, gaps);
    const mid = Math.floor((holes[0]!.outputEnd + holes[1]!.outputStart) / 2);
    assertGappedOutput((await readAll(p, mid)).events, expected, mid, gaps.slice(1));
    assert.equal(droppedOutputBytes(p), gaps.reduce((s, g) => s + g.outputEnd - g.outputStart, 0));
    clearIndexCache();
    assert.equal(await totalOutputBytes(p), expected.bytes.length);
  });

  it("gives a follower reading through a range as it is punched the head and the tail, without garbage", { timeout: 60_000 }, async () => {
    const { file, expected } = makeLog(5 * MiB);
    const p = newPath();
    writeFileSync(p, file);
    const cap = new LogCap({ maxBytes: 1 * MiB, headBytes: 256 * KiB });
    const events: (LogChunk | { gap: LogGap })[] = [];
    let malformed = 0;
    let done = false;
    const gen = readLog(p, 0, {
      follow: true,
      isDone: () => done,
      pollMs: 20,
      maxChunkBytes: 4096,
      onGap: (gap) => events.push({ gap }),
      onMalformedLines: (n) => (malformed += n),
    });
    // Read into what becomes the middle, then stop there (the reader holds a block read before the punch).
    let r = await gen.next();
    while (!r.done && r.value.offset < 400 * KiB) {
      events.push(r.value);
      r = await gen.next();
    }
    assert.ok(!r.done);
    events.push(r.value);
    await cap.enforce(p);
    const h = readHolesSync(p)[0]!;
    assert.ok(h.outputStart < 400 * KiB && h.outputEnd > 1 * MiB, "the follower is inside the hole");
    done = true;
    for (r = await gen.next(); !r.done; r = await gen.next()) events.push(r.value);
    assert.equal(malformed, 0);
    // It delivered what it had read before the punch, then jumped: the gap starts where its output stopped.
    const gaps = events.filter((e): e is { gap: LogGap } => "gap" in e).map((e) => e.gap);
    assert.equal(gaps.length, 1);
    assert.ok(gaps[0]!.outputStart > h.outputStart && gaps[0]!.outputEnd === h.outputEnd);
    assertGappedOutput(events, expected, 0, gaps);
  });

  it("keeps concurrent followers exact while the log grows and is cut again and again", { timeout: 120_000 }, async () => {
    const { file, expected } = makeLog(8 * MiB);
    const p = newPath();
    writeFileSync(p, "");
    const cap = new LogCap({ maxBytes: 512 * KiB, headBytes: 64 * KiB });
    let done = false;
    const follow = async (maxChunkBytes: number, slowEvery: number): Promise<{ events: (LogChunk | { gap: LogGap })[]; malformed: number }> => {
      const events: (LogChunk | { gap: LogGap })[] = [];
      let malformed = 0;
      let n = 0;
      for await (const c of readLog(p, 0, { follow: true, isDone: () => done, pollMs: 5, maxChunkBytes, onGap: (gap) => events.push({ gap }), onMalformedLines: (k) => (malformed += k) })) {
        events.push(c);
        if (++n % slowEvery === 0) await sleep(1);
      }
      return { events, malformed };
    };
    const followers = [follow(65536, 1000), follow(1000, 50), follow(333, 20)];
    let cuts = 0;
    try {
      for (let written = 0; written < file.length; ) {
        const n = Math.min(file.length - written, 1 + Math.floor(Math.random() * 256 * KiB));
        appendFileSync(p, file.subarray(written, written + n));
        written += n;
        cuts += (await cap.enforce(p)).holes;
        await sleep(Math.random() * 4);
      }
    } finally {
      done = true; // also on a failure: the followers must end for the test to report it
    }
    assert.ok(cuts > 5, `${cuts} cuts`);
    for (const f of await Promise.all(followers)) {
      assert.equal(f.malformed, 0);
      const gaps = f.events.filter((e): e is { gap: LogGap } => "gap" in e).map((e) => e.gap);
      assertGappedOutput(f.events, expected, 0, gaps);
    }
    const h = readHolesSync(p);
    assert.equal(h.length, 1);
    assertHoleMatches(h[0]!, file);
  });

  it("punches again the recorded holes of a log that was never punched (a crash between the two steps)", async () => {
    const { file, expected } = makeLog(4 * MiB);
    const p = newPath();
    writeFileSync(p, file);
    await new LogCap({ maxBytes: 1 * MiB, headBytes: 256 * KiB }).enforce(p);
    // The same records and sidecar, unpunched: what a crash right after the rename leaves behind.
    const q = newPath();
    writeFileSync(q, file);
    copyFileSync(holesPathFor(p), holesPathFor(q));
    assert.ok(allocated(q) >= file.length);
    assertGappedOutput((await readAll(q, 0)).events, expected, 0, readHolesSync(q).map((h) => ({ outputStart: h.outputStart, outputEnd: h.outputEnd })));
    assert.deepEqual(await new LogCap({ maxBytes: 1 * MiB, headBytes: 256 * KiB }).enforce(q), { droppedOutputBytes: 0, holes: 0 });
    assert.ok(allocated(q) <= 1 * MiB + 8 * KiB, `allocated ${allocated(q)}`);
  });

  it("rejects caps that leave no room for a tail, naming the option", () => {
    assert.throws(() => new LogCap({ maxBytes: 100 * KiB, headBytes: 64 * KiB }), (e) => isJobletError(e, "INVALID_ARGUMENT") && /maxBytes/.test(e.message));
    assert.throws(() => new LogCap({ maxBytes: 1 * MiB, headBytes: -1 }), (e) => isJobletError(e, "INVALID_ARGUMENT") && /headBytes/.test(e.message));
  });

  it("reports a corrupt sidecar as an error naming it instead of guessing", async () => {
    const { file } = makeLog(100 * KiB);
    const p = newPath();
    writeFileSync(p, file);
    writeFileSync(holesPathFor(p), '{"version":1,"holes":[{"fileStart":10}]}');
    await assert.rejects(collect(readLog(p, 0)), (e) => isJobletError(e, "INTERNAL") && e.message.includes(holesPathFor(p)));
  });
});

describe("a full filesystem", () => {
  const root = process.getuid?.() === 0;
  it("still cuts a log when no byte is free, using the directory's reserve for the sidecar", { skip: root ? false : "needs root (mounts a small tmpfs)" }, async () => {
    const mnt = mkdtempSync(path.join(tmpdir(), "joblet-full-fs-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=6m,mode=0700", "joblet-retention-test", mnt]);
    try {
      const { file } = makeLog(12 * MiB);
      const p = path.join(mnt, "job.log");
      const cap = new LogCap({ maxBytes: 1 * MiB, headBytes: 128 * KiB });
      writeFileSync(p, file.subarray(0, 2 * MiB));
      assert.equal((await cap.enforce(p)).holes, 1);
      assert.ok(existsSync(path.join(mnt, RESERVE_FILE)), "the first cut sets a reserve aside");
      // conmon keeps writing until the filesystem is full (its last write may end half-way through a record).
      let written = 2 * MiB;
      try {
        for (; written < file.length; written += 64 * KiB) appendFileSync(p, file.subarray(written, written + 64 * KiB));
        assert.fail("the filesystem never filled up");
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
      }
      assert.ok(diskFree(mnt) < 4096, `free ${diskFree(mnt)}`);
      const res = await cap.enforce(p);
      assert.equal(res.holes, 1);
      assert.ok(diskFree(mnt) > 2 * MiB, `free after the cut: ${diskFree(mnt)}`);
      assert.ok(existsSync(path.join(mnt, RESERVE_FILE)), "the reserve is back");
      const onDisk = readFileSync(p);
      // What the job's output was: the records of the bytes that made it to disk.
      const records = decodeK8sRecords(file.subarray(0, onDisk.length)).records;
      const out: Output = { bytes: Buffer.concat(records.map((r) => r.data)), streams: Buffer.concat(records.map((r) => Buffer.alloc(r.data.length, letter(r.stream)))) };
      const h = readHolesSync(p)[0]!;
      assertGappedOutput((await readAll(p, 0)).events, out, 0, [{ outputStart: h.outputStart, outputEnd: h.outputEnd }]);
    } finally {
      execFileSync("umount", [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});

describe("enforceBudget", () => {
  const makeDir = (sizes: number[]): { dir: string; files: string[]; outputs: Output[] } => {
    const sub = `budget-${++fileSeq}`;
    const files: string[] = [];
    const outputs: Output[] = [];
    for (const size of sizes) {
      const { file, expected } = makeLog(size);
      const p = newPath(sub);
      writeFileSync(p, file);
      files.push(p);
      outputs.push(expected);
    }
    return { dir: path.join(dir, sub), files, outputs };
  };

  it("cuts the largest unprotected logs first and stops once within the budget", async () => {
    const { dir: logs, files, outputs } = makeDir([1 * MiB, 3 * MiB, 5 * MiB, 8 * MiB]);
    const used = files.reduce((s, f) => s + allocated(f), 0);
    const protectedId = path.basename(files[3]!, ".log");
    const budget = used - 3 * MiB;
    const res = await enforceBudget(logs, budget, new Set([protectedId]), { headBytes: 256 * KiB });
    // The 8 MiB log is protected: the 5 MiB one goes first, and freeing ~3.7 MiB is enough.
    assert.deepEqual(res.cut.map((c) => c.file), [files[2]]);
    assert.equal(res.shortfallBytes, 0);
    assert.ok(res.usedBytes <= budget);
    assert.equal(res.usedBytes, files.reduce((s, f) => s + allocated(f), 0));
    assert.equal(res.freedBytes, used - res.usedBytes);
    assert.ok(allocated(files[2]!) <= 256 * KiB + 1 * MiB + 24 * KiB, `allocated ${allocated(files[2]!)}: head and tail, each rounded out to a record`);
    for (const i of [0, 1, 3]) assert.equal(existsSync(holesPathFor(files[i]!)), false, `log ${i} untouched`);
    const h = readHolesSync(files[2]!)[0]!;
    assert.equal(res.cut[0]!.droppedOutputBytes, h.outputEnd - h.outputStart);
    assertGappedOutput((await readAll(files[2]!, 0)).events, outputs[2]!, 0, [{ outputStart: h.outputStart, outputEnd: h.outputEnd }]);
  });

  it("returns the shortfall when cutting every unprotected log is not enough", async () => {
    const { dir: logs, files } = makeDir([1 * MiB, 3 * MiB, 5 * MiB, 8 * MiB]);
    const res = await enforceBudget(logs, 10 * MiB, new Set([files[3]!]), { headBytes: 256 * KiB });
    assert.deepEqual(res.cut.map((c) => c.file), [files[2], files[1]], "largest first, protected (by path) skipped");
    assert.equal(existsSync(holesPathFor(files[0]!)), false, "a log already within head + tail is not cut");
    assert.equal(res.usedBytes, files.reduce((s, f) => s + allocated(f), 0));
    assert.equal(res.shortfallBytes, res.usedBytes - 10 * MiB);
    assert.ok(res.shortfallBytes > 0);
    // Within the budget now: nothing more to do.
    const again = await enforceBudget(logs, res.usedBytes, new Set(), { headBytes: 256 * KiB });
    assert.deepEqual([again.freedBytes, again.shortfallBytes, again.cut], [0, 0, []]);
  });
});

describe("removeLog and diskFree", () => {
  it("removes a log and its sidecar, and a missing log is no error", async () => {
    const { file } = makeLog(3 * MiB);
    const p = newPath();
    writeFileSync(p, file);
    await new LogCap({ maxBytes: 1 * MiB, headBytes: 0 }).enforce(p);
    assert.ok(droppedOutputBytes(p) > 0);
    await removeLog(p);
    assert.equal(existsSync(p), false);
    assert.equal(existsSync(holesPathFor(p)), false);
    assert.equal(droppedOutputBytes(p), 0);
    await removeLog(p);
    // A new log at the same path starts without holes.
    writeFileSync(p, file.subarray(0, 1000));
    assert.equal(await totalOutputBytes(p), decodeK8sRecords(file.subarray(0, 1000)).endOffset);
  });

  it("reports the free bytes of the filesystem", () => {
    const free = diskFree(dir);
    assert.ok(free > 0 && Number.isSafeInteger(free));
    const before = free;
    writeFileSync(path.join(dir, "filler"), Buffer.alloc(16 * MiB, 1), { flush: true });
    assert.ok(diskFree(dir) < before, "writing 16 MiB lowers it");
    assert.throws(() => diskFree(path.join(dir, "nope")), (e) => isJobletError(e, "INTERNAL") && e.message.includes("nope"));
    assert.ok(readFileSync(path.join(dir, "filler")).length === 16 * MiB);
  });
});
