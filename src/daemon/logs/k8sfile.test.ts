import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { decodeK8sRecords, encodeK8sOutput, encodeK8sRecord, formatK8sTime, MAX_LINE_BYTES, type LogStream } from "./k8sfile.js";

const T = "2026-11-27T20:46:40.942287139+00:00";

function decoded(buf: Buffer): { out: Buffer; streams: string } {
  const batch = decodeK8sRecords(buf);
  return {
    out: Buffer.concat(batch.records.map((r) => r.data)),
    streams: batch.records.map((r) => `${r.stream[3]}${r.partial ? "P" : "F"}${r.data.length}`).join(","),
  };
}

describe("decodeK8sRecords", () => {
  it("decodes F, P and empty records of both streams, as conmon writes them", () => {
    const file = Buffer.from(
      `${T} stdout F hello\n` +
        `${T} stderr P par\n` +
        `${T} stderr F tial\n` +
        `${T} stdout F \n` + // an empty line
        `${T} stdout F\n` + // an empty line written without the separating space
        `${T} stdout P  two leading spaces \n` +
        `2026-11-27T20:46:41Z stdout F z\n`,
    );
    const { out, streams } = decoded(file);
    assert.equal(out.toString(), "hello\npartial\n\n\n two leading spaces z\n");
    assert.equal(streams, "oF6,eP3,eF5,oF1,oF1,oP20,oF2");
  });

  it("reports file positions and output offsets of each record", () => {
    const l1 = `${T} stdout F ab\n`;
    const l2 = `${T} stderr P c\n`;
    const batch = decodeK8sRecords(Buffer.from(l1 + l2), 1000, 50);
    assert.deepEqual(
      batch.records.map((r) => [r.fileStart, r.fileEnd, r.offset]),
      [
        [1000, 1000 + l1.length],
        [1000 + l1.length, 1000 + l1.length + l2.length],
      ].map(([s, e], i) => [s, e, i === 0 ? 50 : 53]),
    );
    assert.equal(batch.endOffset, 54);
    assert.equal(batch.consumedBytes, l1.length + l2.length);
  });

  it("leaves an incomplete last record unconsumed until its newline arrives", () => {
    const whole = Buffer.from(`${T} stdout F one\n${T} stderr F two\n`);
    const cut = whole.length - 3; // inside "two"
    const first = decodeK8sRecords(whole.subarray(0, cut));
    assert.equal(first.records.length, 1);
    assert.equal(first.consumedBytes, `${T} stdout F one\n`.length);
    const second = decodeK8sRecords(whole.subarray(first.consumedBytes), first.consumedBytes, first.endOffset);
    assert.equal(second.records.length, 1);
    assert.equal(second.records[0]!.data.toString(), "two\n");
    assert.equal(second.records[0]!.offset, 4);
    // A record cut right before its newline is still incomplete.
    assert.equal(decodeK8sRecords(whole.subarray(0, whole.length - 1)).records.length, 1);
  });

  it("skips and counts malformed lines without throwing", () => {
    const file = Buffer.from(
      `${T} stdout F good1\n` +
        `garbage without structure\n` +
        `${T} stdin F wrong stream\n` +
        `${T} stdout X wrong flag\n` +
        `${T} stdout Fnospace\n` +
        `\n` +
        `not-a-time-at-all-but-long-enough stdout F x\n` +
        `${T} stdout F good2\n`,
    );
    const batch = decodeK8sRecords(file);
    assert.equal(batch.malformedLines, 6);
    assert.equal(Buffer.concat(batch.records.map((r) => r.data)).toString(), "good1\ngood2\n");
    assert.equal(batch.consumedBytes, file.length);
  });

  it("reads timestamps of other lengths (scanned for their space) as well as conmon's 35 bytes (taken by shape)", () => {
    const file = Buffer.from(
      `${T} stdout F conmon\n` +
        `2026-11-27T15:46:40.942287139-05:00 stdout F west\n` +
        `2026-11-27T20:46:40Z stdout F short\n` +
        `2026-11-27T20:46:40.9422871+00:00 stderr P seven-digit\n` +
        // 35 bytes with a space at 35 but not conmon's punctuation: the scan finds the space at 19 (too short).
        `2026-11-27T20:46:40 942287139+00:00 stdout F no\n` +
        // conmon's punctuation with a space at 35: taken as conmon's timestamp, as the decoder does not parse it.
        `2026-11-27T20:46:40.9422 7139+00:00 stdout F shape\n`,
    );
    const batch = decodeK8sRecords(file);
    assert.deepEqual(
      batch.records.map((r) => `${r.stream} ${r.data.toString()}`),
      ["stdout conmon\n", "stdout west\n", "stdout short\n", "stderr seven-digit", "stdout shape\n"],
    );
    assert.equal(batch.malformedLines, 1);
  });

  it("treats a line longer than MAX_LINE_BYTES as malformed even when complete", () => {
    const long = encodeK8sRecord("stdout", Buffer.alloc(MAX_LINE_BYTES, "x"), false);
    const batch = decodeK8sRecords(Buffer.concat([long, encodeK8sRecord("stderr", Buffer.from("ok"), false)]));
    assert.equal(batch.malformedLines, 1);
    assert.deepEqual(batch.records.map((r) => r.data.toString()), ["ok\n"]);
  });

  it("round-trips random binary data of both streams interleaved, byte-exact", () => {
    for (let trial = 0; trial < 20; trial++) {
      const pieces: Buffer[] = [];
      const expected: Buffer[] = [];
      const expectedStreams: LogStream[] = [];
      for (let i = 0; i < 50; i++) {
        const stream: LogStream = Math.random() < 0.5 ? "stdout" : "stderr";
        // Bias towards the bytes that break naive parsers: \n, \r, \0, space, and the letters F and P.
        const bytes = randomBytes(Math.floor(Math.random() * 300));
        for (let j = 0; j < bytes.length; j++) {
          if (Math.random() < 0.2) bytes[j] = [0x0a, 0x0d, 0x00, 0x20, 0x46, 0x50][j % 6]!;
        }
        pieces.push(encodeK8sOutput(stream, bytes, 1 + Math.floor(Math.random() * 64)));
        expected.push(bytes);
        for (let j = 0; j < bytes.length; j++) expectedStreams.push(stream);
      }
      const batch = decodeK8sRecords(Buffer.concat(pieces));
      assert.equal(batch.malformedLines, 0);
      assert.ok(Buffer.concat(batch.records.map((r) => r.data)).equals(Buffer.concat(expected)));
      const gotStreams: LogStream[] = [];
      for (const r of batch.records) for (let j = 0; j < r.data.length; j++) gotStreams.push(r.stream);
      assert.deepEqual(gotStreams, expectedStreams);
    }
  });

  it("encodes records in conmon's layout", () => {
    const line = encodeK8sRecord("stderr", Buffer.from("a b"), true, new Date(Date.UTC(2026, 10, 27, 20, 46, 40, 942)));
    assert.equal(line.toString(), "2026-11-27T20:46:40.942000000+00:00 stderr P a b\n");
    assert.equal(formatK8sTime(new Date(0)).length, T.length);
    assert.throws(() => encodeK8sRecord("stdout", Buffer.from("a\nb"), false));
  });
});
