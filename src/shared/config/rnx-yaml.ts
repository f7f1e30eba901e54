// rnx-config.yml's fast path: the small part of YAML that `joblet init` and the yaml package's stringify write
// for it (block mappings of simple keys, double-quoted strings without escapes, plain strings, `|` and `|-`
// literal blocks, comments), read line by line. Anything else, and anything doubtful, is "not simple":
// parseSimpleYaml returns undefined and the caller parses the text with the yaml package, so every file the
// yaml package accepts reads exactly as before (rnx-yaml.test.ts checks that both agree on every text this
// accepts: the configs rnx meets and thousands of mutations of them).
//
// Why: the yaml package took ~5 ms (and most of a ~5 ms GC scavenge) of `rnx list`'s ~50 ms of its own
// start-up on the 2-core VM; this takes well under 1 ms for a two-node config.

/** Only printable ASCII and newlines: no tabs, CRs, BOM or other characters YAML treats specially. */
const SIMPLE_TEXT_RE = /^[\x20-\x7e\n]*$/;
/** A mapping key and what follows its colon (nothing, or a space and more). */
const KEY_RE = /^([A-Za-z_][A-Za-z0-9_-]*):(?=$| )(.*)$/;
/** A plain (unquoted) scalar made only of characters that can never start or change YAML syntax. */
const PLAIN_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
/** Plain words the YAML 1.1 or 1.2 core schemas read as booleans or null rather than strings. */
const NOT_A_STRING_RE = /^(?:true|false|null|yes|no|on|off|y|n)$/i;
/** After a value: trailing spaces and an optional comment (which YAML wants after at least one space). */
const VALUE_END_RE = /^(?: +#.*)? *$/;

/** Thrown inside the parser when the text leaves the simple subset; never escapes parseSimpleYaml. */
class NotSimple extends Error {}

/**
 * The value the yaml package's `parse` would give for `text` when `text` is a mapping written in the simple
 * subset (above), else undefined (including for an empty document). Never throws.
 */
export function parseSimpleYaml(text: string): Record<string, unknown> | undefined {
  if (!SIMPLE_TEXT_RE.test(text)) return undefined;
  try {
    const top = new LineReader(text.split("\n")).mapping(0);
    return Object.keys(top).length > 0 ? top : undefined;
  } catch {
    // NotSimple, or anything unforeseen (a stack overflow on absurd nesting): the yaml package decides.
    return undefined;
  }
}

class LineReader {
  private i = 0;

  constructor(private readonly lines: readonly string[]) {}

  /** The block mapping whose keys are at `indent` spaces, up to the first line indented less (or the end). */
  mapping(indent: number): Record<string, unknown> {
    const map: Record<string, unknown> = {};
    for (;;) {
      const at = this.nextContentIndent();
      if (at < indent) return map;
      if (at > indent) throw new NotSimple();
      const m = KEY_RE.exec(this.lines[this.i++]!.slice(indent));
      if (!m || NOT_A_STRING_RE.test(m[1]!) || m[1] === "__proto__" || Object.hasOwn(map, m[1]!)) throw new NotSimple();
      map[m[1]!] = this.value(indent, m[2]!.trimStart());
    }
  }

  /** The value after "key:" on a line indented `indent`; `rest` is the line's text after the colon. */
  private value(indent: number, rest: string): unknown {
    if (rest === "" || rest.startsWith("#")) {
      // A nested mapping, which must be indented further (an empty value is null in YAML: not simple).
      const at = this.nextContentIndent();
      if (at <= indent) throw new NotSimple();
      return this.mapping(at);
    }
    if (rest.startsWith('"')) {
      const close = rest.indexOf('"', 1);
      const body = rest.slice(1, close);
      if (close < 0 || body.includes("\\") || !VALUE_END_RE.test(rest.slice(close + 1))) throw new NotSimple();
      return body;
    }
    if (rest.startsWith("|")) {
      const strip = rest.startsWith("|-");
      if (!VALUE_END_RE.test(rest.slice(strip ? 2 : 1))) throw new NotSimple();
      return this.literal(indent, strip);
    }
    const space = rest.indexOf(" ");
    const word = space < 0 ? rest : rest.slice(0, space);
    const isString = word.includes(":") ? !word.endsWith(":") : /^[A-Za-z]/.test(word) && !NOT_A_STRING_RE.test(word);
    if (!PLAIN_RE.test(word) || !isString || !VALUE_END_RE.test(rest.slice(word.length))) throw new NotSimple();
    return word;
  }

  /**
   * A literal block scalar after a key indented `indent`: its lines, less their common indentation (that of
   * the first), joined with "\n", ending in one "\n" (`|`) or none (`|-`). Empty lines may only follow it.
   */
  private literal(indent: number, strip: boolean): string {
    const out: string[] = [];
    let blockIndent = -1;
    let blankSeen = false;
    for (; this.i < this.lines.length; this.i++) {
      const line = this.lines[this.i]!;
      if (line === "") {
        blankSeen = true;
        continue;
      }
      const at = indentOf(line);
      if (at === line.length) throw new NotSimple();
      if (blockIndent < 0) {
        if (at <= indent) throw new NotSimple();
        blockIndent = at;
      }
      if (at < blockIndent) break;
      if (blankSeen) throw new NotSimple();
      out.push(line.slice(blockIndent));
    }
    if (out.length === 0) throw new NotSimple();
    return strip ? out.join("\n") : `${out.join("\n")}\n`;
  }

  /**
   * Skips empty lines and comment lines; returns the indentation of the next line with content, -1 at the
   * end. A line of only spaces is not simple.
   */
  private nextContentIndent(): number {
    for (; this.i < this.lines.length; this.i++) {
      const line = this.lines[this.i]!;
      if (line === "") continue;
      const at = indentOf(line);
      if (at === line.length) throw new NotSimple();
      if (line[at] !== "#") return at;
    }
    return -1;
  }
}

/** The number of leading spaces of `line`. */
function indentOf(line: string): number {
  let n = 0;
  while (line.charCodeAt(n) === 32) n++;
  return n;
}
