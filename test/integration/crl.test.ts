// security.crlFile against a real daemon, with a PKI this file generates (so it holds the CA key and can sign
// CRLs and issue client certificates): a certificate the CRL lists gets PERMISSION_DENIED while a fresh one
// works; replacing the CRL while the daemon runs revokes within about a second; a broken replacement keeps
// the last good list; and a CRL not signed by the CA stops the daemon from starting.
import "reflect-metadata";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import * as x509 from "@peculiar/x509";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { JobletServiceClient } from "../../src/shared/proto/joblet.js";
import { generatePki, type Pki } from "../../src/shared/tls/certs.js";
import { ROOT, TestDaemon, unary } from "./harness.js";
import { ALGORITHM, DAY_MS, caSigningKey, crypto, issueClientCert, type ClientCert } from "./issue-cert.js";

/** How long a replaced CRL may take to apply: the daemon checks the file once a second, ms. */
const RELOAD_MS = 3_000;

let pki: Pki;
/** Another installation's CA: the same subject, another key. */
let otherPki: Pki;
let revoked: ClientCert;
let fresh: ClientCert;
/** Valid when the daemon starts, revoked by a CRL written while it runs. */
let later: ClientCert;
let crlFile: string;
let d: TestDaemon;

before(async () => {
  [pki, otherPki] = await Promise.all([generatePki({ address: "localhost" }), generatePki({ address: "localhost" })]);
  [revoked, fresh, later] = await Promise.all(["revoked-admin", "fresh-admin", "later-admin"].map((cn) => issueClientCert(pki, "admin", cn)));
  // The daemon's temp dir is made by start(), which needs the CRL: it lives next to it.
  crlFile = path.join(os.tmpdir(), `joblet-crl-it-${process.pid}.pem`);
  writeFileSync(crlFile, await crl([revoked.serial]));
  d = await TestDaemon.start({
    security: { serverCert: pki.serverCertPem, serverKey: pki.serverKeyPem, caCert: pki.caCertPem, crlFile },
  });
});
after(async () => {
  await d?.destroy();
  rmSync(crlFile, { force: true });
});

/** A PEM CRL listing `serials`, signed by `signer`'s CA key (this file's CA by default). */
async function crl(serials: string[], signer: Pki = pki): Promise<string> {
  const ca = new x509.X509Certificate(signer.caCertPem);
  const key = await caSigningKey(signer);
  const list = await x509.X509CrlGenerator.create(
    {
      issuer: ca.subject,
      thisUpdate: new Date(Date.now() - 60_000),
      nextUpdate: new Date(Date.now() + 7 * DAY_MS),
      signingAlgorithm: ALGORITHM,
      signingKey: key,
      entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 60_000) })),
    },
    crypto,
  );
  return list.toString("pem");
}

/** Replaces the CRL as an operator would: a new file renamed over the old one. */
function publish(pem: string): void {
  writeFileSync(`${crlFile}.tmp`, pem);
  renameSync(`${crlFile}.tmp`, crlFile);
}

/** ListJobs with `cert`: resolves with the gRPC error, or undefined when the call succeeded. */
async function listAs(cert: ClientCert): Promise<ServiceError | undefined> {
  const c = new JobletServiceClient(`localhost:${d.port}`, credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem)));
  try {
    await unary((cb) => c.listJobs({}, cb));
    return undefined;
  } catch (err) {
    return err as ServiceError;
  } finally {
    c.close();
  }
}

/** Calls as `cert` until the call is refused (or `timeoutMs` passes); returns the error and the time taken. */
async function untilRefused(cert: ClientCert, timeoutMs = RELOAD_MS): Promise<{ err: ServiceError | undefined; ms: number }> {
  const t0 = Date.now();
  let err = await listAs(cert);
  while (!err && Date.now() - t0 < timeoutMs) {
    await sleep(50);
    err = await listAs(cert);
  }
  return { err, ms: Date.now() - t0 };
}

function auditLines(): { serial: string; rpc: string; result: string; details?: string }[] {
  return readFileSync(path.join(d.dir, "state", "audit.log"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { serial: string; rpc: string; result: string; details?: string });
}

test("a certificate the CRL lists gets PERMISSION_DENIED (and an audit line); a fresh one from the same CA works", async () => {
  const err = await listAs(revoked);
  assert.equal(err?.code, status.PERMISSION_DENIED, err?.details);
  assert.match(err!.details, /revoked-admin.*is revoked/);
  assert.equal(await listAs(fresh), undefined, "the control: a certificate the CRL does not list was refused");
  const denied = auditLines().filter((l) => l.serial.toLowerCase() === revoked.serial);
  assert.ok(denied.length >= 1, "the refused call is not in the audit log");
  assert.match(denied.at(-1)!.result, /PERMISSION_DENIED/);
  assert.match(d.log, /certificate revocation list loaded/);
});

test("a CRL replaced while the daemon runs: the newly listed certificate is refused within about a second", async () => {
  assert.equal(await listAs(later), undefined);
  publish(await crl([revoked.serial, later.serial]));
  const { err, ms } = await untilRefused(later);
  assert.equal(err?.code, status.PERMISSION_DENIED, `still allowed after ${ms} ms`);
  console.log(`revocation applied ${ms} ms after the CRL was replaced`);
  assert.equal((await listAs(revoked))?.code, status.PERMISSION_DENIED);
  assert.equal(await listAs(fresh), undefined);
});

test("a broken or foreign replacement keeps the last good list in force and is logged", async () => {
  for (const [what, pem] of [
    ["garbage", "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"],
    ["signed by another CA", await crl([], otherPki)],
  ] as const) {
    const logged = d.log.split("previous one stays in force").length;
    publish(pem);
    for (const deadline = Date.now() + RELOAD_MS; d.log.split("previous one stays in force").length === logged && Date.now() < deadline; ) await sleep(50);
    assert.ok(d.log.split("previous one stays in force").length > logged, `${what}: no error was logged`);
    assert.equal((await listAs(later))?.code, status.PERMISSION_DENIED, `${what}: the last good list was dropped`);
    assert.equal(await listAs(fresh), undefined, what);
  }
  // A good list again applies again: this one revokes nothing, so `later` works once more.
  publish(await crl([]));
  const t0 = Date.now();
  while ((await listAs(later)) && Date.now() - t0 < RELOAD_MS) await sleep(50);
  assert.equal(await listAs(later), undefined);
});

test("a CRL not signed by the CA stops the daemon from starting, naming security.crlFile", async () => {
  assert.equal(await d.stopProcess("SIGTERM"), 0);
  publish(await crl([revoked.serial], otherPki));
  const refused = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, "bin", "joblet"), "--config", d.configFile], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
    p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    p.once("error", reject);
    p.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
  assert.equal(refused.code, 1, refused.stderr);
  assert.ok(refused.stderr.includes(`joblet: security.crlFile: ${crlFile} is not signed by the CA in security.caCert`), refused.stderr);
  assert.ok(!refused.stderr.includes('"joblet serving"'));
  // The control: with a good CRL the same config starts.
  publish(await crl([revoked.serial]));
  await d.launch();
  assert.equal((await listAs(revoked))?.code, status.PERMISSION_DENIED);
  assert.equal(await listAs(fresh), undefined);
});
