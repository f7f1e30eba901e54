import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import type { Output } from "../io.js";
import { formatUploadDone, formatUploadProgress, UploadProgress } from "./progress.js";

const MiB = 1024 * 1024;

/** A stream collecting what is written, posing as a terminal or not. */
function output(isTTY: boolean): Output & { text(): string } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean };
  stream.isTTY = isTTY;
  const chunks: string[] = [];
  stream.on("data", (b: Buffer) => chunks.push(b.toString()));
  return Object.assign(stream, { text: () => chunks.join("") });
}

/** Lets PassThrough deliver what was written. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("upload progress", () => {
  test("the line: bytes of total, whole percent, average rate", () => {
    assert.equal(formatUploadProgress(120.5 * MiB, 1024 * MiB, 2667), "rnx: uploading 120.5 MiB of 1.0 GiB (11%), 45.2 MiB/s");
    assert.equal(formatUploadProgress(0, 3 * MiB, 1500), "rnx: uploading 0 B of 3.0 MiB (0%), 0 B/s");
    assert.equal(formatUploadProgress(999, 1000, 1000), "rnx: uploading 999 B of 1000 B (99%), 999 B/s", "99.9% is not yet 100%");
    assert.equal(formatUploadProgress(0, 0, 1200), "rnx: uploading 0 B of 0 B (100%), 0 B/s", "only directories and links");
    assert.equal(formatUploadProgress(10, 100, 0), "rnx: uploading 10 B of 100 B (10%), 0 B/s");
    assert.equal(formatUploadDone(1024 * MiB, 22_100), "rnx: uploaded 1.0 GiB in 22.1s, 46.3 MiB/s");
  });

  test("on a terminal: nothing for the first second, then one line rewritten with \\r, ended with a newline", async () => {
    let now = 1_000_000;
    const out = output(true);
    const p = new UploadProgress(out, 100 * MiB, { nowMs: () => now, intervalMs: 0 });
    p.start();
    p.add(10 * MiB);
    now += 1000;
    p.tick();
    await flush();
    assert.equal(out.text(), "", "exactly one second is not more than one second");
    now += 1000;
    p.tick();
    p.add(40 * MiB);
    p.tick();
    p.add(50 * MiB);
    now += 500;
    p.finish();
    await flush();
    assert.equal(
      out.text(),
      "\rrnx: uploading 10.0 MiB of 100.0 MiB (10%), 5.0 MiB/s\u001b[K" +
        "\rrnx: uploading 50.0 MiB of 100.0 MiB (50%), 25.0 MiB/s\u001b[K" +
        "\rrnx: uploaded 100.0 MiB in 2.5s, 40.0 MiB/s\u001b[K\n",
    );
  });

  test("a quick upload prints nothing at all, even on a terminal", async () => {
    let now = 0;
    const out = output(true);
    const p = new UploadProgress(out, MiB, { nowMs: () => now, intervalMs: 0 });
    p.start();
    p.add(MiB);
    now = 300;
    p.tick();
    p.finish();
    await flush();
    assert.equal(out.text(), "");
  });

  test("not a terminal: silent however long it takes", async () => {
    let now = 0;
    const out = output(false);
    const p = new UploadProgress(out, MiB, { nowMs: () => now, intervalMs: 0 });
    p.start();
    now = 60_000;
    p.add(1);
    p.tick();
    p.finish();
    await flush();
    assert.equal(out.text(), "");
  });

  test("abandoned after the line appeared: the line is ended so the error starts on its own line", async () => {
    let now = 0;
    const out = output(true);
    const p = new UploadProgress(out, 4 * MiB, { nowMs: () => now, intervalMs: 0 });
    p.start();
    p.add(MiB);
    now = 2000;
    p.tick();
    p.abandon();
    p.abandon();
    await flush();
    assert.equal(out.text(), "\rrnx: uploading 1.0 MiB of 4.0 MiB (25%), 512.0 KiB/s\u001b[K\n");
  });

  test("the real timer redraws on its own and stops with finish()", async () => {
    const out = output(true);
    let now = 0;
    const p = new UploadProgress(out, 10, { nowMs: () => now, intervalMs: 5 });
    p.start();
    now = 5000;
    await new Promise((resolve) => setTimeout(resolve, 40));
    p.finish();
    await flush();
    const snapshot = out.text();
    assert.match(snapshot, /^(\rrnx: uploading 0 B of 10 B \(0%\), 0 B\/s\u001b\[K)+\rrnx: uploaded 0 B in 5\.0s, 0 B\/s\u001b\[K\n$/);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await flush();
    assert.equal(out.text(), snapshot, "no redraw after finish()");
  });
});
