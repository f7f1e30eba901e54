import "reflect-metadata";
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, afterEach, before, test } from "node:test";
import * as x509 from "@peculiar/x509";
import { JobletError } from "../../shared/errors.js";
import { normalizeSerial } from "../../shared/config/daemon.js";
import { generatePki, type Pki } from "../../shared/tls/certs.js";
import { revokedByAny } from "./auth.js";
import { CrlRevocations } from "./crl.js";

const crypto = webcrypto as unknown as Crypto;
const ALGORITHM: EcKeyGenParams & EcdsaParams = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const DAY_MS = 24 * 60 * 60 * 1000;
const SERIAL_A = "5a1e0000000000000000000000000001";
const SERIAL_B = "5a1e0000000000000000000000000002";

let pki: Pki;
/** Another installation's CA: same subject ("O=Joblet, CN=Joblet CA"), different key. */
let otherPki: Pki;
let dir: string;
const opened: CrlRevocations[] = [];

before(async () => {
  [pki, otherPki] = await Promise.all([generatePki({ address: "localhost" }), generatePki({ address: "localhost" })]);
  dir = mkdtempSync(path.join(os.tmpdir(), "crl-test-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

/** A log that keeps what it was told. */
function recorder() {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_obj: unknown, msg?: string) => void lines.push({ level, msg: msg ?? "" });
  return { lines, log: { info: at("info"), warn: at("warn"), error: at("error") } as never };
}

/** A CRL listing `serials`, signed by `signer`'s CA key, as PEM (or DER bytes). */
async function makeCrl(serials: string[], opts: { signer?: Pki; nextUpdate?: Date; thisUpdate?: Date } = {}): Promise<x509.X509Crl> {
  const signer = opts.signer ?? pki;
  const ca = new x509.X509Certificate(signer.caCertPem);
  const der = Buffer.from(signer.caKeyPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  const key = await crypto.subtle.importKey("pkcs8", der, ALGORITHM, false, ["sign"]);
  return x509.X509CrlGenerator.create(
    {
      issuer: ca.subject,
      thisUpdate: opts.thisUpdate ?? new Date(Date.now() - 60_000),
      nextUpdate: opts.nextUpdate ?? new Date(Date.now() + 7 * DAY_MS),
      signingAlgorithm: ALGORITHM,
      signingKey: key,
      entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 60_000) })),
    },
    crypto,
  );
}

/** Writes `content` to `file` the way an operator replaces a CRL: a temp file renamed over it. */
function replace(file: string, content: string | Buffer): void {
  writeFileSync(`${file}.tmp`, content);
  renameSync(`${file}.tmp`, file);
}

async function open(file: string, log = recorder().log): Promise<CrlRevocations> {
  const crl = await CrlRevocations.open(file, pki.caCertPem, log);
  opened.push(crl);
  return crl;
}

async function refusal(p: Promise<unknown>): Promise<JobletError> {
  const err = await p.then(
    () => assert.fail("expected the CRL to be refused"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof JobletError, String(err));
  assert.equal(err.code, "FAILED_PRECONDITION");
  return err;
}

/** Polls `cond` every 50 ms for up to `timeoutMs`. */
async function eventually(cond: () => boolean, timeoutMs = 4_000): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) if (cond()) return true;
  return cond();
}

test("a PEM CRL signed by the CA: listed serials are revoked (in any spelling normalizeSerial accepts), others not", async () => {
  const file = path.join(dir, "a.pem");
  writeFileSync(file, (await makeCrl([SERIAL_A, "00a1b2"])).toString("pem"));
  const crl = await open(file);
  assert.equal(crl.size, 2);
  assert.ok(crl.has(normalizeSerial(SERIAL_A.toUpperCase().match(/../g)!.join(":"))));
  // DER serials carry a leading 00 when their top bit is set; a certificate's serial is compared without it.
  assert.ok(crl.has(normalizeSerial("A1B2")));
  assert.ok(!crl.has(normalizeSerial(SERIAL_B)));
  assert.ok(!crl.has(""));
});

test("a DER CRL is read too; an empty one revokes nothing", async () => {
  const file = path.join(dir, "b.der");
  writeFileSync(file, Buffer.from((await makeCrl([SERIAL_B])).rawData));
  assert.ok((await open(file)).has(SERIAL_B));
  const empty = path.join(dir, "empty.pem");
  writeFileSync(empty, (await makeCrl([])).toString("pem"));
  assert.equal((await open(empty)).size, 0);
});

