// Borderless tables in the style of `docker ps`: a header row and columns separated by spaces. No colour
// unless asked (callers decide from isTTY and NO_COLOR).
//
// Written out rather than with cli-table3: that package measured 150 ms to render a 100-row `rnx list` (it
// measures every cell with a large emoji regex and word-wraps), more than the rest of rnx's start-up.
import { displayWidth } from "./format.js";

/** Spaces between columns. */
export const COLUMN_GAP = 3;

/** Control characters other than ESC (kept for colours), which would break a row over lines. */
const LINE_BREAKING_RE = /[\u0000-\u001a\u001c-\u001f\u007f]/g;
/** The same, to test a cell without building a new string (nearly no cell holds one). */
const HAS_LINE_BREAKING_RE = /[\u0000-\u001a\u001c-\u001f\u007f]/;

/** Runs of spaces by length, made once each: a table of 10,000 rows needs only a few dozen lengths. */
const PADS: string[] = [];

/**
 * Renders `head` and `rows` as text ending in a newline; trailing spaces trimmed; one line per row. Each
 * cell is cleaned and measured once into flat arrays, and the text is built in one pass: with 10,000 jobs
 * this runs 50,000 cells through code that never gets optimised in a short-lived rnx.
 */
export function plainTable(head: readonly string[], rows: readonly (readonly string[])[], color: boolean): string {
  let cols = head.length;
  for (const r of rows) cols = Math.max(cols, r.length);
  const count = rows.length + 1;
  const cells: string[] = new Array<string>(count * cols);
  const cellWidths = new Uint32Array(count * cols);
  const widths = new Uint32Array(cols);
  for (let i = 0; i < count; i++) {
    const r = i === 0 ? head : rows[i - 1]!;
    for (let c = 0; c < cols; c++) {
      let cell = r[c] ?? "";
      if (HAS_LINE_BREAKING_RE.test(cell)) cell = cell.replace(LINE_BREAKING_RE, " ");
      const w = displayWidth(cell);
      cells[i * cols + c] = cell;
      cellWidths[i * cols + c] = w;
      if (w > widths[c]!) widths[c] = w;
    }
  }
  let out = "";
  for (let i = 0; i < count; i++) {
    const bold = i === 0 && color;
    let line = "";
    for (let c = 0; c < cols; c++) {
      const cell = cells[i * cols + c]!;
      line += bold ? `\u001b[1m${cell}\u001b[22m` : cell;
      if (c < cols - 1) {
        const n = widths[c]! - cellWidths[i * cols + c]! + COLUMN_GAP;
        line += PADS[n] ??= " ".repeat(n);
      }
    }
    out += `${line.trimEnd()}\n`;
  }
  return out;
}
