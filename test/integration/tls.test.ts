// Mutual TLS and roles against a real daemon: what the viewer role may and may not do, that the handshake
// needs a client certificate from our CA and TLS 1.3, and that the server certificate verifies for the
// names clients dial ("joblet", 127.0.0.1, localhost), and that rnx's memory of a verified daemon certificate
// follows a renewed one.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { after, before, test } from "node:test";
import { Metadata, credentials, status, type ServiceError } from "@grpc/grpc-js";
import { RunJobReq, Stream, JobletServiceClient, type DataChunk, type GetJobStatusRes, type Jobs, type RunJobRes } from "../../src/shared/proto/joblet.js";
import { loadRnxConfig, selectNode, type RnxNode } from "../../src/shared/config/rnx.js";
import { generatePki } from "../../src/shared/tls/certs.js";
import { TestDaemon, unary } from "./harness.js";

const T = { timeout: 60_000 };

let d: TestDaemon;
let admin: JobletServiceClient;
let viewer: JobletServiceClient;
let adminNode: RnxNode;
/** A job started by admin that the viewer reads. */
let job: RunJobRes;

before(async () => {
  d = await TestDaemon.start();
  admin = d.client();
  viewer = d.client("viewer");
  adminNode = selectNode(loadRnxConfig(d.rnxConfigFile), "default");
  job = await unary<RunJobRes>((cb) => admin.runJob(RunJobReq.fromPartial({ command: "sh", args: ["-c", "echo visible; sleep 30"] }), cb));
});
after(async () => {
  if (job) await unary((cb) => admin.stopJob({ id: job.id }, cb)).catch(() => undefined);
  admin?.close();
  viewer?.close();
  await d?.destroy();
});

/** Asserts that `p` fails with gRPC `code` and a message matching every pattern. */
async function rejects(p: Promise<unknown>, code: status, ...patterns: RegExp[]): Promise<ServiceError> {
  const err = await p.then(
    (v) => assert.fail(`expected ${status[code]}, got success: ${JSON.stringify(v)}`),
    (e: unknown) => e as ServiceError,
  );
  assert.ok(typeof err.code === "number", `expected ${status[code]}, got ${String(err)}`);
  assert.equal(err.code, code, `expected ${status[code]}, got ${status[err.code]}: ${err.details}`);
  for (const re of patterns) assert.match(err.details, re);
  return err;
}

/** Reads GetJobLogs until `want` appears in stdout (the job keeps running), then cancels. */
function readUntil(client: JobletServiceClient, id: string, want: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const s = client.getJobLogs({ id, fromOffset: 0 });
    const timer = setTimeout(() => {
      s.cancel();
      reject(new Error(`no ${JSON.stringify(want)} within ${timeoutMs} ms; got ${JSON.stringify(out)}`));
    }, timeoutMs);
    s.on("data", (ch: DataChunk) => {
      if (ch.stream === Stream.STDOUT) out += ch.payload.toString("utf8");
      if (out.includes(want)) {
        clearTimeout(timer);
        s.cancel();
        resolve(out);
      }
    });
    s.on("error", (err: ServiceError) => {
      clearTimeout(timer);
      if (err.code !== status.CANCELLED) reject(err);
    });
  });
}

/** A TLS connection attempt to the daemon; resolves with the negotiated protocol or the error. */
function connectTls(opts: tls.ConnectionOptions): Promise<{ protocol: string | null; authorized: boolean } | { error: Error }> {
  return new Promise((resolve) => {
    const sock = tls.connect({ host: "127.0.0.1", port: d.port, ALPNProtocols: ["h2"], ...opts });
    let done = false;
    sock.once("secureConnect", () => {
      const res = { protocol: sock.getProtocol(), authorized: sock.authorized };
      // With TLS 1.3 the server checks the client certificate after the client saw its Finished: wait a
      // moment for an alert before calling the handshake a success.
      sock.once("data", () => undefined);
      setTimeout(() => {
        if (done) return;
        done = true;
        sock.destroy();
        resolve(res);
      }, 300);
    });
    sock.once("error", (error) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ error });
    });
    sock.once("close", () => {
      if (done) return;
      done = true;
      resolve({ error: new Error("connection closed during or right after the handshake") });
    });
  });
}

