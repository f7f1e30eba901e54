// Client certificates for tests that need more than `joblet init` makes: expired, not yet valid, revoked.
// Signed with the CA key of a Pki from src/shared/tls/certs.ts (which `joblet init` does not keep).
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { describeCertificate, type Pki } from "../../src/shared/tls/certs.js";

export const crypto = webcrypto as unknown as Crypto;
/** The key and signature algorithm `joblet init` uses. */
export const ALGORITHM: EcKeyGenParams & EcdsaParams = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
export const DAY_MS = 24 * 60 * 60 * 1000;

/** A client certificate, its key (PEM) and its serial (lowercase hex). */
export interface ClientCert {
  certPem: string;
  keyPem: string;
  serial: string;
}

/** The DER bytes of a PEM block. */
export function pemBody(pem: string): ArrayBuffer {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength);
}

/** The CA's private key of `pki`, for signing. */
export function caSigningKey(pki: Pki): Promise<CryptoKey> {
  return crypto.subtle.importKey("pkcs8", pemBody(pki.caKeyPem), ALGORITHM, false, ["sign"]);
}

/** Issues a client certificate with role `ou`, signed by `pki`'s CA, valid from `notBeforeMs` to `notAfterMs`. */
export async function issueClientCert(pki: Pki, ou: string, cn: string, notBeforeMs = Date.now() - DAY_MS, notAfterMs = Date.now() + DAY_MS): Promise<ClientCert> {
  const ca = new x509.X509Certificate(pki.caCertPem);
  const keys = (await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const serial = Buffer.from(crypto.getRandomValues(new Uint8Array(16)));
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial.toString("hex"),
      subject: [{ O: ["Joblet"] }, { OU: [ou] }, { CN: [cn] }],
      issuer: ca.subjectName,
      notBefore: new Date(notBeforeMs),
      notAfter: new Date(notAfterMs),
      signingAlgorithm: ALGORITHM,
      publicKey: keys.publicKey,
      signingKey: await caSigningKey(pki),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      ],
    },
    crypto,
  );
  const der = Buffer.from(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${der.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
  const certPem = cert.toString("pem");
  return { certPem, keyPem, serial: describeCertificate(certPem).serial };
}
