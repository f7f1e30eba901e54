// Turns a failed gRPC call into a JobletError that says what happened, with the address, node and file
// involved, and what to do. Connection and TLS failures are diagnosed from the error text (grpc/connection.ts
// writes "[CODE] message" of the socket or TLS error, or says how far the connection got; grpc-js's texts are
// understood too) plus what the config's own certificates show (expired, not issued by the configured CA).
import { JobletError, type ErrorCode } from "../shared/errors.js";
import { certFacts, isIssuedBy } from "./cert-facts.js";
import type { Target } from "./target.js";
import { GrpcStatus } from "./grpc/status.js";

/** The fields of a failed call this module reads (grpc/status.ts's RpcError, or a grpc-js ServiceError). */
export interface RpcFailure {
  readonly code: number;
  readonly details: string;
  /** Trailing metadata; the daemon puts its hint in "joblet-hint". */
  readonly metadata?: { get(key: string): unknown[] };
}

/** The trailing-metadata key under which the daemon sends a JobletError's hint. */
export const HINT_METADATA_KEY = "joblet-hint";


/** The RPCs that need the admin role; the others are open to viewers too. */
const ADMIN_RPCS = new Set(["RunJob", "RunJobWithUploads", "StopJob", "DeleteJob"]);

/** True for a value shaped like a failed call (RpcError or grpc-js ServiceError). */
export function isRpcFailure(err: unknown): err is RpcFailure {
  return (
    typeof err === "object" &&
    err !== null &&
    typeof (err as RpcFailure).code === "number" &&
    typeof (err as RpcFailure).details === "string"
  );
}

/** The JobletError for a failed call of `rpc` (e.g. "RunJob") against `target`; the daemon's own hint wins. */
export function rpcError(err: RpcFailure, rpc: string, target: Target): JobletError {
  const local = classify(err, rpc, target);
  const serverHint = err.metadata?.get(HINT_METADATA_KEY)[0];
  if (typeof serverHint !== "string" || serverHint === "" || local.code === "UNAVAILABLE") return local;
  return new JobletError(local.code, local.message, { hint: serverHint, cause: err });
}

function classify(err: RpcFailure, rpc: string, target: Target): JobletError {
  const details = err.details || "(no details)";
  const where = `joblet at ${target.address}`;
  switch (err.code) {
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.OUT_OF_RANGE:
      return new JobletError("INVALID_ARGUMENT", `${where} refused ${rpc}: ${details}`, {
        hint: /ambiguous|matches/i.test(details) ? "give more characters of the job ID" : undefined,
        cause: err,
      });
    case GrpcStatus.NOT_FOUND:
      return new JobletError("NOT_FOUND", `${details} (on ${where})`, {
        hint: `\`rnx list\` shows the jobs on node "${target.node.name}"`,
        cause: err,
      });
    case GrpcStatus.PERMISSION_DENIED:
    case GrpcStatus.UNAUTHENTICATED:
      return permissionError(err, rpc, target);
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return new JobletError("RESOURCE_EXHAUSTED", `${where} refused ${rpc}: ${details}`, {
        hint: "wait for running jobs to finish or stop some (`rnx list`, `rnx stop ID`)",
        cause: err,
      });
    case GrpcStatus.FAILED_PRECONDITION:
    case GrpcStatus.ABORTED:
    case GrpcStatus.ALREADY_EXISTS:
      return new JobletError(codeName(err.code), `${where} refused ${rpc}: ${details}`, { cause: err });
    case GrpcStatus.UNIMPLEMENTED:
      return new JobletError("FAILED_PRECONDITION", `${where} does not implement ${rpc}: ${details}`, {
        hint: "the server runs a different Joblet version; upgrade the server or use a matching rnx",
        cause: err,
      });
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.DEADLINE_EXCEEDED:
      return connectionError(err, rpc, target);
    default:
      return new JobletError("INTERNAL", `${where} failed ${rpc}: ${details}`, {
        hint: "this is a server-side error; the daemon's log has the details",
        cause: err,
      });
  }
}

function codeName(code: number): ErrorCode {
  if (code === GrpcStatus.ALREADY_EXISTS) return "ALREADY_EXISTS";
  return "FAILED_PRECONDITION";
}

function permissionError(err: RpcFailure, rpc: string, target: Target): JobletError {
  const facts = certFacts(target.node.certPem);
  const ou = facts?.organizationalUnits.length ? facts.organizationalUnits.join(",") : "none";
  const role = facts?.role ?? "no role";
  const needs = ADMIN_RPCS.has(rpc) ? "admin" : "admin or viewer";
  return new JobletError(
    "PERMISSION_DENIED",
    `permission denied for ${rpc} on joblet at ${target.address}: ${err.details}\n` +
      `  node "${target.node.name}" uses a certificate with role ${role} (OU=${ou}); ${rpc} needs role ${needs}`,
    { hint: `use a node whose certificate has role ${needs.split(" ")[0]}: --node NAME (see \`rnx nodes\`)`, cause: err },
  );
}

/**
 * UNAVAILABLE covers everything from "nothing listens there" to a failed handshake; `details` holds the
 * socket or TLS error's text (grpc-js's form: "No connection established. Last error: Error: <text>").
 */
