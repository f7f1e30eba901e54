// Which daemon a command talks to, and with which credentials: the config file, the node in it, and an
// optional address override (--server, then $JOBLET_SERVER) that keeps the node's certificates.
import { invalidArgument } from "../shared/errors.js";
import { loadRnxConfig, selectNode, type RnxNode } from "../shared/config/rnx.js";

/** The options every command accepts, before or after its name. */
export interface GlobalOptions {
  readonly config?: string;
  readonly node?: string;
  readonly server?: string;
}

/** The node used when --node is not given. */
export const DEFAULT_NODE = "default";

/** A resolved daemon to talk to. */
export interface Target {
  /** The config file the node came from. */
  readonly configFile: string;
  readonly node: RnxNode;
  /** "host:port" actually dialled: the override if given, else the node's address. */
  readonly address: string;
  /** Where `address` came from, for messages. */
  readonly addressSource: string;
}

const ADDRESS_RE = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]/]+):(\d{1,5})$/;

/** Checks a "host:port" (IPv6 in brackets) given on the command line or in the environment. */
export function parseServerAddress(field: string, text: string): string {
  const m = ADDRESS_RE.exec(text.trim());
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw invalidArgument(field, 'a server address "host:port" (e.g. "joblet.example.com:50051" or "[::1]:50051")', text);
  }
  return text.trim();
}

/** Loads the config, picks the node and applies an address override. */
export function resolveTarget(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Target {
  // The override is checked first: a typo there is reported even when the config is also missing.
  let override: { address: string; source: string } | undefined;
  if (opts.server !== undefined) override = { address: parseServerAddress("--server", opts.server), source: "--server" };
  else if (env.JOBLET_SERVER) {
    override = { address: parseServerAddress("JOBLET_SERVER", env.JOBLET_SERVER), source: "$JOBLET_SERVER" };
  }
  const config = loadRnxConfig(opts.config);
  const node = selectNode(config, opts.node ?? DEFAULT_NODE);
  return {
    configFile: config.file,
    node,
    address: override?.address ?? node.address,
    addressSource: override?.source ?? `node "${node.name}" in ${config.file}`,
  };
}