test("viewer may list jobs, read a job's status and follow its logs", T, async () => {
  const jobs = await unary<Jobs>((cb) => viewer.listJobs({}, cb));
  assert.ok(jobs.jobs.some((j) => j.id === job.id));
  const st = await unary<GetJobStatusRes>((cb) => viewer.getJobStatus({ id: job.id }, cb));
  assert.equal(st.status, "RUNNING");
  assert.match(await readUntil(viewer, job.id, "visible\n"), /^visible\n/);
});

test("viewer RunJob and StopJob: PERMISSION_DENIED naming the role and the operation; nothing happens", T, async () => {
  const before = (await unary<Jobs>((cb) => admin.listJobs({}, cb))).jobs.length;
  await rejects(
    unary((cb) => viewer.runJob(RunJobReq.fromPartial({ command: "true" }), cb)),
    status.PERMISSION_DENIED,
    /viewer/,
    /RunJob/,
  );
  await rejects(unary((cb) => viewer.stopJob({ id: job.id }, cb)), status.PERMISSION_DENIED, /viewer/, /StopJob/);
  assert.equal((await unary<Jobs>((cb) => admin.listJobs({}, cb))).jobs.length, before, "no job was created");
  const st = await unary<GetJobStatusRes>((cb) => admin.getJobStatus({ id: job.id }, cb));
  assert.equal(st.status, "RUNNING", "the job was not stopped");
});

test("rnx --node viewer run is refused with exit code 4 and a message naming the role", T, async () => {
  const r = await d.rnx(["--node", "viewer", "run", "true"]);
  assert.equal(r.code, 4, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, /viewer/);
  assert.match(r.stderr, /RunJob/);
  const ok = await d.rnx(["--node", "viewer", "status", job.id]);
  assert.equal(ok.code, 0, ok.stderr);
});

test("a client without a certificate cannot connect (UNAVAILABLE)", T, async () => {
  const c = new JobletServiceClient(`localhost:${d.port}`, credentials.createSsl(Buffer.from(adminNode.caPem)));
  try {
    await rejects(unary((cb) => c.listJobs({}, new Metadata(), { deadline: Date.now() + 10_000 }, cb)), status.UNAVAILABLE);
  } finally {
    c.close();
  }
  const raw = await connectTls({ ca: adminNode.caPem, servername: "localhost" });
  assert.ok("error" in raw, `a TLS client without a certificate was accepted: ${JSON.stringify(raw)}`);
  // The daemon completes the handshake to learn who it refuses (for the audit log), then closes the
  // connection before reading a byte; OpenSSL's own refusal would have sent a "certificate required" alert.
  assert.match(raw.error.message, /certificate required|closed/);
});

test("a client certificate from another CA is refused", T, async () => {
  const other = await generatePki({ address: "localhost" });
  const c = new JobletServiceClient(
    `localhost:${d.port}`,
    credentials.createSsl(Buffer.from(adminNode.caPem), Buffer.from(other.adminKeyPem), Buffer.from(other.adminCertPem)),
  );
  try {
    await rejects(unary((cb) => c.listJobs({}, new Metadata(), { deadline: Date.now() + 10_000 }, cb)), status.UNAVAILABLE);
  } finally {
    c.close();
  }
  const raw = await connectTls({ ca: adminNode.caPem, servername: "localhost", cert: other.adminCertPem, key: other.adminKeyPem });
  assert.ok("error" in raw, `a certificate from another CA was accepted: ${JSON.stringify(raw)}`);
  // The server aborts the handshake (unknown CA); the client may see the alert or just the close. The same
  // connection with the admin certificate stays open (the TLS 1.3 test below).
  assert.match(raw.error.message, /unknown ca|bad certificate|closed/i);
});

