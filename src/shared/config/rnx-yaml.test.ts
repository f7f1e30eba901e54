import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import { parse as parseYaml, stringify } from "yaml";
import { CONFIG_HELP } from "../../cli/commands/config-help.js";
import { rnxConfigYaml, sharedPki } from "../../cli/test-support/fake-daemon.js";
import { runInit } from "../../daemon/init/init.js";
import { parseSimpleYaml } from "./rnx-yaml.js";

const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";

/**
 * The property the fast path must keep: on any text it accepts, it gives what the yaml package's parse gives
 * (and yaml accepts the text). Returns whether the fast path accepted it.
 */
function agreesWithYaml(text: string): boolean {
  const fast = parseSimpleYaml(text);
  if (fast === undefined) return false;
  let slow: unknown;
  try {
    slow = parseYaml(text);
  } catch (err) {
    assert.fail(`the fast path read text that yaml refuses (${(err as Error).message}): ${JSON.stringify(text)}`);
  }
  assert.deepStrictEqual(fast, slow, JSON.stringify(text));
  return true;
}

/** A small deterministic PRNG (mulberry32), so a failure reproduces. */
function random(seed: number): (n: number) => number {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Pieces of YAML syntax (and near-misses) that mutations insert. */
const FRAGMENTS = [
  " ", "  ", "\n", "\n\n", "\t", "\r", ":", ": ", " #c", "#", "|", "|-", "|+", "|2", ">", '"', "'", "\\", "- ", "? ",
  "&a ", "*a", "!!str ", "!", "{", "}", "[", "]", ",", "---\n", "...\n", "%YAML 1.1\n", "<<: ", "~", "null", "true",
  "No", "y", "1:30", "0x10", "1e3", ".inf", "a:", "a::b", "__proto__", "\u00e9", "\ufeff", "x: 1\n", "  y: |\n    z\n",
];

/** `text` changed by 1 to 3 random edits: characters, fragments, lines duplicated, dropped or re-indented. */
function mutate(text: string, rnd: (n: number) => number): string {
  let out = text;
  for (let k = 1 + rnd(3); k > 0; k--) {
    const lines = out.split("\n");
    const li = rnd(lines.length);
    const at = rnd(out.length + 1);
    switch (rnd(7)) {
      case 0:
        out = out.slice(0, at) + FRAGMENTS[rnd(FRAGMENTS.length)] + out.slice(at);
        break;
      case 1:
        out = out.slice(0, at) + out.slice(at + 1 + rnd(3));
        break;
      case 2:
        out = out.slice(0, at) + String.fromCharCode(32 + rnd(95)) + out.slice(at + 1);
        break;
      case 3:
        lines.splice(li, 0, lines[li]!);
        out = lines.join("\n");
        break;
      case 4:
        lines.splice(li, 1);
        out = lines.join("\n");
        break;
      case 5: {
        const d = 1 + rnd(3);
        lines[li] = rnd(2) ? " ".repeat(d) + lines[li] : lines[li]!.replace(new RegExp(`^ {1,${d}}`), "");
        out = lines.join("\n");
        break;
      }
      default: {
        // Swap two lines.
        const lj = rnd(lines.length);
        [lines[li], lines[lj]] = [lines[lj]!, lines[li]!];
        out = lines.join("\n");
      }
    }
  }
  return out;
}

describe("parseSimpleYaml", () => {
  /** The configs rnx meets: `joblet init`'s, yaml.stringify's (tests, older tools), config-help's example. */
  const corpus: string[] = [];
  before(async () => {
    const pki = await sharedPki();
    for (const address of ["localhost:50051", "127.0.0.1:1", "[::1]:50051", "joblet.example.com:443"]) corpus.push(rnxConfigYaml(pki, address));
    corpus.push(stringify({ version: "3.0", nodes: { default: { address: "a:1", cert: CERT, key: KEY, ca: CERT } } }));
    corpus.push(stringify({ version: "3.0", nodes: { a: { address: "h:1", cert: CERT.trimEnd(), key: KEY, ca: CERT } } }));
    corpus.push(CONFIG_HELP);
    const dir = mkdtempSync(path.join(os.tmpdir(), "rnx-yaml-test-"));
    try {
      for (const address of ["localhost", "10.1.2.3", "::1"]) {
        const r = await runInit({ dir: path.join(dir, address.replace(/:/g, "_")), address });
        corpus.push(readFileSync(r.rnxConfigFile, "utf8"));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("reads every config of the corpus, as yaml does", () => {
    for (const text of corpus) assert.ok(agreesWithYaml(text), text);
  });

  test("hand-written forms: the subset is read as yaml reads it, the rest is left to yaml", () => {
    const simple = [
      'version: "3.0"\nnodes:\n  a:\n    address: localhost:50051\n',
      'version: "3.0"   # required\nnodes:   # one or more\n\n  a:\n    # where\n    address: "h:1"  \n',
      "a:\n  b: |-\n    x\n    y\n\n\nc: word\n",
      "a: |\n    indented more\n  less\nb: x\n".replace("  less\n", "    less\n"),
      "a: |\n  x\n  # a content line, not a comment\n# a comment\nb: 10.0.0.1:5\n",
      'a: "# not a comment"\nb: 1:30\n',
    ];
    for (const text of simple) assert.ok(agreesWithYaml(text), text);
    const notSimple = [
      "",
      "# only a comment\n",
      "version: 3.0\n",
      "a: true\n",
      "a: null\n",
      "a: y\n",
      "a:\n",
      "a: 1e3\n",
      "a: .inf\n",
      "a: [1, 2]\n",
      "a: {b: 1}\n",
      "a: &x b\nc: *x\n",
      "a: !!str b\n",
      "a: 'single'\n",
      'a: "esc\\"aped"\n',
      "a: b c\n",
      "a: b#c\n",
      "a: |+\n  x\n\n",
      "a: >\n  x\n",
      "a: |\n  x\n\n  y\n",
      "a: |\n  x\n   \n",
      "a: b\na: c\n",
      "a: b\r\n",
      "a:\tb\n",
      "\ufeffa: b\n",
      "- a\n",
      "---\na: b\n",
      "%YAML 1.1\n---\na: 1:30\n",
      "  a: b\n",
      "a:\n  b: 1\n c: 2\n",
      "__proto__: x\n",
      "a: caf\u00e9\n",
      "a: |\n",
    ];
    for (const text of notSimple) assert.equal(parseSimpleYaml(text), undefined, JSON.stringify(text));
  });

  test("agrees with yaml on every mutation of the corpus it accepts (seeded random edits)", () => {
    const rnd = random(20261128);
    let accepted = 0;
    let total = 0;
    for (const text of corpus) {
      for (let n = 0; n < 1500; n++, total++) if (agreesWithYaml(mutate(text, rnd))) accepted++;
    }
    // Not vacuous: a good share of the edits (comments, blank lines, re-ordered keys...) stay in the subset.
    assert.ok(accepted > total / 10, `${accepted} of ${total} mutations accepted`);
  });
});
