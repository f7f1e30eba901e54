import "reflect-metadata";
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import * as x509 from "@peculiar/x509";
import type { Pki } from "../../shared/tls/certs.js";
import { checkCrl } from "./crl.js";
import { testConfig, type TestConfig } from "./test-config.js";

const crypto = webcrypto as unknown as Crypto;
const ALGORITHM: EcKeyGenParams & EcdsaParams = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const DAY_MS = 24 * 60 * 60 * 1000;

const made: TestConfig[] = [];
after(() => made.forEach((t) => t.cleanup()));

/** Writes a CRL signed by `signer` listing one serial into `file`. */
async function writeCrl(file: string, signer: Pki, nextUpdate = new Date(Date.now() + DAY_MS)): Promise<void> {
  const der = Buffer.from(signer.caKeyPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  const key = await crypto.subtle.importKey("pkcs8", der, ALGORITHM, false, ["sign"]);
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: new x509.X509Certificate(signer.caCertPem).subject,
      thisUpdate: new Date(Date.now() - 2 * DAY_MS),
      nextUpdate,
      signingAlgorithm: ALGORITHM,
      signingKey: key,
      entries: [{ serialNumber: "0123abcd" }],
    },
    crypto,
  );
  writeFileSync(file, crl.toString("pem"));
}

/** A config whose security.crlFile is `crl.pem` in its dir; `sign` writes that file. */
async function withCrl(sign: (file: string, own: Pki) => Promise<void>): Promise<TestConfig> {
  const probe = await testConfig();
  made.push(probe);
  const file = path.join(probe.dir, "crl.pem");
  const t = await testConfig({ security: { crlFile: file } });
  made.push(t);
  await sign(file, t.pki);
  return t;
}

test("a CRL signed by the config's CA: ok, with the number of revoked certificates", async () => {
  const t = await withCrl((file, own) => writeCrl(file, own));
  const r = await checkCrl(t.config);
  assert.equal(r.status, "ok", `${r.found} ${r.hint}`);
  assert.match(r.found, /crl\.pem is signed by the CA and revokes 1 certificate$/);
});

test("a CRL signed by another CA fails, naming security.crlFile", async () => {
  const other = await testConfig();
  made.push(other);
  const t = await withCrl((file) => writeCrl(file, other.pki));
  const r = await checkCrl(t.config);
  assert.equal(r.status, "fail");
  assert.match(r.found, /^security\.crlFile: .*crl\.pem is not signed by the CA in security\.caCert/);
});

test("a CRL past its nextUpdate warns", async () => {
  const t = await withCrl((file, own) => writeCrl(file, own, new Date(Date.now() - DAY_MS)));
  const r = await checkCrl(t.config);
  assert.equal(r.status, "warn", r.found);
  assert.match(r.found, /past its nextUpdate/);
});
