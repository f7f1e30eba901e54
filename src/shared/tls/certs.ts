// The PKI of one Joblet installation: a CA, the daemon's server certificate and two client certificates whose
// OU carries the role ("admin" or "viewer") that the daemon authorises on. ECDSA P-256 with SHA-256 through
// Node's WebCrypto: a full set takes milliseconds, and every TLS 1.3 stack accepts it.
//
// The CA key is returned to the caller but not meant to be stored: issuing new certificates means generating
// a new set (`joblet init --force`), which also retires every old client certificate at once.
import "reflect-metadata";
import { isIP } from "node:net";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { JobletError, invalidArgument } from "../errors.js";
import { roleFromOU, type CertRole } from "./role.js";

export { roleFromOU, type CertRole };

/** The role a client certificate grants, read from its OU. */

/** What `generatePki` needs: where clients will reach the daemon. */
export interface PkiOptions {
  /** The name or IP literal clients dial; goes into the server certificate's SANs. */
  readonly address: string;
  /** The daemon's port. Certificates bind names, not ports: it is only checked, so a bad one fails early. */
  readonly port?: number;
  /** Further names or IP literals the server certificate must be valid for. */
  readonly names?: readonly string[];
  /** The issuing time; defaults to the current time. */
  readonly now?: Date;
}

/** A generated CA, server and client set; certificates as PEM, private keys as PKCS#8 PEM. */
export interface Pki {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  readonly adminCertPem: string;
  readonly adminKeyPem: string;
  readonly viewerCertPem: string;
  readonly viewerKeyPem: string;
}

/** The fields of a certificate that matter to Joblet. */
export interface CertificateInfo {
  /** The subject's attributes in certificate order, e.g. "O=Joblet, OU=admin, CN=admin-client". */
  readonly subject: string;
  readonly commonName: string | undefined;
  /** The first OU, if any. */
  readonly organizationalUnit: string | undefined;
  readonly role?: CertRole;
  /** Hexadecimal serial number, lower case. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Subject alternative names as "DNS:name" or "IP:address". */
  readonly sans: string[];
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** The CA outlives many server certificates; re-running init replaces all of them anyway. */
const CA_LIFETIME_MS = 3650 * DAY_MS;
/** Leaf certificates last one year (365 days). */
const LEAF_LIFETIME_MS = 365 * DAY_MS;
/** notBefore is set this far in the past so a client whose clock runs a little behind still accepts. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** The DNS name clients of the reference implementation verify, whatever address they dial. */
const SERVER_NAME = "joblet";
const ORGANIZATION = "Joblet";

const ALGORITHM: EcKeyGenParams & EcdsaParams = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

// Passed explicitly to every @peculiar/x509 call rather than installed as its global provider, so this module
// changes no state another user of the library might rely on.
const crypto = webcrypto as unknown as Crypto;

/** Generates a CA and, signed by it, the server certificate (1 year) and the admin and viewer client certificates (1 year). */
export async function generatePki(opts: PkiOptions): Promise<Pki> {
  if (opts.port !== undefined) checkPort(opts.port);
  const sans = serverSans(opts.address, opts.names ?? []);
  const now = opts.now ?? new Date();
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);

