// What rnx needs to know about the certificates in its config, read with Node's built-in X509Certificate
// (no extra library on the CLI's start-up path): subject, role, validity, issuer match. Keys never pass here.
import { X509Certificate } from "node:crypto";
import { roleFromOU } from "../shared/tls/role.js";

/** A certificate's facts for messages and `rnx nodes`. */
export interface CertFacts {
  /** Subject attributes in certificate order, e.g. "O=Joblet, OU=admin, CN=admin-client". */
  readonly subject: string;
  readonly commonName: string | undefined;
  /** The role the daemon grants for this certificate's OU, or undefined when the OU names no role. */
  readonly role: "admin" | "viewer" | undefined;
  /** All OU values, as written. */
  readonly organizationalUnits: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Upper-case hex. */
  readonly serial: string;
  /** SHA-256 fingerprint, colon-separated hex. */
  readonly fingerprint256: string;
}

/** Reads a PEM certificate; undefined when it cannot be parsed (the config schema checks the PEM markers only). */
export function certFacts(pem: string): CertFacts | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return undefined;
  }
  const attrs = cert.subject.split("\n").filter(Boolean);
  const values = (key: string) => attrs.filter((a) => a.startsWith(`${key}=`)).map((a) => a.slice(key.length + 1));
  const ous = values("OU");
  return {
    subject: attrs.join(", "),
    commonName: values("CN")[0],
    role: roleFromOU(ous),
    organizationalUnits: ous,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serial: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
  };
}

/** True when `certPem` was signed by `caPem`'s key; undefined when either cannot be parsed. */
export function isIssuedBy(certPem: string, caPem: string): boolean | undefined {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return undefined;
  }
}

