// Borderless tables in the style of `docker ps`: a header row and columns separated by spaces. No colour
// unless asked (callers decide from isTTY and NO_COLOR).
import Table from "cli-table3";

/** Spaces between columns. */
export const COLUMN_GAP = 3;

/** Renders `head` and `rows` as text ending in a newline; trailing spaces trimmed. */
export function plainTable(head: readonly string[], rows: readonly string[][], color: boolean): string {
  const table = new Table({
    head: [...head],
    chars: {
      top: "", "top-mid": "", "top-left": "", "top-right": "", bottom: "", "bottom-mid": "", "bottom-left": "",
      "bottom-right": "", left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "",
      middle: " ".repeat(COLUMN_GAP),
    },
    style: { head: color ? ["bold"] : [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  table.push(...rows.map((r) => [...r]));
  return `${table.toString().split("\n").map((l) => l.trimEnd()).join("\n")}\n`;
}
