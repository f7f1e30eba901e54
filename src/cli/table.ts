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

/** Renders `head` and `rows` as text ending in a newline; trailing spaces trimmed; one line per row. */
export function plainTable(head: readonly string[], rows: readonly (readonly string[])[], color: boolean): string {
  const all = [head, ...rows].map((r) => r.map((cell) => cell.replace(LINE_BREAKING_RE, " ")));
  // Loops, not Math.max(...spread): a list of many thousand jobs would exceed the argument limit.
  const widths: number[] = [];
  for (const r of all) r.forEach((cell, c) => (widths[c] = Math.max(widths[c] ?? 0, displayWidth(cell))));
  const line = (cells: readonly string[], bold: boolean) =>
    cells
      .map((cell, c) => {
        const text = bold ? `\u001b[1m${cell}\u001b[22m` : cell;
        return c === cells.length - 1 ? text : text + " ".repeat(widths[c]! - displayWidth(cell) + COLUMN_GAP);
      })
      .join("")
      .trimEnd();
  return `${all.map((r, i) => line(r, i === 0 && color)).join("\n")}\n`;
}
