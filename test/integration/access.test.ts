// Who may talk to the daemon, proved against a real one with a PKI this file generates (so it holds the CA
// key and can issue certificates that are expired, not yet valid, or revoked): TLS 1.3 only, certificate
// validity enforced in the handshake, revoked serials refused with PERMISSION_DENIED, every call recorded
// in the audit log, and no start with a config (which holds the server's key) readable by every user.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { connect, type ConnectionOptions } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import { Metadata, credentials, status, type ServiceError } from "@grpc/grpc-js";
import { JobletServiceClient, RunJobReq, type DataChunk, type Job } from "../../src/shared/proto/joblet.js";
import { describeCertificate, generatePki, type Pki } from "../../src/shared/tls/certs.js";
import { normalizeSerial } from "../../src/shared/config/daemon.js";
import { ROOT, TestDaemon, unary } from "./harness.js";
import { DAY_MS, issueClientCert, type ClientCert as IssuedCert } from "./issue-cert.js";


/** A client certificate and its key, PEM. */
type ClientCert = Pick<IssuedCert, "certPem" | "keyPem">;

let pki: Pki;
/** An admin certificate whose serial the daemon's config lists in security.revokedSerials. */
let revoked: ClientCert;
let expired: ClientCert;
let notYetValid: ClientCert;
/** Issued by the same helper as the bad ones, valid now: the control that the helper makes usable certificates. */
let fresh: ClientCert;
let d: TestDaemon;

before(async () => {
  pki = await generatePki({ address: "localhost" });
  const now = Date.now();
  [revoked, expired, notYetValid, fresh] = await Promise.all([
    issue("admin", "revoked-admin", now - DAY_MS, now + DAY_MS),
    issue("admin", "expired-admin", now - 30 * DAY_MS, now - DAY_MS),
    issue("admin", "future-admin", now + DAY_MS, now + 30 * DAY_MS),
    issue("admin", "fresh-admin", now - DAY_MS, now + DAY_MS),
  ]);
  // Written as an admin would copy it from `openssl x509 -serial`: upper case with colons.
  const serial = describeCertificate(revoked.certPem).serial.toUpperCase().match(/../g)!.join(":");
  d = await TestDaemon.start({
    security: { serverCert: pki.serverCertPem, serverKey: pki.serverKeyPem, caCert: pki.caCertPem, revokedSerials: [serial] },
  });
});
after(async () => {
  await d?.destroy();
});

/** Issues a client certificate signed by this file's CA, valid from `notBeforeMs` to `notAfterMs`. */
function issue(ou: string, cn: string, notBeforeMs: number, notAfterMs: number): Promise<ClientCert> {
  return issueClientCert(pki, ou, cn, notBeforeMs, notAfterMs);
}

/** A gRPC client presenting `cert`. */
function clientFor(cert: ClientCert): JobletServiceClient {
  return new JobletServiceClient(`localhost:${d.port}`, credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem)));
}

const admin = (): ClientCert => ({ certPem: pki.adminCertPem, keyPem: pki.adminKeyPem });
const viewer = (): ClientCert => ({ certPem: pki.viewerCertPem, keyPem: pki.viewerKeyPem });

/** The error a call fails with (fails the test if it succeeds). */
async function failure(p: Promise<unknown>): Promise<ServiceError> {
  return p.then(
    (v) => assert.fail(`expected a failure, got ${JSON.stringify(v)}`),
    (e: ServiceError) => e,
  );
}

/** One line of the audit log. */
interface AuditLine {
  time: string;
  subject: string;
  serial: string;
  role: string | null;
  rpc: string | null;
  jobId: string | null;
  result: string;
  details?: string;
  /** Refused handshakes only: the peer's "address:port". */
  remote?: string;
}

function auditLines(): AuditLine[] {
  const text = readFileSync(path.join(d.dir, "state", "audit.log"), "utf8");
  assert.ok(text === "" || text.endsWith("\n"), "the audit log ends with a partial line");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
}

/** Audit lines after the first `from`, once `done` says they are all there (lines are written as events happen). */
async function waitForAudit(from: number, done: (lines: AuditLine[]) => boolean, timeoutMs = 5_000): Promise<AuditLine[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = auditLines().slice(from);
    if (done(lines) || Date.now() > deadline) return lines;
    await sleep(50);
  }
}

