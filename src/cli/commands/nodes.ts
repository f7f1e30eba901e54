// `rnx nodes`: every node in the config, the default marked, its address and a summary of its client
// certificate (subject, role, expiry). Certificates and keys are never printed. `--check` contacts each node
// and reports whether it answers, how fast, and with which role.
import { loadRnxConfig, type RnxNode } from "../../shared/config/rnx.js";
import { isJobletError } from "../../shared/errors.js";
import { certFacts, isIssuedBy, type CertFacts } from "../cert-facts.js";
import { ExitCode } from "../exit-codes.js";
import { useColor, writeAll, type CliIo } from "../io.js";
import { plainTable } from "../table.js";
import { DEFAULT_NODE, type GlobalOptions } from "../target.js";

/** `rnx nodes`'s own flags. */
export interface NodesFlags {
  readonly json?: boolean;
  readonly check?: boolean;
  /** Only the names, one per line (for scripts and shell completion). */
  readonly quiet?: boolean;
}

/** A certificate summary as `rnx nodes --json` prints it. */
export interface CertSummaryJson {
  subject: string;
  role: string | null;
  notBefore: string;
  notAfter: string;
  expired: boolean;
  serial: string;
  fingerprint256: string;
}

/** One node as `rnx nodes --json` prints it. */
export interface NodeJson {
  name: string;
  default: boolean;
  address: string;
  /** null when the PEM in the config cannot be parsed. */
  cert: CertSummaryJson | null;
  /** The CA certificate the node trusts. */
  ca: CertSummaryJson | null;
  /** False when the client certificate was not issued by the node's CA (a config mixing installations). */
  certIssuedByCa: boolean | null;
  /** Only with --check. */
  check?: { reachable: boolean; latencyMs: number | null; jobs: number | null; error: string | null };
}

/** Lists the nodes; with `check`, contacts each. Resolves with rnx's exit code (3 if a checked node failed). */
export async function nodesCommand(flags: NodesFlags, globals: GlobalOptions, io: CliIo): Promise<number> {
  const config = loadRnxConfig(globals.config);
  if (flags.quiet) {
    await writeAll(io.stdout, config.nodes.map((n) => `${n.name}\n`).join(""));
    return ExitCode.OK;
  }
  const selected = globals.node ?? DEFAULT_NODE;
  const nowMs = Date.now();
  const nodes: NodeJson[] = config.nodes.map((n) => ({
    name: n.name,
    default: n.name === selected,
    address: n.address,
    cert: summary(certFacts(n.certPem), nowMs),
    ca: summary(certFacts(n.caPem), nowMs),
    certIssuedByCa: isIssuedBy(n.certPem, n.caPem) ?? null,
  }));
  if (flags.check) {
    const results = await Promise.all(config.nodes.map((n) => checkNode(n, config.file)));
    results.forEach((r, i) => (nodes[i]!.check = r));
  }
  if (flags.json) {
    await writeAll(io.stdout, `${JSON.stringify(nodes, null, 2)}\n`);
  } else {
    await writeAll(io.stdout, renderNodes(nodes, config.file, useColor(io.stdout, io.env), nowMs));
  }
  return flags.check && nodes.some((n) => !n.check?.reachable) ? ExitCode.CONNECTION : ExitCode.OK;
}

/** The nodes as a table, with the config file named above it. */
export function renderNodes(nodes: readonly NodeJson[], file: string, color: boolean, nowMs: number): string {
  const checked = nodes.some((n) => n.check);
  const head = ["", "NAME", "ADDRESS", "ROLE", "SUBJECT", "EXPIRES", ...(checked ? ["CHECK"] : [])];
  const rows = nodes.map((n) => [
    n.default ? "*" : "",
    n.name,
    n.address,
    n.cert?.role ?? (n.cert ? "none" : "?"),
    n.cert?.subject ?? "unreadable certificate",
    n.cert ? expiry(n.cert, nowMs) : "-",
    ...(checked ? [checkText(n)] : []),
  ]);
  const warnings = nodes
    .filter((n) => n.certIssuedByCa === false)
    .map((n) => `warning: node "${n.name}": its client certificate was not issued by its ca (the file mixes two installations)\n`);
  return `config: ${file}   (* = the node used without --node)\n${plainTable(head, rows, color)}${warnings.join("")}`;
}

function summary(facts: CertFacts | undefined, nowMs: number): CertSummaryJson | null {
  if (!facts) return null;
  return {
    subject: facts.subject,
    role: facts.role ?? null,
    notBefore: facts.notBefore.toISOString(),
    notAfter: facts.notAfter.toISOString(),
    expired: facts.notAfter.getTime() < nowMs,
    serial: facts.serial,
    fingerprint256: facts.fingerprint256,
  };
}

const DAY_MS = 86_400_000;

function expiry(cert: CertSummaryJson, nowMs: number): string {
  const days = Math.floor((Date.parse(cert.notAfter) - nowMs) / DAY_MS);
  const date = cert.notAfter.slice(0, 10);
  if (days < 0) return `${date} (EXPIRED)`;
  return `${date} (${days} days)`;
}

function checkText(n: NodeJson): string {
  const c = n.check;
  if (!c) return "-";
  if (c.reachable) return `ok ${c.latencyMs} ms${c.jobs === null ? "" : `, ${c.jobs} jobs`}`;
  return `FAILED: ${c.error}`;
}

/** Calls ListJobs (allowed to both roles) and times it, TLS handshake included. */
async function checkNode(node: RnxNode, file: string): Promise<NonNullable<NodeJson["check"]>> {
  const { RnxClient } = await import("../client.js");
  const client = new RnxClient({ configFile: file, node, address: node.address, addressSource: `node "${node.name}" in ${file}` });
  const startMs = performance.now();
  try {
    const jobs = await client.listJobs();
    return { reachable: true, latencyMs: Math.round(performance.now() - startMs), jobs: jobs.length, error: null };
  } catch (err) {
    // Permission denied still proves the daemon answered; anything else means it did not.
    const answered = isJobletError(err, "PERMISSION_DENIED");
    const text = isJobletError(err) ? err.message.replace(/^cannot reach joblet at \S+ \([^)]*\): /, "") : String(err);
    return { reachable: answered, latencyMs: answered ? Math.round(performance.now() - startMs) : null, jobs: null, error: text.split("\n")[0]! };
  } finally {
    client.close();
  }
}
