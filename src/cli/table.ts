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

/**
 * Renders `head` and `rows` as text ending in a newline; trailing spaces trimmed; one line per row. Each
 * cell is measured once: with 10,000 jobs this runs 50,000 cells through code that never gets optimised in
 * a short-lived rnx.
 */
export function plainTable(head: readonly string[], rows: readonly (readonly string[])[], color: boolean): string {
  const all = [head, ...rows].map((r) => r.map((cell) => (HAS_LINE_BREAKING_RE.test(cell) ? cell.replace(LINE_BREAKING_RE, " ") : cell)));
  const cellWidths = all.map((r) => r.map(displayWidth));
  // Loops, not Math.max(...spread): a list of many thousand jobs would exceed the argument limit.
  const widths: number[] = [];
  for (const r of cellWidths) for (let c = 0; c < r.length; c++) widths[c] = Math.max(widths[c] ?? 0, r[c]!);
  const lines = all.map((cells, i) => {
    const bold = i === 0 && color;
    let text = "";
    for (let c = 0; c < cells.length; c++) {
      text += bold ? `\u001b[1m${cells[c]}\u001b[22m` : cells[c];
      if (c < cells.length - 1) text += " ".repeat(widths[c]! - cellWidths[i]![c]! + COLUMN_GAP);
    }
    return text.trimEnd();
  });
  return `${lines.join("\n")}\n`;
}