test("a CRL signed by another CA (same issuer name, other key) is refused, naming security.crlFile", async () => {
  const file = path.join(dir, "other.pem");
  writeFileSync(file, (await makeCrl([SERIAL_A], { signer: otherPki })).toString("pem"));
  const err = await refusal(open(file));
  assert.match(err.message, /^security\.crlFile: .*other\.pem is not signed by the CA in security\.caCert/);
});

test("a missing file, a certificate and garbage are refused, each naming security.crlFile and the file", async () => {
  const missing = await refusal(open(path.join(dir, "missing.pem")));
  assert.match(missing.message, /^security\.crlFile: cannot read .*missing\.pem: ENOENT/);
  for (const [name, content] of [
    ["cert.pem", pki.caCertPem],
    ["garbage.der", Buffer.from("not a crl at all")],
    ["truncated.pem", (await makeCrl([SERIAL_A])).toString("pem").slice(0, 200)],
  ] as const) {
    const file = path.join(dir, name);
    writeFileSync(file, content);
    const err = await refusal(open(file));
    assert.ok(err.message.startsWith(`security.crlFile: ${file} is not an X.509 CRL in PEM or DER form`), err.message);
  }
});

test("a replaced CRL is picked up within about a second, without a restart", async () => {
  const file = path.join(dir, "reload.pem");
  writeFileSync(file, (await makeCrl([SERIAL_A])).toString("pem"));
  const { lines, log } = recorder();
  const crl = await open(file, log);
  assert.ok(crl.has(SERIAL_A) && !crl.has(SERIAL_B));
  const t0 = Date.now();
  replace(file, (await makeCrl([SERIAL_B])).toString("pem"));
  assert.ok(await eventually(() => crl.has(SERIAL_B)), "the new serial was never revoked");
  const ms = Date.now() - t0;
  assert.ok(ms < 3_000, `took ${ms} ms`);
  assert.ok(!crl.has(SERIAL_A), "the old list is still in force");
  assert.ok(lines.some((l) => l.level === "info" && l.msg === "certificate revocation list reloaded"));
});

test("a replacement that is invalid, unreadable or signed by another CA keeps the last good list and logs an error", async () => {
  const file = path.join(dir, "keep.pem");
  writeFileSync(file, (await makeCrl([SERIAL_A])).toString("pem"));
  const { lines, log } = recorder();
  const crl = await open(file, log);
  const errors = () => lines.filter((l) => l.level === "error").length;
  const bad: (() => Promise<void>)[] = [
    async () => replace(file, "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"),
    async () => replace(file, (await makeCrl([SERIAL_B], { signer: otherPki })).toString("pem")),
    async () => rmSync(file),
  ];
  for (const [i, breakIt] of bad.entries()) {
    await breakIt();
    assert.ok(await eventually(() => errors() > i), `replacement ${i} was not reported`);
    await crl.settled();
    assert.ok(crl.has(SERIAL_A), `replacement ${i} dropped the last good list`);
    assert.ok(!crl.has(SERIAL_B), `replacement ${i} was used`);
  }
  assert.match(lines.find((l) => l.level === "error")!.msg, /previous one stays in force/);
  // A good file again is used again.
  replace(file, (await makeCrl([SERIAL_B])).toString("pem"));
  assert.ok(await eventually(() => crl.has(SERIAL_B)));
});

test("a CRL past its nextUpdate still refuses its serials and warns once", async () => {
  const file = path.join(dir, "stale.pem");
  writeFileSync(file, (await makeCrl([SERIAL_A], { thisUpdate: new Date(Date.now() - 10 * DAY_MS), nextUpdate: new Date(Date.now() - DAY_MS) })).toString("pem"));
  const { lines, log } = recorder();
  const crl = await open(file, log);
  assert.ok(crl.has(SERIAL_A));
  assert.ok(crl.has(SERIAL_A));
  assert.equal(lines.filter((l) => l.level === "warn" && /past its nextUpdate/.test(l.msg)).length, 1);
});

test("after close the file is no longer followed", async () => {
  const file = path.join(dir, "closed.pem");
  writeFileSync(file, (await makeCrl([SERIAL_A])).toString("pem"));
  const crl = await open(file);
  crl.close();
  replace(file, (await makeCrl([SERIAL_B])).toString("pem"));
  await sleep(2_500);
  await crl.settled();
  assert.ok(crl.has(SERIAL_A) && !crl.has(SERIAL_B));
});

test("combined with security.revokedSerials, a serial in either is revoked", async () => {
  const file = path.join(dir, "combined.pem");
  writeFileSync(file, (await makeCrl([SERIAL_A])).toString("pem"));
  const check = revokedByAny([new Set([SERIAL_B]), await open(file)]);
  assert.ok(check.has(SERIAL_A) && check.has(SERIAL_B));
  assert.ok(!check.has("5a1e0000000000000000000000000003"));
});
