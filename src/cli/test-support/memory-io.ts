// In-memory stdout/stderr for in-process tests.
import { PassThrough } from "node:stream";
import type { CliIo } from "../io.js";

/** A CliIo whose outputs collect into strings. */
export function memoryIo(env: NodeJS.ProcessEnv = {}): CliIo & { out(): string; err(): string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  stdout.on("data", (b: Buffer) => o.push(b));
  stderr.on("data", (b: Buffer) => e.push(b));
  return {
    stdout,
    stderr,
    env,
    out: () => Buffer.concat(o).toString("utf8"),
    err: () => Buffer.concat(e).toString("utf8"),
  };
}
