// Server TLS: mutual authentication against our CA, TLS 1.3 only, on a listener of our own. grpc-js's own
// TLS server (createSsl) has no minimum-version option and cannot say who a refused client was; this one
// refuses TLS 1.2 and reports every refused handshake (for the audit log), then hands the verified
// connections to grpc-js (Server.createConnectionInjector, grpc-js >= 1.11).
import type { AddressInfo } from "node:net";
import { createServer as createTlsServer, type PeerCertificate, type TLSSocket } from "node:tls";

/** A connection refused during or right after the TLS handshake: it never became a call. */
export interface RefusedHandshake {
  /** "address:port" of the peer, "" when unknown. */
  remote: string;
  /** OpenSSL's reason, e.g. "CERT_HAS_EXPIRED", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "ERR_SSL_UNSUPPORTED_PROTOCOL". */
  reason: string;
  /** The client certificate's subject and serial, when it sent one ("" otherwise). */
  subject: string;
  serial: string;
}

/** A TLS listener whose verified connections are handed to grpc-js. */
export interface TlsListener {
  port: number;
  close(): Promise<void>;
}

/**
 * Listens with mutual TLS 1.3 and hands each verified connection to `accept` (grpc-js's connection injector).
 * grpc-js's own TLS server refuses a bad client certificate inside OpenSSL and reports only a bare
 * ECONNRESET, so nobody could say who was refused or why. Here the handshake completes, the verdict
 * (`socket.authorized`) is read, and a refused peer is reported to `onRefused` and closed before a single
 * HTTP/2 byte is read: it never reaches grpc-js. A client still sees its connection closed, as before.
 */
export function listenTls(
  opts: { host: string; port: number; tls: { caPem: string; certPem: string; keyPem: string } },
  accept: (socket: TLSSocket) => void,
  onRefused: (h: RefusedHandshake) => void,
): Promise<TlsListener> {
  const server = createTlsServer({
    ca: opts.tls.caPem,
    cert: opts.tls.certPem,
    key: opts.tls.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: "TLSv1.3",
    // TLS 1.3's three suites, AES-128-GCM first and chosen by us (OpenSSL otherwise takes the client's order,
    // AES-256 first in Node): with AES-NI it encrypts 16 KiB records ~1.4× as fast (openssl speed on the
    // measuring host: 4.1 vs 2.9 GB/s), and every byte of a streamed log is encrypted once here and
    // decrypted once in rnx. 128-bit AES is what TLS 1.3 requires every implementation to offer.
    ciphers: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
    honorCipherOrder: true,
    ALPNProtocols: ["h2"],
  });
  server.on("secureConnection", (socket: TLSSocket) => {
    if (socket.authorized) {
      readPeerCertificateOnce(socket);
      return accept(socket);
    }
    const peer = socket.getPeerCertificate();
    const hasCert = peer && Object.keys(peer).length > 0;
    onRefused({
      remote: remoteOf(socket),
      reason: String(socket.authorizationError ?? "no client certificate"),
      subject: hasCert && peer.subject ? Object.entries(peer.subject).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`).join(", ") : "",
      serial: hasCert ? (peer.serialNumber ?? "").toLowerCase() : "",
    });
    socket.destroy();
  });
  server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    onRefused({ remote: remoteOf(socket), reason: err.code ?? err.message, subject: "", serial: "" });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

/**
 * Makes `socket.getPeerCertificate()` read the certificate once per connection. grpc-js's getAuthContext calls
 * it on every call, and each call builds the certificate object anew from OpenSSL (~3 ms of the daemon's
 * thread at load 60, with rnx polling ListJobs); the certificate cannot change during a TLS 1.3 connection (no
 * renegotiation, and we request no post-handshake authentication). `getPeerCertificate(true)` is passed through.
 */
export function readPeerCertificateOnce(socket: TLSSocket): void {
  const read = socket.getPeerCertificate.bind(socket);
  let cert: PeerCertificate | undefined;
  socket.getPeerCertificate = ((detailed?: boolean) => (detailed ? read(true) : (cert ??= read()))) as TLSSocket["getPeerCertificate"];
}

function remoteOf(socket: TLSSocket): string {
  return socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : "";
}