  const caKeys = await newKeys();
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: [{ O: [ORGANIZATION] }, { CN: ["Joblet CA"] }],
      notBefore,
      notAfter: new Date(now.getTime() + CA_LIFETIME_MS),
      signingAlgorithm: ALGORITHM,
      keys: caKeys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );

  const issue = async (ou: string, cn: string, usage: x509.ExtendedKeyUsage, extra: x509.Extension[]) => {
    const keys = await newKeys();
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerial(),
        subject: [{ O: [ORGANIZATION] }, { OU: [ou] }, { CN: [cn] }],
        issuer: ca.subjectName,
        notBefore,
        notAfter: new Date(now.getTime() + LEAF_LIFETIME_MS),
        signingAlgorithm: ALGORITHM,
        publicKey: keys.publicKey,
        signingKey: caKeys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([usage], false),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
          await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
          ...extra,
        ],
      },
      crypto,
    );
    return { certPem: certToPem(cert), keyPem: await keyToPem(keys.privateKey) };
  };

  const server = await issue("server", SERVER_NAME, x509.ExtendedKeyUsage.serverAuth, [
    new x509.SubjectAlternativeNameExtension(sans, false),
  ]);
  const admin = await issue("admin", "admin-client", x509.ExtendedKeyUsage.clientAuth, []);
  const viewer = await issue("viewer", "viewer-client", x509.ExtendedKeyUsage.clientAuth, []);

  return {
    caCertPem: certToPem(ca),
    caKeyPem: await keyToPem(caKeys.privateKey),
    serverCertPem: server.certPem,
    serverKeyPem: server.keyPem,
    adminCertPem: admin.certPem,
    adminKeyPem: admin.keyPem,
    viewerCertPem: viewer.certPem,
    viewerKeyPem: viewer.keyPem,
  };
}

/** Reads subject, role, serial, validity and SANs from a PEM certificate; INVALID_ARGUMENT if it is not one. */
export function describeCertificate(pem: string): CertificateInfo {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(pem);
  } catch (err) {
    throw new JobletError(
      "INVALID_ARGUMENT",
      `certificate: expected a PEM-encoded X.509 certificate, got ${pem.trim().split("\n")[0]?.slice(0, 60) ?? "nothing"}`,
      { cause: err },
    );
  }
  const ous = cert.subjectName.getField("OU");
  const role = roleFromOU(ous);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return {
    subject: cert.subject,
    commonName: cert.subjectName.getField("CN")[0],
    organizationalUnit: ous[0],
    ...(role ? { role } : {}),
    serial: cert.serialNumber.toLowerCase(),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    sans: san ? san.names.items.map((n) => `${n.type === "ip" ? "IP" : n.type.toUpperCase()}:${n.value}`) : [],
  };
}


/** Checks a host name or IP literal as given on the command line; returns it without IPv6 brackets. */
export function checkHost(field: string, value: unknown): string {
  const expected = "a host name or IP address (no port, whitespace or commas)";
  if (typeof value !== "string") throw invalidArgument(field, expected, value);
  const unbracketed = /^\[(.*)\]$/.exec(value)?.[1] ?? value;
  if (isIP(unbracketed) === 6) return unbracketed;
  // A colon or bracket outside an IPv6 literal would make "host:port" ambiguous in rnx-config.yml.
  if (!/^[^\s,:[\]/]+$/.test(value)) throw invalidArgument(field, expected, value);
  return value;
}

/** Checks a TCP port number (1-65535). */
export function checkPort(port: unknown, field = "--port"): number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalidArgument(field, "a port number from 1 to 65535", port);
  }
  return port;
}

/** The server certificate's SANs: the address, loopback names, the extra names and "joblet", without repeats. */
function serverSans(address: string, names: readonly string[]): x509.JsonGeneralNames {
  if (!Array.isArray(names)) throw invalidArgument("--names", "a list of host names or IP addresses", names);
  const hosts = [
    checkHost("--address", address),
    "localhost",
    "127.0.0.1",
    "::1",
    ...names.map((n) => checkHost("--names", n)),
    SERVER_NAME,
  ];
  const seen = new Set<string>();
  const sans: x509.JsonGeneralNames = [];
  for (const host of hosts) {
    const san = isIP(host) ? { type: "ip" as const, value: host } : { type: "dns" as const, value: host.toLowerCase() };
    const key = `${san.type}:${san.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    sans.push(san);
  }
  return sans;
}

async function newKeys(): Promise<CryptoKeyPair> {
  // Extractable: the private keys are exported to PEM for the config files.
  return (await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
}

/** 16 random bytes, top bit clear and non-zero so the DER integer is positive and exactly 16 bytes long. */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return Buffer.from(bytes).toString("hex");
}

function certToPem(cert: x509.X509Certificate): string {
  return `${cert.toString("pem").replace(/\r\n/g, "\n").trim()}\n`;
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey("pkcs8", key));
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join("\n")}\n-----END PRIVATE KEY-----\n`;
}
