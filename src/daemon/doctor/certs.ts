// The daemon's TLS material: readable, a key that matches the certificate, a certificate the CA issued,
// within its validity, and a config file only root can read (it embeds the private key).
import { createPrivateKey, X509Certificate } from "node:crypto";
import { statSync } from "node:fs";
import type { DaemonConfig } from "../../shared/config/daemon.js";
import { fail, ok, warn, type CheckResult } from "./check.js";

/** Certificates expiring sooner than this are reported, days. */
export const EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;
const RENEW_HINT = "run `joblet init --dir DIR --force` for a new CA and certificates, then hand out the new rnx-config.yml";

/** Checks the server certificate, its key and the CA; `now` is for tests. */
export function checkCertificates(config: DaemonConfig, now = new Date()): CheckResult[] {
  const id = "certs";
  const title = "certificates";
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(config.tls.certPem);
  } catch (err) {
    return [fail(id, title, `security.serverCert in ${config.file} is not a readable certificate: ${(err as Error).message}`, RENEW_HINT)];
  }
  try {
    ca = new X509Certificate(config.tls.caPem);
  } catch (err) {
    return [fail(id, title, `security.caCert in ${config.file} is not a readable certificate: ${(err as Error).message}`, RENEW_HINT)];
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(config.tls.keyPem))) {
      return [fail(id, title, "security.serverKey does not belong to security.serverCert", RENEW_HINT)];
    }
  } catch (err) {
    return [fail(id, title, `security.serverKey is not a readable private key: ${(err as Error).message}`, RENEW_HINT)];
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    return [fail(id, title, `the server certificate (${cert.subject.replace(/\n/g, ", ")}) was not issued by security.caCert`, RENEW_HINT)];
  }
  const results: CheckResult[] = [];
  for (const [what, c] of [["server certificate", cert], ["CA certificate", ca]] as const) {
    const notBefore = new Date(c.validFrom);
    const notAfter = new Date(c.validTo);
    const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
    const certId = what === "CA certificate" ? "certs.ca" : id;
    const certTitle = what === "CA certificate" ? "CA" : title;
    const sans = what === "server certificate" && c.subjectAltName ? `, for ${c.subjectAltName}` : "";
    if (now < notBefore) {
      results.push(fail(certId, certTitle, `the ${what} is not valid before ${notBefore.toISOString()}`, "check the host's clock"));
    } else if (now > notAfter) {
      results.push(fail(certId, certTitle, `the ${what} expired on ${notAfter.toISOString()}`, RENEW_HINT));
    } else if (daysLeft < EXPIRY_WARNING_DAYS) {
      results.push(warn(certId, certTitle, `the ${what} expires in ${daysLeft} days (${notAfter.toISOString()})${sans}`, RENEW_HINT));
    } else {
      results.push(
        ok(certId, certTitle, `the ${what} is valid until ${notAfter.toISOString().slice(0, 10)} (${daysLeft} days)${sans}${what === "server certificate" ? "; key matches, issued by the CA" : ""}`),
      );
    }
  }
  results.push(checkKeyFile(config.file));
  return results;
}

/** The config embeds the server's private key: 0600 (or 0400) and owned by root is what the daemon expects. */
function checkKeyFile(file: string): CheckResult {
  const id = "certs.keyfile";
  const title = "key permissions";
  const st = statSync(file);
  const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
  const found = `${file} (holds the server's private key) has mode ${mode}, owner uid ${st.uid}`;
  if (st.mode & 0o004) return fail(id, title, `${found}: every user can read the key; the daemon refuses to start`, `chmod 600 ${file}`);
  if (st.mode & 0o070) return warn(id, title, `${found}: its group can read the key`, `chmod 600 ${file} unless that group is meant to read it`);
  if (st.uid !== 0 && process.getuid?.() === 0) return warn(id, title, `${found}: not owned by root`, `chown root ${file}`);
  return ok(id, title, found);
}
