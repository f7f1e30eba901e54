// Text formatting for people: times, durations, sizes, command lines. Pure functions; JSON output does not
// use them (it carries the proto values unchanged).

/** Local date and time "YYYY-MM-DD HH:MM:SS" of an RFC 3339 timestamp; "-" when empty or unparsable. */
export function formatTime(rfc3339: string): string {
  if (!rfc3339) return "-";
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A duration for a table: "850ms", "12.3s", "4m05s", "2h07m", "3d04h". */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m${p(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${p(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${p(Math.floor(s / 3600) % 24)}h`;
}

/** How long a job ran: start to end, or start to `nowMs` while it runs; undefined before it started. */
export function jobDurationMs(startTime: string, endTime: string, nowMs: number): number | undefined {
  if (!startTime) return undefined;
  const start = Date.parse(startTime);
  const end = endTime ? Date.parse(endTime) : nowMs;
  if (Number.isNaN(start) || Number.isNaN(end)) return undefined;
  return Math.max(0, end - start);
}

export { formatBytes } from "../shared/units.js";

/** A command line as a POSIX shell would need it typed: words with special characters single-quoted. */
export function shellJoin(words: readonly string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** `text` on one line: control characters (newlines, tabs, escapes) become spaces. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, " ");
}

/** Cuts `text` to at most `width` terminal columns, ending in "…" when cut; control characters become spaces. */
export function cutToWidth(text: string, width: number): string {
  const flat = oneLine(text);
  if (width <= 0) return "";
  if (displayWidth(flat) <= width) return flat;
  let out = "";
  let used = 0;
  for (const ch of flat) {
    const w = displayWidth(ch);
    if (used + w > width - 1) break;
    out += ch;
    used += w;
  }
  return `${out}…`;
}

/** SGR escape sequences (colours, bold), which take no room on a terminal. */
const SGR_RE = /\u001b\[[0-9;]*m/g;
/** Code points a terminal shows in zero columns: combining marks, zero-width space/joiners, variation selectors. */
const ZERO_WIDTH_RE = /^[\p{Mn}\p{Me}\u200b-\u200f\ufe00-\ufe0f]$/u;
/** Text made only of printable ASCII characters, each one column wide. */
const PRINTABLE_ASCII_RE = /^[\x20-\x7e]*$/;
/** Emoji shown as a picture: two columns. */
const EMOJI_RE = /^\p{Extended_Pictographic}$/u;

/** The number of terminal columns `text` takes: colour escapes 0, East Asian wide characters and emoji 2. */
export function displayWidth(text: string): number {
  // Nearly every cell is printable ASCII: one column per character (this check alone is ~20× faster than
  // the loop, which is interpreted code in a short-lived rnx: ~8 ms of `rnx list` with 100 jobs).
  if (PRINTABLE_ASCII_RE.test(text)) return text.length;
  let width = 0;
  for (const ch of text.replace(SGR_RE, "")) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x7f) width += cp < 0x20 ? 0 : 1;
    else if (ZERO_WIDTH_RE.test(ch)) continue;
    else width += isWide(cp) || EMOJI_RE.test(ch) ? 2 : 1;
  }
  return width;
}

/** East Asian Wide and Fullwidth code points (the ranges of is-fullwidth-code-point, which wcwidth agrees with). */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) || // Hangul Jamo
    cp === 0x2329 ||
    cp === 0x232a ||
    (cp >= 0x2e80 && cp <= 0x303e) || // CJK radicals and punctuation
    (cp >= 0x3041 && cp <= 0x33ff) || // kana, CJK compatibility
    (cp >= 0x3400 && cp <= 0x4dbf) || // CJK extension A
    (cp >= 0x4e00 && cp <= 0x9fff) || // CJK unified ideographs
    (cp >= 0xa000 && cp <= 0xa4cf) || // Yi
    (cp >= 0xa960 && cp <= 0xa97f) || // Hangul Jamo extended A
    (cp >= 0xac00 && cp <= 0xd7a3) || // Hangul syllables
    (cp >= 0xf900 && cp <= 0xfaff) || // CJK compatibility ideographs
    (cp >= 0xfe10 && cp <= 0xfe19) || // vertical forms
    (cp >= 0xfe30 && cp <= 0xfe6f) || // CJK compatibility forms
    (cp >= 0xff00 && cp <= 0xff60) || // fullwidth forms
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1b000 && cp <= 0x1b2ff) || // kana supplement
    (cp >= 0x20000 && cp <= 0x3fffd) // CJK extensions B and later
  );
}

/** The short form of a job ID shown in tables: its first 8 characters. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

const STATUS_COLOR: Record<string, number> = { RUNNING: 36, COMPLETED: 32, FAILED: 31, STOPPED: 33 };

/** A status word in its ANSI colour (cyan running, green completed, red failed, yellow stopped). */
export function paintStatus(status: string): string {
  const code = STATUS_COLOR[status];
  return code === undefined ? status : `\u001b[${code}m${status}\u001b[39m`;
}
