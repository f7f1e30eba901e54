import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import { isJobletError } from "../errors.js";
import { type Pki, checkHost, describeCertificate, generatePki, roleFromOU } from "./certs.js";

const DAY_MS = 24 * 60 * 60 * 1000;
// Whole seconds: X.509 times have second precision, so validity arithmetic below is exact. The real current
// time, because the handshake tests check validity against the clock.
const now = new Date(Math.floor(Date.now() / 1000) * 1000);

let pki: Pki;
let otherPki: Pki;

before(async () => {
  const started = performance.now();
  pki = await generatePki({ address: "10.20.30.40", port: 50051, names: ["jobs.example.com", "fd00::7"], now });
  const firstMs = performance.now() - started;
  const again = performance.now();
  otherPki = await generatePki({ address: "localhost" });
  const secondMs = performance.now() - again;
  console.log(`generatePki: first ${firstMs.toFixed(1)} ms (cold), second ${secondMs.toFixed(1)} ms`);
});

describe("generatePki", () => {
  test("returns PEM certificates and PKCS#8 PEM keys", () => {
    for (const [name, value] of Object.entries(pki)) {
      const header = name.endsWith("KeyPem") ? "-----BEGIN PRIVATE KEY-----\n" : "-----BEGIN CERTIFICATE-----\n";
      assert.ok(value.startsWith(header), `${name} starts with ${header}`);
      assert.ok(value.endsWith("-----\n"), `${name} ends with one newline`);
    }
  });

  test("CA is a self-signed P-256 CA valid for 10 years", () => {
    const ca = new X509Certificate(pki.caCertPem);
    assert.equal(ca.ca, true);
    assert.ok(ca.checkIssued(ca));
    assert.ok(ca.verify(ca.publicKey));
    assert.equal(ca.publicKey.asymmetricKeyType, "ec");
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.match(ca.subject, /CN=Joblet CA/);
    const info = describeCertificate(pki.caCertPem);
    assert.equal(info.notAfter.getTime() - now.getTime(), 3650 * DAY_MS);
    assert.ok(info.notBefore < now, "backdated for clock skew");
    assert.equal(info.role, undefined);
  });

  test("server certificate is issued by the CA and valid for joblet, loopback, the address and the names", () => {
    const ca = new X509Certificate(pki.caCertPem);
    const server = new X509Certificate(pki.serverCertPem);
    assert.ok(server.checkIssued(ca));
    assert.ok(server.verify(ca.publicKey));
    assert.ok(!server.verify(new X509Certificate(otherPki.caCertPem).publicKey), "not verifiable by another CA");
    assert.equal(server.ca, false);
    assert.equal(server.checkHost("joblet"), "joblet");
    assert.equal(server.checkHost("localhost"), "localhost");
    assert.equal(server.checkHost("jobs.example.com"), "jobs.example.com");
    assert.equal(server.checkHost("other.example.com"), undefined);
    assert.equal(server.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(server.checkIP("::1"), "::1");
    assert.equal(server.checkIP("10.20.30.40"), "10.20.30.40");
    assert.equal(server.checkIP("fd00::7"), "fd00::7");
    assert.equal(server.checkIP("10.20.30.41"), undefined);
    assert.deepEqual(server.keyUsage, ["1.3.6.1.5.5.7.3.1"], "extKeyUsage serverAuth only");
    assert.match(server.subject, /OU=server/);
    assert.match(server.subject, /CN=joblet/);

    const info = describeCertificate(pki.serverCertPem);
    assert.deepEqual(info.sans, [
      "IP:10.20.30.40",
      "DNS:localhost",
      "IP:127.0.0.1",
      "IP:::1",
      "DNS:jobs.example.com",
      "IP:fd00::7",
      "DNS:joblet",
    ]);
    assert.equal(info.notAfter.getTime() - now.getTime(), 365 * DAY_MS);
    assert.equal(info.serial.length, 32, "16-byte serial");
  });

  test("SANs are not repeated when the address is already a default", async () => {
    const info = describeCertificate((await generatePki({ address: "localhost", names: ["joblet", "127.0.0.1"] })).serverCertPem);
    assert.deepEqual(info.sans, ["DNS:localhost", "IP:127.0.0.1", "IP:::1", "DNS:joblet"]);
  });

  test("a bracketed IPv6 address becomes an IP SAN", async () => {
    const server = new X509Certificate((await generatePki({ address: "[fd00::9]" })).serverCertPem);
    assert.equal(server.checkIP("fd00::9"), "fd00::9");
  });

  test("client certificates carry their role in OU and are for client auth only", () => {
    const ca = new X509Certificate(pki.caCertPem);
    for (const [pem, role] of [
      [pki.adminCertPem, "admin"],
      [pki.viewerCertPem, "viewer"],
    ] as const) {
      const cert = new X509Certificate(pem);
      assert.ok(cert.checkIssued(ca));
      assert.ok(cert.verify(ca.publicKey));
      assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
      const info = describeCertificate(pem);
      assert.equal(info.role, role);
      assert.equal(info.organizationalUnit, role);
      assert.equal(info.commonName, `${role}-client`);
      assert.equal(info.subject, `O=Joblet, OU=${role}, CN=${role}-client`);
      assert.deepEqual(info.sans, []);
      assert.equal(info.notAfter.getTime() - now.getTime(), 365 * DAY_MS);
    }
  });

  test("each private key belongs to its certificate", () => {
    const pairs = [
      [pki.caKeyPem, pki.caCertPem],
      [pki.serverKeyPem, pki.serverCertPem],
      [pki.adminKeyPem, pki.adminCertPem],
      [pki.viewerKeyPem, pki.viewerCertPem],
    ] as const;
    const data = Buffer.from("joblet");
    for (const [keyPem, certPem] of pairs) {
      const key = createPrivateKey(keyPem);
      const cert = new X509Certificate(certPem);
      assert.ok(verify("sha256", data, cert.publicKey, sign("sha256", data, key)));
      assert.equal(
        createPublicKey(key).export({ format: "der", type: "spki" }).toString("hex"),
        cert.publicKey.export({ format: "der", type: "spki" }).toString("hex"),
      );
    }
  });

  test("serials are random and distinct", () => {
    const serials = [pki, otherPki].flatMap((p) =>
      [p.caCertPem, p.serverCertPem, p.adminCertPem, p.viewerCertPem].map((c) => describeCertificate(c).serial),
    );
    assert.equal(new Set(serials).size, serials.length);
    for (const s of serials) assert.match(s, /^[0-7][0-9a-f]{31}$/);
  });

  test("refuses bad addresses, names and ports, naming the flag", async () => {
    const cases: [Parameters<typeof generatePki>[0], string][] = [
      [{ address: "" }, "--address"],
      [{ address: "my host" }, "--address"],
      [{ address: "a,b" }, "--address"],
      [{ address: "host:50051" }, "--address"],
      [{ address: "localhost", names: ["ok.example", ""] }, "--names"],
      [{ address: "localhost", names: ["x y"] }, "--names"],
      [{ address: "localhost", port: 0 }, "--port"],
      [{ address: "localhost", port: 70000 }, "--port"],
    ];
    for (const [opts, field] of cases) {
      await assert.rejects(generatePki(opts), (err) => {
        assert.ok(isJobletError(err, "INVALID_ARGUMENT"), String(err));
        assert.ok(err.message.startsWith(`${field}: expected`), err.message);
        return true;
      });
    }
  });
});

describe("describeCertificate", () => {
  test("refuses text that is not a certificate", () => {
    assert.throws(() => describeCertificate("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"), (err) => {
      assert.ok(isJobletError(err, "INVALID_ARGUMENT"));
      assert.match(err.message, /^certificate: expected a PEM-encoded X.509 certificate/);
      return true;
    });
  });
});

describe("roleFromOU", () => {
  test("reads the role case-insensitively; admin wins among several OUs", () => {
    assert.equal(roleFromOU("admin"), "admin");
    assert.equal(roleFromOU("Viewer"), "viewer");
    assert.equal(roleFromOU("ADMIN"), "admin");
    assert.equal(roleFromOU(["viewer", "Admin"]), "admin");
    assert.equal(roleFromOU(["ops", "viewer"]), "viewer");
    assert.equal(roleFromOU("server"), undefined);
    assert.equal(roleFromOU("administrator"), undefined);
    assert.equal(roleFromOU([]), undefined);
    assert.equal(roleFromOU(undefined), undefined);
  });
});

describe("checkHost", () => {
  test("accepts names and IP literals, strips IPv6 brackets", () => {
    assert.equal(checkHost("--address", "joblet.example.com"), "joblet.example.com");
    assert.equal(checkHost("--address", "192.168.1.5"), "192.168.1.5");
    assert.equal(checkHost("--address", "::1"), "::1");
    assert.equal(checkHost("--address", "[::1]"), "::1");
    assert.throws(() => checkHost("--address", "[not-ip]"), /--address: expected/);
  });
});

// A real TLS 1.3 handshake with the generated set: what the daemon's gRPC server will do, minus gRPC.
describe("mutual TLS with the generated certificates", () => {
  let server: tls.Server;
  let port: number;
  const accepted: string[] = [];
  const refused: string[] = [];

  before(async () => {
    server = tls.createServer(
      {
        key: pki.serverKeyPem,
        cert: pki.serverCertPem,
        ca: pki.caCertPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
      },
      (socket) => {
        const peer = socket.getPeerCertificate();
        accepted.push(String(peer.subject.OU));
        socket.end(`hello ${roleFromOU(peer.subject.OU)}`);
      },
    );
    server.on("tlsClientError", (err) => refused.push(err.message));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Connects, reads until the server closes; resolves with what was read and any error, never rejects. */
  function exchange(opts: tls.ConnectionOptions): Promise<{ data: string; error?: Error; protocol?: string | null }> {
    return new Promise((resolve) => {
      let data = "";
      let error: Error | undefined;
      let protocol: string | null | undefined;
      const socket = tls.connect({ host: "127.0.0.1", port, ca: pki.caCertPem, ...opts });
      socket.setTimeout(5000, () => socket.destroy(new Error("timed out")));
      socket.on("secureConnect", () => (protocol = socket.getProtocol()));
      socket.on("data", (chunk) => (data += chunk));
      socket.on("error", (err) => (error = err));
      socket.on("close", () => resolve({ data, error, protocol }));
    });
  }

  test("the admin client connects with servername localhost over TLS 1.3", async () => {
    const res = await exchange({ servername: "localhost", key: pki.adminKeyPem, cert: pki.adminCertPem });
    assert.equal(res.error, undefined);
    assert.equal(res.data, "hello admin");
    assert.equal(res.protocol, "TLSv1.3");
  });

  test("the viewer client connects with servername joblet, as reference clients verify", async () => {
    const res = await exchange({ servername: "joblet", key: pki.viewerKeyPem, cert: pki.viewerCertPem });
    assert.equal(res.error, undefined);
    assert.equal(res.data, "hello viewer");
  });

  test("a client certificate from another CA is refused", async () => {
    const before = refused.length;
    const res = await exchange({ servername: "localhost", key: otherPki.adminKeyPem, cert: otherPki.adminCertPem });
    // In TLS 1.3 the client's handshake completes before the server checks its certificate, so the client may
    // see an alert or just a closed socket; the server's refusal is what counts. Node's server destroys an
    // unauthorized socket without a reason, so tlsClientError says only "socket hang up"; the last test shows
    // the connection handler never ran for it.
    assert.equal(res.data, "");
    assert.equal(refused.length, before + 1);
    console.log(`other CA: server said "${refused.at(-1)}", client saw ${res.error?.message ?? "a close"}`);
  });

  test("a client without a certificate is refused", async () => {
    const before = refused.length;
    const res = await exchange({ servername: "localhost" });
    assert.equal(res.data, "");
    assert.equal(refused.length, before + 1);
    console.log(`no cert: server said "${refused.at(-1)}", client saw ${res.error?.message ?? "a close"}`);
  });

  test("a client that trusts another CA refuses the server", async () => {
    const res = await exchange({
      servername: "localhost",
      ca: otherPki.caCertPem,
      key: pki.adminKeyPem,
      cert: pki.adminCertPem,
    });
    assert.equal(res.data, "");
    assert.match(String(res.error?.message), /self-signed|unable to verify|issuer/i);
  });

  test("a TLS 1.2 client is refused", async () => {
    const res = await exchange({
      servername: "localhost",
      maxVersion: "TLSv1.2",
      key: pki.adminKeyPem,
      cert: pki.adminCertPem,
    });
    assert.equal(res.data, "");
    assert.ok(res.error);
  });

  test("only the two good clients were accepted", () => {
    assert.deepEqual(accepted, ["admin", "viewer"]);
  });
});
