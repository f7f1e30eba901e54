// Who is calling and what they may do. The role comes from the client certificate's subject OU (verified by
// the TLS handshake against our CA): admin may call everything, viewer only the read-only RPCs.
import type { PeerCertificate } from "node:tls";
import { JobletError } from "../../shared/errors.js";
import { normalizeSerial } from "../../shared/config/daemon.js";
import { roleFromOU, type CertRole } from "../../shared/tls/role.js";

/** The authenticated client of one call. */
export interface Caller {
  role: CertRole | undefined;
  /** "CN=admin-client, OU=admin" style, for logs and audit. */
  subject: string;
  serial: string;
}

/** The API's RPC names, as in the method paths `/joblet.JobletService/<Rpc>`. */
export type Rpc = "RunJob" | "RunJobWithUploads" | "GetJobStatus" | "StopJob" | "GetJobLogs" | "ListJobs" | "DeleteJob";

const ALLOWED: Readonly<Record<CertRole, ReadonlySet<Rpc>>> = {
  admin: new Set<Rpc>(["RunJob", "RunJobWithUploads", "GetJobStatus", "StopJob", "GetJobLogs", "ListJobs", "DeleteJob"]),
  viewer: new Set<Rpc>(["GetJobStatus", "GetJobLogs", "ListJobs"]),
};

/** Reads the caller from a call's TLS peer certificate. */
export function callerOf(auth: { sslPeerCertificate?: PeerCertificate } | undefined): Caller {
  const cert = auth?.sslPeerCertificate;
  const subject = cert?.subject ?? {};
  const parts = Object.entries(subject).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : String(v)}`);
  return {
    role: roleFromOU(subject.OU as string | string[] | undefined),
    subject: parts.join(", ") || "(no certificate)",
    serial: cert?.serialNumber ?? "",
  };
}

/** Answers whether a certificate serial (normalised: lowercase hex, no leading zeros) is revoked. A Set is one. */
export interface RevocationCheck {
  has(serial: string): boolean;
}

/** One check that says revoked when any of `checks` does (security.revokedSerials and security.crlFile). */
export function revokedByAny(checks: readonly RevocationCheck[]): RevocationCheck {
  return { has: (serial) => checks.some((c) => c.has(serial)) };
}

/** Throws PERMISSION_DENIED unless the caller's role may call `rpc` with a certificate that is not revoked. */
export function authorize(caller: Caller, rpc: Rpc, revokedSerials: RevocationCheck = new Set<string>()): void {
  if (revokedSerials.has(normalizeSerial(caller.serial))) {
    throw new JobletError("PERMISSION_DENIED", `client certificate ${caller.subject} (serial ${caller.serial}) is revoked`, {
      hint: "ask the server's administrator for a new certificate",
    });
  }
  if (!caller.role) {
    throw new JobletError("PERMISSION_DENIED", `client certificate ${caller.subject} has no Joblet role (its OU must be admin or viewer)`);
  }
  if (!ALLOWED[caller.role].has(rpc)) {
    const allowed = [...ALLOWED[caller.role]].join(", ");
    throw new JobletError("PERMISSION_DENIED", `role ${caller.role} may not call ${rpc} (allowed: ${allowed})`, {
      hint: "use a client certificate with the admin role for this operation",
    });
  }
}
