// The CLI's config file (rnx-config.yml): `version: "3.0"` and named nodes, each with an address and the
// client's PEM credentials. Compatible with the reference implementation's format.
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { JobletError } from "../errors.js";
import { configError } from "./issues.js";
import { deepFreeze } from "./daemon.js";

/** Where rnx looks for its config when --config is not given, in order. */
export function rnxConfigSearchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    ...(env.RNX_CONFIG ? [env.RNX_CONFIG] : []),
    "./rnx-config.yml",
    "./config/rnx-config.yml",
    path.join(os.homedir(), ".rnx", "rnx-config.yml"),
    "/etc/joblet/rnx-config.yml",
    "/opt/joblet/config/rnx-config.yml",
  ];
}

const pem = (kind: string) =>
  z.string().refine((s) => s.includes("-----BEGIN ") && s.includes(kind), `expected a PEM-encoded ${kind}`);

const nodeSchema = z
  .object({
    address: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^\s:\[\]]+):\d{1,5}$/, 'expected "host:port"'),
    cert: pem("CERTIFICATE"),
    key: pem("PRIVATE KEY"),
    ca: pem("CERTIFICATE"),
  })
  .strict();

const schema = z
  .object({
    version: z.literal("3.0"),
    nodes: z.record(z.string().min(1), nodeSchema).refine((n) => Object.keys(n).length > 0, "expected at least one node"),
  })
  .strict();

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

/** Validates parsed YAML. `file` is used in messages only. */
export function parseRnxConfig(raw: unknown, file: string): RnxConfig {
  const result = schema.safeParse(raw ?? {}, { reportInput: true });
  if (!result.success) throw configError(file, result.error.issues);
  const nodes = Object.entries(result.data.nodes).map(([name, n]) => ({
    name,
    address: n.address,
    certPem: n.cert,
    keyPem: n.key,
    caPem: n.ca,
  }));
  return deepFreeze({ file, nodes });
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
    raw = parseYaml(readFileSync(found, "utf8"));
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
