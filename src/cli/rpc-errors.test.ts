import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import type { ErrorCode } from "../shared/errors.js";
import { generatePki, type Pki } from "../shared/tls/certs.js";
import { ExitCode, exitCodeFor } from "./exit-codes.js";
import { rpcError } from "./rpc-errors.js";
import type { Target } from "./target.js";

let pki: Pki;
let other: Pki;
let target: Target;
before(async () => {
  pki = await generatePki({ address: "localhost" });
  other = await generatePki({ address: "localhost" });
  target = withCert(pki.viewerCertPem, pki.caCertPem, "viewer");
});

function withCert(certPem: string, caPem: string, name = "default"): Target {
  return {
    configFile: "/etc/joblet/rnx-config.yml",
    node: { name, address: "localhost:50051", certPem, keyPem: "unused", caPem },
    address: "localhost:50051",
    addressSource: `node "${name}" in /etc/joblet/rnx-config.yml`,
  };
}

const unavailable = (last: string) => ({ code: 14, details: `No connection established. Last error: ${last}. Resolution note: ` });

describe("gRPC status → message and exit code", () => {
  test("every error code has an exit code; the documented ones are distinct", () => {
    const table: Record<ErrorCode, number> = {
      INVALID_ARGUMENT: 2,
      UNAVAILABLE: 3,
      PERMISSION_DENIED: 4,
      UNAUTHENTICATED: 4,
      NOT_FOUND: 5,
      ALREADY_EXISTS: 1,
      FAILED_PRECONDITION: 1,
      RESOURCE_EXHAUSTED: 1,
      INTERNAL: 1,
    };
    for (const [code, exit] of Object.entries(table)) assert.equal(exitCodeFor(code as ErrorCode), exit, code);
    assert.equal(new Set([ExitCode.USAGE, ExitCode.CONNECTION, ExitCode.PERMISSION, ExitCode.NOT_FOUND]).size, 4);
  });

  test("status codes map to error classes", () => {
    const cases: Array<[number, ErrorCode]> = [
      [3, "INVALID_ARGUMENT"],
      [4, "UNAVAILABLE"],
      [5, "NOT_FOUND"],
      [6, "ALREADY_EXISTS"],
      [7, "PERMISSION_DENIED"],
      [8, "RESOURCE_EXHAUSTED"],
      [9, "FAILED_PRECONDITION"],
      [12, "FAILED_PRECONDITION"],
      [13, "INTERNAL"],
      [2, "INTERNAL"],
      [14, "UNAVAILABLE"],
      [16, "PERMISSION_DENIED"],
    ];
    for (const [grpcCode, code] of cases) assert.equal(rpcError({ code: grpcCode, details: "x" }, "ListJobs", target).code, code, String(grpcCode));
  });

  test("NOT_FOUND keeps the server's message and points at rnx list", () => {
    const e = rpcError({ code: 5, details: 'job "abc" not found' }, "GetJobStatus", target);
    assert.equal(e.message, 'job "abc" not found (on joblet at localhost:50051)');
    assert.match(e.hint!, /rnx list/);
  });

  test("an ambiguous prefix hints at giving more characters", () => {
    const e = rpcError({ code: 3, details: 'id: prefix "a" matches 2 jobs: a1…, a2…' }, "GetJobStatus", target);
    assert.equal(e.code, "INVALID_ARGUMENT");
    assert.match(e.message, /matches 2 jobs/);
    assert.match(e.hint!, /more characters/);
  });

  test("PERMISSION_DENIED names the role from the certificate's OU and the operation", () => {
    const e = rpcError({ code: 7, details: 'role "viewer" may not call RunJob' }, "RunJob", target);
    assert.match(e.message, /permission denied for RunJob on joblet at localhost:50051/);
    assert.match(e.message, /node "viewer" uses a certificate with role viewer \(OU=viewer\); RunJob needs role admin/);
    assert.match(e.hint!, /--node/);
  });

  test("connection refused and unresolvable host say so, with the address and where it came from", () => {
    const refused = rpcError(unavailable("Error: connect ECONNREFUSED 127.0.0.1:50051"), "ListJobs", target);
    assert.equal(refused.code, "UNAVAILABLE");
    assert.match(refused.message, /^cannot reach joblet at localhost:50051 \(node "viewer" in \/etc\/joblet\/rnx-config.yml\): connection refused/);
    const dns = rpcError({ code: 14, details: "Name resolution failed for target dns:nohost.invalid:1" }, "ListJobs", target);
    assert.match(dns.message, /cannot resolve host name "localhost"/);
  });

  test("TLS: unknown CA, name mismatch, expired server certificate are told apart", () => {
    assert.match(rpcError(unavailable("Error: self-signed certificate in certificate chain"), "ListJobs", target).message, /unknown CA/);
    assert.match(rpcError(unavailable("Error: unable to verify the first certificate"), "ListJobs", target).message, /unknown CA/);
    const mismatch = rpcError(
      unavailable(
        "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: wrong.example. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1, DNS:joblet",
      ),
      "ListJobs",
      target,
    );
    assert.match(mismatch.message, /name mismatch; it covers DNS:localhost, IP:127.0.0.1, DNS:joblet\)/);
    const ipMismatch = rpcError(
      { code: 14, details: "[ERR_TLS_CERT_ALTNAME_INVALID] Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list: 127.0.0.1, ::1" },
      "ListJobs",
      target,
    );
    assert.match(ipMismatch.message, /name mismatch; it covers 127\.0\.0\.1, ::1\)/);
    assert.match(rpcError(unavailable("Error: certificate has expired"), "ListJobs", target).message, /server's certificate has expired/);
  });

  test("a client certificate the server rejects: the diagnosis uses the config's own certificates", async () => {
    const rejected = unavailable("Failed to connect (2025-01-01T00:00:00.000Z)");
    assert.match(rpcError(rejected, "ListJobs", target).message, /did not accept the client certificate \(it was probably issued by another/);
    const mixed = withCert(other.adminCertPem, pki.caCertPem);
    assert.match(rpcError(rejected, "ListJobs", mixed).message, /not issued by its own ca: the file mixes two installations/);
    const old = await generatePki({ address: "localhost", now: new Date(Date.now() - 800 * 86_400_000) });
    assert.match(rpcError(rejected, "ListJobs", withCert(old.adminCertPem, old.caCertPem)).message, /\(it expired on \d{4}-/);
  });

  test("the daemon's hint (trailing metadata joblet-hint) replaces rnx's generic one", () => {
    const metadata = { get: (k: string) => (k === "joblet-hint" ? ["this host has CPUs 0-1"] : []) };
    const e = rpcError({ code: 3, details: "cpuCores: expected CPUs among 0-1, got \"7\"", metadata }, "RunJob", target);
    assert.equal(e.hint, "this host has CPUs 0-1");
    const none = rpcError({ code: 5, details: "job x not found", metadata: { get: () => [] } }, "GetJobStatus", target);
    assert.match(none.hint!, /rnx list/);
  });

  test("deadline exceeded is a connection problem", () => {
    const e = rpcError({ code: 4, details: "Deadline exceeded" }, "ListJobs", target);
    assert.equal(exitCodeFor(e.code), 3);
  });
});