/**
 * What a raw TLS connection to the daemon got: the protocol agreed, whether the server answered HTTP/2, whether
 * it closed the connection without a word, and any error.
 */
interface TlsOutcome {
  protocol: string | null;
  serverSpoke: boolean;
  closedByServer: boolean;
  error?: string;
}

/** Connects with `opts`, sends the HTTP/2 preface and waits for the server's answer, an alert or the close. */
function tlsProbe(opts: ConnectionOptions): Promise<TlsOutcome> {
  return new Promise((resolve) => {
    const out: TlsOutcome = { protocol: null, serverSpoke: false, closedByServer: false };
    const s = connect({ host: "localhost", port: d.port, servername: "localhost", ca: pki.caCertPem, ALPNProtocols: ["h2"], ...opts });
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, 10_000);
    s.on("secureConnect", () => {
      out.protocol = s.getProtocol();
      s.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    });
    s.on("data", () => {
      out.serverSpoke = true;
      done();
    });
    s.on("error", (err) => {
      out.error = `${(err as NodeJS.ErrnoException).code ?? ""} ${err.message}`;
      done();
    });
    s.on("close", () => {
      out.closedByServer = !out.serverSpoke;
      done();
    });
  });
}

test("TLS: 1.3 with a valid client certificate is served; TLS 1.2 is refused in the handshake", async () => {
  const ok = await tlsProbe({ cert: pki.adminCertPem, key: pki.adminKeyPem, maxVersion: "TLSv1.3" });
  assert.equal(ok.protocol, "TLSv1.3");
  assert.ok(ok.serverSpoke, `the daemon did not answer over TLS 1.3: ${ok.error}`);

  const auditBefore = auditLines().length;
  const old = await tlsProbe({ cert: pki.adminCertPem, key: pki.adminKeyPem, minVersion: "TLSv1.2", maxVersion: "TLSv1.2" });
  assert.equal(old.protocol, null, "a TLS 1.2 session was established");
  assert.ok(!old.serverSpoke);
  assert.match(old.error ?? "", /protocol version|unsupported protocol|wrong version/i, old.error);
  // The refusal is in the audit log, with the peer's address (a TLS 1.2 client never shows a certificate).
  const [line] = await waitForAudit(auditBefore, (lines) => lines.length > 0);
  assert.equal(line?.result, "HANDSHAKE_REFUSED", JSON.stringify(line));
  assert.match(line?.details ?? "", /PROTOCOL/i);
  assert.equal(line?.subject, "");
});

test("certificates: expired and not-yet-valid client certificates are refused in the handshake; a fresh one from the same CA works", async () => {
  const good = clientFor(fresh);
  try {
    assert.ok(Array.isArray((await unary<{ jobs: Job[] }>((cb) => good.listJobs({}, cb))).jobs));
  } finally {
    good.close();
  }
  // Node's TLS server checks the client certificate after the handshake and destroys the socket without an
  // alert when it fails; in TLS 1.3 the client has already seen its handshake complete.
  for (const [name, cert] of [["expired", expired], ["not-yet-valid", notYetValid]] as const) {
    const o = await tlsProbe({ cert: cert.certPem, key: cert.keyPem });
    assert.ok(!o.serverSpoke, `the daemon answered a client with an ${name} certificate`);
    assert.ok(o.closedByServer || o.error, `the connection with an ${name} certificate stayed open: ${JSON.stringify(o)}`);
  }
  const control = await tlsProbe({ cert: fresh.certPem, key: fresh.keyPem });
  assert.ok(control.serverSpoke, `the control: the daemon answers a fresh certificate over raw TLS: ${JSON.stringify(control)}`);

  const auditBefore = auditLines().length;
  for (const cert of [expired, notYetValid]) {
    const c = clientFor(cert);
    try {
      const err = await failure(unary((cb) => c.listJobs({}, new Metadata(), { deadline: Date.now() + 10_000 }, cb)));
      assert.equal(err.code, status.UNAVAILABLE, `${status[err.code]}: ${err.details}`);
    } finally {
      c.close();
    }
  }
  // Refused in the handshake, these never became calls, but the audit log says who was refused and why: one
  // line per connection attempt (grpc-js retries), each with the certificate's subject and serial.
  const refused = await waitForAudit(auditBefore, (lines) => ["expired-admin", "future-admin"].every((cn) => lines.some((l) => l.subject.includes(`CN=${cn}`))));
  for (const l of refused) {
    assert.equal(l.result, "HANDSHAKE_REFUSED", JSON.stringify(l));
    assert.equal(l.rpc, null);
    assert.match(l.remote ?? "", /^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1):\d+$/, JSON.stringify(l));
  }
  const reasons = (cn: string) => new Set(refused.filter((l) => l.subject.includes(`CN=${cn}`)).map((l) => `${l.details} ${normalizeSerial(l.serial)}`));
  assert.deepEqual([...reasons("expired-admin")], [`CERT_HAS_EXPIRED ${normalizeSerial(describeCertificate(expired.certPem).serial)}`]);
  assert.deepEqual([...reasons("future-admin")], [`CERT_NOT_YET_VALID ${normalizeSerial(describeCertificate(notYetValid.certPem).serial)}`]);
  assert.ok(refused.every((l) => /CN=(expired|future)-admin/.test(l.subject)), "nothing else was recorded");
});

