// The daemon's own log: pino, JSON lines by default, or one readable line per entry with `logging.format:
// text`. Entries about a job carry its `jobId`.
import { pino, type Logger } from "pino";
import { Writable } from "node:stream";

/** A logger writing to stderr in the configured format. */
export function createLogger(level: string, format: "json" | "text"): Logger {
  const opts = { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === "json") return pino(opts, pino.destination({ fd: 2, sync: false }));
  return pino(opts, new TextLines(process.stderr));
}

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** Re-renders pino's JSON lines as `time LEVEL msg key=value…`. */
class TextLines extends Writable {
  constructor(private readonly out: NodeJS.WritableStream) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (!line) continue;
      try {
        const { time, level, msg, err, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
        const stack = err && typeof err === "object" && "stack" in err ? `\n${String((err as { stack: unknown }).stack)}` : "";
        this.out.write(`${String(time)} ${LEVELS[level as number] ?? String(level)} ${String(msg ?? "")}${fields.length ? ` ${fields.join(" ")}` : ""}${stack}\n`);
      } catch {
        this.out.write(`${line}\n`);
      }
    }
    done();
  }
}
