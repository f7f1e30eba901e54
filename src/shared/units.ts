// Parsing of human-written quantities, shared by both programs. Each returns a number in the unit its name
// states, or throws INVALID_ARGUMENT naming the field.
import { invalidArgument } from "./errors.js";

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "5s", "1.5m", "2h", "7d" → milliseconds. */
export function parseDurationMs(field: string, text: string): number {
  const m = DURATION_RE.exec(text.trim());
  if (!m) throw invalidArgument(field, 'a duration such as "500ms", "5s", "2m", "1h" or "7d"', text);
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

/** Milliseconds → the shortest exact duration text ("5s", "1500ms"). */
export function formatDurationMs(ms: number): string {
  if (ms % 86_400_000 === 0 && ms > 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Bytes in binary units with one decimal: "512 B", "1.5 KiB", "2.0 GiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${value} B` : `${value.toFixed(1)} ${units[i]}`;
}