function connectionError(err: RpcFailure, rpc: string, target: Target): JobletError {
  const d = err.details;
  const head = `cannot reach joblet at ${target.address} (${target.addressSource})`;
  const host = target.address.replace(/:\d+$/, "");
  const say = (what: string, hint: string) => new JobletError("UNAVAILABLE", `${head}: ${what}`, { hint, cause: err });

  if (err.code === GrpcStatus.DEADLINE_EXCEEDED) {
    return say(`no answer to ${rpc} in time`, "check that the address is right and that no firewall drops the traffic");
  }
  if (/ECONNREFUSED/.test(d)) {
    return say("connection refused (nothing listens on that port)", "start the daemon (`joblet --config FILE`) or check the port");
  }
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/.test(d)) {
    return say(`cannot resolve host name "${host}"`, "check the address in the config, or override it with --server HOST:PORT");
  }
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(d)) {
    return say(`no route or no answer (${d.match(/E[A-Z]+/)?.[0]})`, "check the address, the network and any firewall");
  }
  if (/self[- ]signed certificate|unable to verify|unable to get (local )?issuer|UNABLE_TO_VERIFY/i.test(d)) {
    return say(
      "TLS: the server's certificate is not signed by the CA in the config (unknown CA)",
      `the config belongs to another Joblet installation, or the server's certificates were regenerated; get a fresh rnx-config.yml from the server (written by \`joblet init\`) for node "${target.node.name}"`,
    );
  }
  if (/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/.test(d)) {
    // Node names the SANs "altnames" for a host name and "list" (of IP SANs) for an IP target.
    const altnames = /is not in the cert's (?:altnames|list): (.*?)(?:\. Resolution note:.*)?$/.exec(d)?.[1] ?? "";
    const names = altnames.replace(/IP Address:/g, "IP:").trim();
    return say(
      `TLS: the server's certificate is not valid for the name "${host}" (name mismatch${names ? `; it covers ${names}` : ""})`,
      "connect with one of the names the certificate covers (--server NAME:PORT), or regenerate the server certificate with `joblet init --address HOST --names ...`",
    );
  }
  if (/certificate has expired|CERT_HAS_EXPIRED/i.test(d)) {
    return say(
      "TLS: the server's certificate has expired",
      "renew the server's certificates (`joblet init --force` on the server) and distribute the new rnx-config.yml",
    );
  }
  if (/certificate is not yet valid|CERT_NOT_YET_VALID/i.test(d)) {
    return say("TLS: the server's certificate is not valid yet", "check the clocks of this machine and the server");
  }
  if (/connection to the server was lost/.test(d)) {
    const why = /was lost: (.*)$/.exec(d)?.[1];
    return say(`the connection was lost${why ? ` (${lastError(why)})` : ""}`, "check that the daemon still runs (it may have restarted) and try again");
  }
  if (/wrong version number|packet length too long|unknown protocol|ECONNRESET|socket disconnected before secure TLS/i.test(d)) {
    // A daemon that refuses our certificate may also just reset the connection (TLS 1.3 sends no alert):
    // when our own files show why it would, say so.
    const own = visibleClientCertProblem(target);
    if (own) {
      return say(
        `TLS: the server closed the connection; it did not accept the client certificate${own}`,
        "get a client certificate issued by the server's CA: a fresh rnx-config.yml from the server (written by `joblet init`)",
      );
    }
    return say(`the connection failed during the TLS handshake (${lastError(d)})`, "check that the address is a Joblet daemon's port (it speaks TLS only)");
  }
  if (/before HTTP\/2 started|Failed to connect|alert|certificate required|bad certificate|unknown ca/i.test(d)) {
    // The handshake succeeded on our side, then the daemon hung up: it rejected our client certificate.
    // Node's TLS server verifies it after the handshake and just closes the socket, so no alert explains it;
    // what the config's own files show is the best diagnosis available.
    return say(
      `TLS: the server closed the connection; it did not accept the client certificate${clientCertProblem(target)}`,
      "get a client certificate issued by the server's CA: a fresh rnx-config.yml from the server (written by `joblet init`)");
  }
  return say(lastError(d), "check that the daemon runs and the address is right");
}

/** A sentence on what is wrong with the node's own certificate, or a guess when nothing is visibly wrong. */
function clientCertProblem(target: Target): string {
  return visibleClientCertProblem(target) ?? " (it was probably issued by another Joblet installation's CA)";
}

/** What the node's own files show to be wrong with its client certificate, if anything. */
function visibleClientCertProblem(target: Target): string | undefined {
  const facts = certFacts(target.node.certPem);
  const now = Date.now();
  if (facts && facts.notAfter.getTime() < now) return ` (it expired on ${facts.notAfter.toISOString()})`;
  if (facts && facts.notBefore.getTime() > now) return ` (it is valid only from ${facts.notBefore.toISOString()})`;
  if (isIssuedBy(target.node.certPem, target.node.caPem) === false) {
    return ` (node "${target.node.name}" in ${target.configFile} has a client certificate not issued by its own ca: the file mixes two installations)`;
  }
  return undefined;
}

/** grpc-js's "No connection established. Last error: Error: X. Resolution note: " → "X"; "[CODE] X" → "X (CODE)". */
function lastError(details: string): string {
  const m = /Last error: (?:Error(?: \[[A-Z_]+\])?: )?(.*?)\.? Resolution note:/.exec(details);
  if (m) return m[1]!;
  const coded = /^(?:.*?: )?\[([A-Z0-9_]+)\] (.*)$/.exec(details);
  return coded ? `${coded[2]} (${coded[1]})` : details;
}