test("TLS 1.2 is refused even with the admin certificate; TLS 1.3 with it succeeds", T, async () => {
  const creds = { ca: adminNode.caPem, cert: adminNode.certPem, key: adminNode.keyPem, servername: "localhost" };
  const old = await connectTls({ ...creds, minVersion: "TLSv1.2", maxVersion: "TLSv1.2" });
  assert.ok("error" in old, `TLS 1.2 handshake succeeded: ${JSON.stringify(old)}`);
  assert.match(old.error.message, /protocol version|unsupported protocol|wrong version/i);

  const ok = await connectTls({ ...creds, minVersion: "TLSv1.3" });
  assert.ok(!("error" in ok), `TLS 1.3 with the admin certificate failed: ${"error" in ok ? ok.error.message : ""}`);
  assert.equal(ok.protocol, "TLSv1.3");
  assert.equal(ok.authorized, true);
});

test("the server certificate verifies for the names clients dial: joblet, 127.0.0.1, localhost; not others", T, async () => {
  const creds = { ca: adminNode.caPem, cert: adminNode.certPem, key: adminNode.keyPem };
  for (const servername of ["joblet", "localhost"]) {
    const r = await connectTls({ ...creds, servername });
    assert.ok(!("error" in r), `servername ${servername}: ${"error" in r ? r.error.message : ""}`);
    assert.equal(r.authorized, true, servername);
  }
  // An IP is not sent as SNI: the identity check uses the host dialled, 127.0.0.1, against the IP SANs.
  const byIp = await connectTls({ ...creds });
  assert.ok(!("error" in byIp), `127.0.0.1: ${"error" in byIp ? byIp.error.message : ""}`);
  const wrong = await connectTls({ ...creds, servername: "not-joblet.example" });
  assert.ok("error" in wrong, "a name outside the SANs must fail verification");
  assert.match(wrong.error.message, /not in the cert's altnames|does not match/i);

  // A gRPC client that verifies the name "joblet" whatever address it dials, as reference clients do.
  const c = new JobletServiceClient(
    `127.0.0.1:${d.port}`,
    credentials.createSsl(Buffer.from(adminNode.caPem), Buffer.from(adminNode.keyPem), Buffer.from(adminNode.certPem)),
    { "grpc.ssl_target_name_override": "joblet", "grpc.default_authority": "joblet" },
  );
  try {
    const jobs = await unary<Jobs>((cb) => c.listJobs({}, cb));
    assert.ok(jobs.jobs.some((j) => j.id === job.id));
  } finally {
    c.close();
  }
});

test("rnx remembers the daemon's certificate once OpenSSL verified it; a changed one is verified again without failing the command", T, async () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), "joblet-it-verified-"));
  const file = path.join(cache, "verified-servers.json");
  try {
    const env = { RNX_CACHE_DIR: cache };
    const served = await new Promise<string>((resolve, reject) => {
      const sock = tls.connect({ host: "127.0.0.1", port: d.port, ca: adminNode.caPem, cert: adminNode.certPem, key: adminNode.keyPem, ALPNProtocols: ["h2"] });
      sock.once("secureConnect", () => {
        resolve(sock.getPeerCertificate().fingerprint256);
        sock.destroy();
      });
      sock.once("error", reject);
    });
    const entries = () => (JSON.parse(readFileSync(file, "utf8")) as { servers: { key: string; sha256: string }[] }).servers;

    const first = await d.rnx(["list"], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(entries().map((e) => [e.key.split(" ")[1], e.sha256]), [[adminNode.address, served]]);

    // As if the daemon's certificate had been renewed since: the command works, and the new one is kept.
    writeFileSync(file, JSON.stringify({ servers: entries().map((e) => ({ ...e, sha256: "00:11:22" })) }), { mode: 0o600 });
    const changed = await d.rnx(["status", job.id], { env });
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /RUNNING/);
    assert.deepEqual(entries().map((e) => e.sha256), [served]);

    rmSync(file);
    const off = await d.rnx(["list"], { env: { RNX_CACHE_DIR: "off" } });
    assert.equal(off.code, 0, off.stderr);
    assert.equal(existsSync(file), false);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
