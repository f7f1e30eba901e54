import assert from "node:assert/strict";
import tls from "node:tls";
import { after, before, test } from "node:test";
import { generatePki, type Pki } from "../../shared/tls/certs.js";
import { listenTls, type TlsListener } from "./tls.js";

let pki: Pki;
let listener: TlsListener;
const accepted: tls.TLSSocket[] = [];

before(async () => {
  pki = await generatePki({ address: "127.0.0.1" });
  listener = await listenTls(
    { host: "127.0.0.1", port: 0, tls: { caPem: pki.caCertPem, certPem: pki.serverCertPem, keyPem: pki.serverKeyPem } },
    (s) => accepted.push(s),
    () => undefined,
  );
});

after(async () => {
  for (const s of accepted) s.destroy();
  await listener.close();
});

/** Connects with the admin certificate; resolves with the negotiated cipher suite's name. */
function cipherWith(opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      host: "127.0.0.1",
      port: listener.port,
      ca: pki.caCertPem,
      cert: pki.adminCertPem,
      key: pki.adminKeyPem,
      ALPNProtocols: ["h2"],
      ...opts,
    });
    sock.once("secureConnect", () => {
      resolve(sock.getCipher().name);
      sock.destroy();
    });
    sock.once("error", reject);
  });
}

test("listenTls: the server picks AES-128-GCM whatever order the client offers", async () => {
  // Node's default order offers AES-256-GCM first.
  assert.equal(await cipherWith({}), "TLS_AES_128_GCM_SHA256");
  assert.equal(await cipherWith({ ciphers: "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256" }), "TLS_AES_128_GCM_SHA256");
});

test("listenTls: a client without AES-128-GCM still connects with another TLS 1.3 suite", async () => {
  assert.equal(await cipherWith({ ciphers: "TLS_CHACHA20_POLY1305_SHA256" }), "TLS_CHACHA20_POLY1305_SHA256");
  assert.equal(await cipherWith({ ciphers: "TLS_AES_256_GCM_SHA384" }), "TLS_AES_256_GCM_SHA384");
});

test("listenTls: an accepted socket reads its peer's certificate once", async () => {
  const before = accepted.length;
  const client = tls.connect({ host: "127.0.0.1", port: listener.port, ca: pki.caCertPem, cert: pki.adminCertPem, key: pki.adminKeyPem, ALPNProtocols: ["h2"] });
  try {
    // Held open until the server has accepted it (its secureConnection can come after the client's secureConnect).
    for (let i = 0; i < 200 && accepted.length === before; i++) await new Promise((r) => setTimeout(r, 10));
    const sock = accepted[before];
    assert.ok(sock, "the connection was accepted");
    const first = sock.getPeerCertificate();
    assert.equal(first.subject.OU, "admin");
    assert.equal(sock.getPeerCertificate(), first, "the same object: read once");
    assert.notEqual(sock.getPeerCertificate(true), first, "a detailed read goes to OpenSSL");
  } finally {
    client.destroy();
  }
});