test("revocation: a revoked admin certificate gets PERMISSION_DENIED naming its serial, for every RPC; the audit log records it", async () => {
  const serial = normalizeSerial(describeCertificate(revoked.certPem).serial);
  const c = clientFor(revoked);
  try {
    const errs = [
      await failure(unary((cb) => c.listJobs({}, cb))),
      await failure(unary((cb) => c.runJob(RunJobReq.fromPartial({ command: "true" }), cb))),
      await failure(unary((cb) => c.getJobStatus({ id: "0" }, cb))),
    ];
    for (const err of errs) {
      assert.equal(err.code, status.PERMISSION_DENIED, `${status[err.code]}: ${err.details}`);
      assert.ok(normalizeSerial(err.details.match(/serial ([0-9A-Fa-f:]+)/)?.[1] ?? "") === serial, `the message does not name serial ${serial}: ${err.details}`);
      assert.match(err.details, /revoked/);
    }
  } finally {
    c.close();
  }
  await sleep(100);
  const lines = auditLines().filter((l) => normalizeSerial(l.serial) === serial);
  assert.deepEqual(
    lines.map((l) => [l.rpc, l.result, l.role, l.subject]),
    [
      ["ListJobs", "PERMISSION_DENIED", "admin", "O=Joblet, OU=admin, CN=revoked-admin"],
      ["RunJob", "PERMISSION_DENIED", "admin", "O=Joblet, OU=admin, CN=revoked-admin"],
      ["GetJobStatus", "PERMISSION_DENIED", "admin", "O=Joblet, OU=admin, CN=revoked-admin"],
    ],
  );
  // The control: the unrevoked admin certificate works.
  const a = clientFor(admin());
  try {
    await unary((cb) => a.listJobs({}, cb));
  } finally {
    a.close();
  }
});

