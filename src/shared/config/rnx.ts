// The CLI's config file (rnx-config.yml): `version: "3.0"` and named nodes, each with an address and the
// client's PEM credentials. Compatible with the reference implementation's format.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { JobletError, describeValue } from "../errors.js";
import { parseSimpleYaml } from "./rnx-yaml.js";

// Validation is written out by hand rather than with the zod schema the daemon's config uses: rnx loads this
// on every command, and zod is most of the bundle's size and a good part of its start-up time. The messages
// keep the shape configError gives the daemon's: "key: expected …, got …", unknown keys named in full.

/** Where rnx looks for its config when --config is not given, in order. */
export function rnxConfigSearchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    ...(env.RNX_CONFIG ? [env.RNX_CONFIG] : []),
    "./rnx-config.yml",
    "./config/rnx-config.yml",
    join(homedir(), ".rnx", "rnx-config.yml"),
    "/etc/joblet/rnx-config.yml",
    "/opt/joblet/config/rnx-config.yml",
  ];
}

/** "host:port", the host a name or an IPv4 address or an IPv6 address in brackets. */
const ADDRESS_RE = /^(\[[0-9a-fA-F:]+\]|[^\s:[\]]+):\d{1,5}$/;
const TOP_KEYS = ["version", "nodes"];
const NODE_KEYS = ["address", "cert", "key", "ca"];
const UNKNOWN_KEY = "unknown key (not a Joblet setting; remove it or check its spelling)";

/** One daemon the CLI can talk to, with the credentials to use. */
export interface RnxNode {
  readonly name: string;
  readonly address: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
}

/** The CLI config, validated; frozen. */
export interface RnxConfig {
  readonly file: string;
  readonly nodes: readonly RnxNode[];
}

/** Validates parsed YAML. `file` is used in messages only. Every problem is reported at once, one per line. */
export function parseRnxConfig(raw: unknown, file: string): RnxConfig {
  const problems: string[] = [];
  const expected = (key: string, what: string, given: unknown) => problems.push(`${key}: expected ${what}, got ${describeValue(given)}`);
  const top = raw ?? {};
  if (!isMapping(top)) {
    expected("(top level)", 'a mapping with the keys "version" and "nodes"', top);
    throw invalidConfig(file, problems);
  }
  if (top.version !== "3.0") expected("version", '"3.0"', top.version);
  const nodes: RnxNode[] = [];
  if (!isMapping(top.nodes)) expected("nodes", "a mapping of node names to nodes (address, cert, key, ca)", top.nodes);
  else if (Object.keys(top.nodes).length === 0) expected("nodes", "at least one node", top.nodes);
  else {
    for (const [name, node] of Object.entries(top.nodes)) {
      const at = `nodes.${name}`;
      if (name === "") expected(at, "a node name that is not empty", name);
      else if (!isMapping(node)) expected(at, "a mapping with the keys address, cert, key and ca", node);
      else {
        const address = node.address;
        if (typeof address !== "string" || !ADDRESS_RE.test(address)) expected(`${at}.address`, '"host:port"', address);
        const pem = (key: string, kind: string) => {
          const v = node[key];
          if (typeof v !== "string" || !v.includes("-----BEGIN ") || !v.includes(kind)) expected(`${at}.${key}`, `a PEM-encoded ${kind}`, v);
        };
        pem("cert", "CERTIFICATE");
        pem("key", "PRIVATE KEY");
        pem("ca", "CERTIFICATE");
        unknownKeys(node, NODE_KEYS, `${at}.`, problems);
        nodes.push({ name, address: String(address), certPem: String(node.cert), keyPem: String(node.key), caPem: String(node.ca) });
      }
    }
  }
  unknownKeys(top, TOP_KEYS, "", problems);
  if (problems.length > 0) throw invalidConfig(file, problems);
  for (const node of nodes) Object.freeze(node);
  return Object.freeze({ file, nodes: Object.freeze(nodes) });
}

/** Reads the config at `file`, or the first on the search path. */
export function loadRnxConfig(file?: string): RnxConfig {
  const candidates = file ? [file] : rnxConfigSearchPath();
  const found = candidates.find((f) => existsSync(f));
  if (!found) {
    throw new JobletError(
      "NOT_FOUND",
      file ? `config file ${file} does not exist` : `no rnx config found (looked in ${candidates.join(", ")})`,
      { hint: "get rnx-config.yml from the server (written by `joblet init`) and pass it with --config, or run `rnx config-help`" },
    );
  }
  let raw: unknown;
  try {
    const text = readFileSync(found, "utf8");
    // The yaml package only for what the fast path leaves to it (rnx-yaml.ts): both give the same value.
    raw = parseSimpleYaml(text) ?? parseYaml(text);
  } catch (err) {
    throw new JobletError("INVALID_ARGUMENT", `config ${found} is not valid YAML: ${(err as Error).message}`);
  }
  return parseRnxConfig(raw, found);
}

/** The named node, or NOT_FOUND listing the names that exist. */
export function selectNode(config: RnxConfig, name: string): RnxNode {
  const node = config.nodes.find((n) => n.name === name);
  if (!node) {
    throw new JobletError(
      "NOT_FOUND",
      `node "${name}" is not in ${config.file} (nodes: ${config.nodes.map((n) => n.name).join(", ")})`,
      { hint: "pick one with --node NAME" },
    );
  }
  return node;
}

/** True for a YAML mapping (a plain object; not null, not a list). */
function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Adds one line naming every key of `obj` not in `known`, with its full path. */
function unknownKeys(obj: Record<string, unknown>, known: readonly string[], prefix: string, problems: string[]): void {
  const extra = Object.keys(obj).filter((k) => !known.includes(k));
  if (extra.length > 0) problems.push(`${extra.map((k) => prefix + k).join(", ")}: ${UNKNOWN_KEY}`);
}

function invalidConfig(file: string, problems: readonly string[]): JobletError {
  return new JobletError("INVALID_ARGUMENT", `invalid config ${file}:\n  ${problems.join("\n  ")}`);
}