test("audit log: every call, allowed or denied, is one JSON line with time, subject, serial, role, rpc, jobId and result", async () => {
  const a = clientFor(admin());
  const v = clientFor(viewer());
  const adminSerial = normalizeSerial(describeCertificate(pki.adminCertPem).serial);
  const viewerSerial = normalizeSerial(describeCertificate(pki.viewerCertPem).serial);
  const start = auditLines().length;
  const t0 = Date.now();
  let id: string;
  try {
    id = (await unary<Job>((cb) => a.runJob(RunJobReq.fromPartial({ command: "echo", args: ["audited"] }), cb))).id;
    for (let j = await unary<Job>((cb) => a.getJobStatus({ id }, cb)); !j.endTime; await sleep(50)) j = await unary<Job>((cb) => a.getJobStatus({ id }, cb));
    const chunks = await new Promise<DataChunk[]>((resolve, reject) => {
      const got: DataChunk[] = [];
      const s = v.getJobLogs({ id, fromOffset: 0 });
      s.on("data", (ch: DataChunk) => got.push(ch));
      s.on("error", reject);
      s.on("end", () => resolve(got));
    });
    assert.equal(Buffer.concat(chunks.map((ch) => ch.payload)).toString(), "audited\n");
    await unary((cb) => v.listJobs({}, cb));
    assert.equal((await failure(unary((cb) => v.runJob(RunJobReq.fromPartial({ command: "true" }), cb)))).code, status.PERMISSION_DENIED);
    assert.equal((await failure(unary((cb) => v.stopJob({ id }, cb)))).code, status.PERMISSION_DENIED);
    assert.equal((await failure(unary((cb) => a.stopJob({ id }, cb)))).code, status.FAILED_PRECONDITION);
    assert.equal((await failure(unary((cb) => a.getJobStatus({ id: "ffffffff" }, cb)))).code, status.NOT_FOUND);
    assert.equal((await failure(unary((cb) => a.runJob(RunJobReq.fromPartial({ command: "true", workdir: "../x" }), cb)))).code, status.INVALID_ARGUMENT);
    await unary((cb) => a.deleteJob({ id }, cb));
  } finally {
    a.close();
    v.close();
  }
  await sleep(100);
  // Calls only: a client of the test before may still be retrying its refused handshakes in the background.
  const lines = auditLines().slice(start).filter((l) => l.result !== "HANDSHAKE_REFUSED");
  const A = ["O=Joblet, OU=admin, CN=admin-client", adminSerial, "admin"];
  const V = ["O=Joblet, OU=viewer, CN=viewer-client", viewerSerial, "viewer"];
  const polls = lines.filter((l) => l.rpc === "GetJobStatus" && l.jobId === id && l.result === "OK").length;
  assert.ok(polls >= 1);
  assert.deepEqual(
    lines.map((l) => [l.subject, normalizeSerial(l.serial), l.role, l.rpc, l.jobId, l.result]),
    [
      [...A, "RunJob", id, "OK"],
      ...Array.from({ length: polls }, () => [...A, "GetJobStatus", id, "OK"]),
      [...V, "GetJobLogs", id, "OK"],
      [...V, "ListJobs", null, "OK"],
      [...V, "RunJob", null, "PERMISSION_DENIED"],
      [...V, "StopJob", id, "PERMISSION_DENIED"],
      [...A, "StopJob", id, "FAILED_PRECONDITION"],
      [...A, "GetJobStatus", "ffffffff", "NOT_FOUND"],
      [...A, "RunJob", null, "INVALID_ARGUMENT"],
      [...A, "DeleteJob", id, "OK"],
    ],
  );
  for (const l of lines) {
    const ms = Date.parse(l.time);
    assert.ok(ms >= t0 - 1000 && ms <= Date.now() + 1000, `time ${l.time}`);
    assert.match(l.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  }
  assert.match(lines.find((l) => l.result === "INVALID_ARGUMENT")!.details ?? "", /^workdir: /);
  assert.equal(statSync(path.join(d.dir, "state", "audit.log")).mode & 0o777, 0o600);
});

/** Runs `joblet --config` on this file's config until it exits or prints "joblet serving" (then stops it). */
function runJoblet(): Promise<{ code: number | null; serving: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, "bin", "joblet"), "--config", d.configFile], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let serving = false;
    const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
    p.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
      if (!serving && stderr.includes('"joblet serving"')) {
        serving = true;
        p.kill("SIGTERM");
      }
    });
    p.once("error", reject);
    p.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, serving, stderr });
    });
  });
}

test("config permissions: a world-readable config (it holds the server key) stops the daemon from starting, naming the file and chmod 600", async () => {
  assert.equal(await d.stopProcess("SIGTERM"), 0);
  try {
    chmodSync(d.configFile, 0o644);
    const refused = await runJoblet();
    assert.ok(!refused.serving, "the daemon served with a world-readable config");
    assert.equal(refused.code, 1, refused.stderr);
    assert.equal(
      refused.stderr,
      `joblet: ${d.configFile} holds the server's private key but every user may read it (mode 644)\nhint: chmod 600 ${d.configFile}\n`,
    );

    // Group-readable is a deliberate packaging choice some admins make: a warning, not a refusal.
    chmodSync(d.configFile, 0o640);
    const warned = await runJoblet();
    assert.ok(warned.serving, warned.stderr);
    assert.match(warned.stderr, /the config holds the server's private key and its group may read it/);

    // The control: mode 600 serves without the warning.
    chmodSync(d.configFile, 0o600);
    const quiet = await runJoblet();
    assert.ok(quiet.serving, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /may read it/);
  } finally {
    chmodSync(d.configFile, 0o600);
  }
});
