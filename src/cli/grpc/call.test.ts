// The gRPC client against a real node:http2 server over mutual TLS in this process: request headers,
// responses cut into DATA frames in awkward places, every way a call can end (status in trailers, trailers
// only, bad or missing status, a non-gRPC answer, reset streams), deadline, cancel, the message size limit,
// the connection failures rpc-errors.ts tells apart, and connections made on a daemon certificate verified before.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http2, { constants as h2, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { generatePki, type Pki } from "../../shared/tls/certs.js";
import { CLOSED_AFTER_HANDSHAKE, CONNECTION_LOST, GrpcConnection, type ConnectionOptions } from "./connection.js";
import { messagePrefix } from "./frame.js";
import { GrpcStatus, RpcError } from "./status.js";
import { fileVerifiedServers, type VerifiedServers } from "./verified-servers.js";

let pki: Pki;
let other: Pki;
before(async () => {
  [pki, other] = await Promise.all([generatePki({ address: "localhost" }), generatePki({ address: "localhost" })]);
});

type Handler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

/** A TLS HTTP/2 server on 127.0.0.1 that hands every stream to `handler`; `streams` records what came in. */
async function serve(handler: Handler, serverPki: Pki = pki, host = "127.0.0.1") {
  const server = http2.createSecureServer({
    key: serverPki.serverKeyPem,
    cert: serverPki.serverCertPem,
    ca: serverPki.caCertPem,
    requestCert: true,
    rejectUnauthorized: true,
  });
  const seen: Array<{ headers: IncomingHttpHeaders; body: Buffer; rstCode?: number }> = [];
  // Every session, so that close() can end them (open ones would keep it waiting).
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (stream, headers) => {
    const rec: { headers: IncomingHttpHeaders; body: Buffer; rstCode?: number } = { headers, body: Buffer.alloc(0) };
    seen.push(rec);
    stream.on("data", (b: Buffer) => (rec.body = Buffer.concat([rec.body, b])));
    stream.on("close", () => (rec.rstCode = stream.rstCode));
    stream.on("error", () => {});
    handler(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    seen,
    options: (address = `localhost:${port}`, client: Pki = pki): ConnectionOptions => ({ address, caPem: client.caCertPem, keyPem: client.adminKeyPem, certPem: client.adminCertPem }),
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
}

/** Runs one call to completion: every message the server sent, and the error it ended with. */
function collect(conn: GrpcConnection, request: Buffer | undefined, opts: { timeoutMs?: number; maxMessageBytes?: number; path?: string } = {}) {
  return new Promise<{ messages: string[]; error: RpcError | undefined }>((resolve) => {
    const messages: string[] = [];
    const call = conn.call(opts.path ?? "/joblet.JobletService/Test", {
      timeoutMs: opts.timeoutMs,
      maxMessageBytes: opts.maxMessageBytes ?? 1 << 20,
      onMessage: (m) => messages.push(m.toString()),
      onEnd: (error) => resolve({ messages, error }),
    });
    if (request) call.write(request);
    call.end();
  });
}

/** The wire form of `texts` as gRPC messages. */
function frames(...texts: string[]): Buffer {
  return Buffer.concat(texts.flatMap((t) => [messagePrefix(Buffer.byteLength(t)), Buffer.from(t)]));
}

const OK_HEADERS = { ":status": 200, "content-type": "application/grpc" };

/** Answers with the messages' bytes written in pieces of `pieceBytes`, then status OK in trailers. */
function answer(texts: string[], pieceBytes = Infinity): Handler {
  return (stream) => {
    stream.respond(OK_HEADERS, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    const all = frames(...texts);
    const write = async () => {
      for (let i = 0; i < all.length; i += pieceBytes) {
        stream.write(all.subarray(i, Math.min(all.length, i + pieceBytes)));
        // Let each piece go out in its own DATA frame.
        if (pieceBytes !== Infinity) await sleep(1);
      }
      stream.end();
    };
    stream.once("end", () => void write());
    stream.resume();
  };
}

describe("gRPC calls over node:http2", () => {
  const servers: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const s of servers) await s.close();
  });
  const start = async (handler: Handler, serverPki?: Pki) => {
    const s = await serve(handler, serverPki);
    servers.push(s);
    return s;
  };

  test("a unary call: gRPC request headers, the framed request, the response and status OK", async () => {
    const s = await start(answer(["pong"]));
    const conn = new GrpcConnection(s.options());
    const r = await collect(conn, Buffer.from("ping"), { timeoutMs: 5000, path: "/joblet.JobletService/ListJobs" });
    conn.close();
    assert.deepEqual(r, { messages: ["pong"], error: undefined });
    const { headers, body } = s.seen[0]!;
    assert.equal(headers[":method"], "POST");
    assert.equal(headers[":path"], "/joblet.JobletService/ListJobs");
    assert.equal(headers["content-type"], "application/grpc");
    assert.equal(headers.te, "trailers");
    assert.equal(headers["grpc-timeout"], "5000m");
    assert.deepEqual(body, frames("ping"));
  });

  test("messages split across DATA frames, prefixes included, and several in one frame", async () => {
    const texts = ["first", "", "x".repeat(300), "last"];
    const large = ["first", "y".repeat(100_000), "last"];
    for (const [piece, want] of [[1, texts], [3, texts], [7, texts], [1000, large], [16_384, large]] as const) {
      const s = await start(answer([...want], piece));
      const conn = new GrpcConnection(s.options());
      const r = await collect(conn, Buffer.alloc(0));
      conn.close();
      assert.equal(r.error, undefined, `pieces of ${piece}: ${r.error?.message}`);
      assert.deepEqual(r.messages, want, `pieces of ${piece}`);
    }
    const s = await start(answer(texts));
    const conn = new GrpcConnection(s.options());
    assert.deepEqual((await collect(conn, undefined)).messages, texts, "all in one write");
    conn.close();
  });

  test("trailers-only: the status in the response headers; grpc-message percent-decoded; metadata kept", async () => {
    const s = await start((stream) => {
      stream.respond({ ...OK_HEADERS, "grpc-status": "5", "grpc-message": "job%20%22x%22%20not%20found%20%E2%80%94%20100%25", "joblet-hint": "rnx list" }, { endStream: true });
    });
    const conn = new GrpcConnection(s.options());
    const { messages, error } = await collect(conn, Buffer.from("q"));
    conn.close();
    assert.deepEqual(messages, []);
    assert.equal(error?.code, GrpcStatus.NOT_FOUND);
    assert.equal(error?.details, 'job "x" not found — 100%');
    assert.deepEqual(error?.metadata.get("joblet-hint"), ["rnx list"]);
  });

  test("a non-zero status in trailers after messages: the messages, then the error", async () => {
    const s = await start((stream) => {
      stream.respond(OK_HEADERS, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "9", "grpc-message": "not now" }));
      stream.end(frames("a", "b"));
    });
    const conn = new GrpcConnection(s.options());
    const r = await collect(conn, undefined);
    conn.close();
    assert.deepEqual(r.messages, ["a", "b"]);
    assert.equal(r.error?.code, GrpcStatus.FAILED_PRECONDITION);
    assert.equal(r.error?.details, "not now");
  });

  test("the server's trailers reach onTrailers before onEnd: after messages, and in a Trailers-Only response", async () => {
    const trailersOf = (conn: GrpcConnection) =>
      new Promise<{ seen: string[]; code: number | undefined }>((resolve) => {
        const seen: string[] = [];
        const call = conn.call("/joblet.JobletService/Test", {
          maxMessageBytes: 1 << 20,
          onMessage: (m) => seen.push(`message ${m.toString()}`),
          onTrailers: (t) => seen.push(`trailers ${t["grpc-status"]} ${t["joblet-job-bin"]}`),
          onEnd: (error) => resolve({ seen, code: error?.code }),
        });
        call.end();
      });
    const s = await start((stream) => {
      stream.respond(OK_HEADERS, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "joblet-job-bin": "CgF4" }));
      stream.end(frames("a"));
    });
    const conn = new GrpcConnection(s.options());
    assert.deepEqual(await trailersOf(conn), { seen: ["message a", "trailers 0 CgF4"], code: undefined });
    conn.close();
    const only = await start((stream) => stream.respond({ ...OK_HEADERS, "grpc-status": "0", "joblet-job-bin": "CgF5" }, { endStream: true }));
    const conn2 = new GrpcConnection(only.options());
    assert.deepEqual(await trailersOf(conn2), { seen: ["trailers 0 CgF5"], code: undefined });
    conn2.close();
  });

  test("a bad or missing status, a non-gRPC answer, a reset stream, a cut message", async () => {
    const cases: Array<[string, Handler, number, RegExp]> = [
      [
        "grpc-status not a number",
        (st) => st.respond({ ...OK_HEADERS, "grpc-status": "abc" }, { endStream: true }),
        GrpcStatus.UNKNOWN,
        /invalid grpc-status "abc"/,
      ],
      [
        "trailers without grpc-status",
        (st) => {
          st.respond(OK_HEADERS, { waitForTrailers: true });
          st.on("wantTrailers", () => st.sendTrailers({ "x-other": "1" }));
          st.end();
        },
        GrpcStatus.INTERNAL,
        /no grpc-status/,
      ],
      ["HTTP 404", (st) => st.respond({ ":status": 404 }, { endStream: true }), GrpcStatus.UNIMPLEMENTED, /HTTP 404/],
      ["HTTP 503", (st) => st.respond({ ":status": 503 }, { endStream: true }), GrpcStatus.UNAVAILABLE, /HTTP 503/],
      ["text/html", (st) => st.respond({ ":status": 200, "content-type": "text/html" }, { endStream: true }), GrpcStatus.UNKNOWN, /text\/html/],
      ["reset REFUSED_STREAM", (st) => st.close(h2.NGHTTP2_REFUSED_STREAM), GrpcStatus.UNAVAILABLE, /REFUSED_STREAM/],
      ["reset INTERNAL_ERROR", (st) => st.close(h2.NGHTTP2_INTERNAL_ERROR), GrpcStatus.INTERNAL, /error code 2/],
      [
        "status OK in the middle of a message",
        (st) => {
          st.respond(OK_HEADERS, { waitForTrailers: true });
          st.on("wantTrailers", () => st.sendTrailers({ "grpc-status": "0" }));
          st.end(frames("complete").subarray(0, 6));
        },
        GrpcStatus.INTERNAL,
        /middle of a message/,
      ],
    ];
    for (const [name, handler, code, details] of cases) {
      const s = await start(handler);
      const conn = new GrpcConnection(s.options());
      const { error } = await collect(conn, Buffer.from("q"), { timeoutMs: 5000 });
      conn.close();
      assert.equal(error?.code, code, `${name}: ${error?.message}`);
      assert.match(error!.details, details, name);
    }
  });

  test("a message over the limit fails the call with RESOURCE_EXHAUSTED and cancels the stream", async () => {
    const s = await start((stream) => {
      stream.respond(OK_HEADERS);
      stream.write(frames("x".repeat(2000)));
    });
    const conn = new GrpcConnection(s.options());
    const r = await collect(conn, undefined, { maxMessageBytes: 1000 });
    await sleep(50);
    conn.close();
    assert.equal(r.error?.code, GrpcStatus.RESOURCE_EXHAUSTED);
    assert.deepEqual(r.messages, []);
    assert.equal(s.seen[0]!.rstCode, h2.NGHTTP2_CANCEL);
  });

  test("a compressed message is refused with INTERNAL", async () => {
    const s = await start((stream) => {
      stream.respond(OK_HEADERS);
      const f = frames("zz");
      f[0] = 1;
      stream.end(f);
    });
    const conn = new GrpcConnection(s.options());
    const r = await collect(conn, undefined);
    conn.close();
    assert.equal(r.error?.code, GrpcStatus.INTERNAL);
    assert.match(r.error!.details, /compressed/);
  });

  test("deadline: a server that never answers → DEADLINE_EXCEEDED, and the server sees the stream cancelled", async () => {
    const s = await start((stream) => stream.respond(OK_HEADERS));
    const conn = new GrpcConnection(s.options());
    const t0 = Date.now();
    const r = await collect(conn, Buffer.from("q"), { timeoutMs: 300 });
    assert.equal(r.error?.code, GrpcStatus.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 >= 290, `after ${Date.now() - t0} ms`);
    await sleep(100);
    conn.close();
    assert.equal(s.seen[0]!.headers["grpc-timeout"], "300m");
    assert.equal(s.seen[0]!.rstCode, h2.NGHTTP2_CANCEL);
  });

  test("cancel: a server stream is reset with CANCEL; the call ends CANCELLED after the messages already delivered", async () => {
    let serverClosed!: () => void;
    const closed = new Promise<void>((resolve) => (serverClosed = resolve));
    const s = await start((stream) => {
      stream.respond(OK_HEADERS);
      stream.write(frames("tick"));
      stream.on("close", () => serverClosed());
    });
    const conn = new GrpcConnection(s.options());
    const r = await new Promise<{ messages: string[]; error: RpcError | undefined }>((resolve) => {
      const messages: string[] = [];
      const call = conn.call("/joblet.JobletService/GetJobLogs", {
        maxMessageBytes: 100,
        onMessage: (m) => {
          messages.push(m.toString());
          call.cancel();
        },
        onEnd: (error) => resolve({ messages, error }),
      });
      call.end();
    });
    await closed;
    conn.close();
    assert.deepEqual(r.messages, ["tick"]);
    assert.equal(r.error?.code, GrpcStatus.CANCELLED);
    assert.equal(s.seen[0]!.rstCode, h2.NGHTTP2_CANCEL);
  });

  test("bidirectional: the server fails the call while the client still sends; the call ends at the status", async () => {
    const s = await start((stream) => {
      stream.once("data", () => stream.respond({ ...OK_HEADERS, "grpc-status": "3", "grpc-message": "bad header" }, { endStream: true }));
    });
    const conn = new GrpcConnection(s.options());
    const error = await new Promise<RpcError | undefined>((resolve) => {
      const call = conn.call("/joblet.JobletService/RunJobWithUploads", { maxMessageBytes: 100, onMessage: () => {}, onEnd: resolve });
      call.write(Buffer.from("header"));
      // The client's side stays open: no end() here.
    });
    conn.close();
    assert.equal(error?.code, GrpcStatus.INVALID_ARGUMENT);
  });

  test("after the server's GOAWAY the next call goes over a new connection", async () => {
    const s = await start((stream, headers) => {
      answer(["ok"])(stream, headers);
      // Graceful: the call in progress completes, no new streams on this session.
      stream.once("close", () => stream.session?.goaway());
    });
    const conn = new GrpcConnection(s.options());
    assert.deepEqual(await collect(conn, undefined), { messages: ["ok"], error: undefined });
    await sleep(100);
    assert.deepEqual(await collect(conn, undefined, { timeoutMs: 5000 }), { messages: ["ok"], error: undefined });
    conn.close();
    assert.equal(s.seen.length, 2);
  });

  test("one connection for consecutive calls; a new one after the server dropped it", async () => {
    const s = await start(answer(["ok"]));
    const conn = new GrpcConnection(s.options());
    await collect(conn, undefined);
    await collect(conn, undefined);
    const sessionsBefore = new Set(s.seen.map((r) => r.headers));
    assert.equal(sessionsBefore.size, 2);
    await s.close();
    const down = await collect(conn, undefined, { timeoutMs: 5000 });
    assert.equal(down.error?.code, GrpcStatus.UNAVAILABLE, down.error?.message);
    conn.close();
  });
});

describe("connection failures, told apart for rpc-errors.ts", () => {
  test("nothing listening: UNAVAILABLE with ECONNREFUSED", async () => {
    const s = await serve(answer([]));
    await s.close();
    const conn = new GrpcConnection(s.options());
    const r = await collect(conn, undefined, { timeoutMs: 5000 });
    conn.close();
    assert.equal(r.error?.code, GrpcStatus.UNAVAILABLE);
    assert.match(r.error!.details, /ECONNREFUSED/);
  });

  test("a server certificate from another CA: UNAVAILABLE naming the verification failure", async () => {
    const s = await serve(answer(["x"]), other);
    const conn = new GrpcConnection(s.options());
    const r = await collect(conn, undefined, { timeoutMs: 5000 });
    conn.close();
    await s.close();
    assert.equal(r.error?.code, GrpcStatus.UNAVAILABLE);
    assert.match(r.error!.details, /self[- ]signed certificate|unable to verify|unable to get/i);
  });

  test("an IP target the server certificate does not cover: ERR_TLS_CERT_ALTNAME_INVALID", async () => {
    // Server certificates always cover localhost, 127.0.0.1 and ::1; 127.0.0.2 is loopback too, not covered.
    const s = await serve(answer(["x"]), pki, "0.0.0.0");
    const conn = new GrpcConnection(s.options(`127.0.0.2:${s.port}`));
    const r = await collect(conn, undefined, { timeoutMs: 5000 });
    conn.close();
    await s.close();
    assert.match(r.error!.details, /ERR_TLS_CERT_ALTNAME_INVALID.*127\.0\.0\.2 is not in the cert's list: 127\.0\.0\.1, ::1$/);
  });

  test("a client certificate the server rejects: closed after the handshake, before HTTP/2", async () => {
    const s = await serve(answer(["x"]));
    const conn = new GrpcConnection({ ...s.options(), keyPem: other.adminKeyPem, certPem: other.adminCertPem });
    const r = await collect(conn, undefined, { timeoutMs: 5000 });
    conn.close();
    await s.close();
    assert.equal(r.error?.code, GrpcStatus.UNAVAILABLE);
    assert.match(r.error!.details, new RegExp(`${CLOSED_AFTER_HANDSHAKE}|alert`));
  });

  test("the server going away mid-stream: UNAVAILABLE, connection lost", async () => {
    const s = await serve((stream) => {
      stream.respond(OK_HEADERS);
      stream.write(frames("partial"));
      setTimeout(() => stream.session?.destroy(), 50);
    });
    const conn = new GrpcConnection(s.options());
    const r = await collect(conn, undefined);
    conn.close();
    await s.close();
    assert.deepEqual(r.messages, ["partial"]);
    assert.equal(r.error?.code, GrpcStatus.UNAVAILABLE);
    assert.match(r.error!.details, new RegExp(CONNECTION_LOST));
  });
});

describe("a daemon certificate verified before (verified-servers.ts)", () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "rnx-call-verified-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  let n = 0;
  /** A store of its own in the temp dir. */
  const store = (): VerifiedServers => fileVerifiedServers(path.join(tmp, `v${n++}`, "verified-servers.json"));
  const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
  /** An entry for `certPem` as if it had been verified for (client CA, address) before. */
  const remembered = (certPem: string) => ({ sha256: fingerprint(certPem), notBefore: Date.now() - 60_000, notAfter: Date.now() + 3_600_000 });

  test("the first connection is verified by OpenSSL and its certificate remembered; the next one is made on it", async () => {
    const s = await serve(answer(["a"]));
    const verified = store();
    const opts = { ...s.options(), verified };
    const first = new GrpcConnection(opts);
    assert.deepEqual((await collect(first, Buffer.from("q1"))).messages, ["a"]);
    first.close();
    assert.equal(verified.lookup(opts.caPem, opts.address)?.sha256, fingerprint(pki.serverCertPem));
    const second = new GrpcConnection(opts);
    const r = await collect(second, Buffer.from("q2"));
    second.close();
    await s.close();
    assert.deepEqual(r, { messages: ["a"], error: undefined });
    assert.deepEqual(s.seen.map((x) => x.body), [frames("q1"), frames("q2")]);
  });

  test("the remembered certificate is accepted without a chain check; another one is verified, and refused as before", async () => {
    // `other`'s server certificate is not signed by the client's CA (pki's): only the entry can make it
    // acceptable. The client certificate is one `other`'s server accepts.
    const s = await serve(answer(["a"]), other);
    const verified = store();
    const opts = { ...s.options(), keyPem: other.adminKeyPem, certPem: other.adminCertPem, verified };
    verified.remember(opts.caPem, opts.address, remembered(other.serverCertPem));
    const conn = new GrpcConnection(opts);
    assert.deepEqual(await collect(conn, Buffer.from("q")), { messages: ["a"], error: undefined });
    conn.close();

    verified.remember(opts.caPem, opts.address, remembered(pki.serverCertPem));
    const again = new GrpcConnection(opts);
    const r = await collect(again, Buffer.from("q"), { timeoutMs: 5000 });
    again.close();
    await s.close();
    assert.equal(r.error?.code, GrpcStatus.UNAVAILABLE);
    assert.match(r.error!.details, /self[- ]signed certificate|unable to verify|unable to get/i);
    assert.equal(verified.lookup(opts.caPem, opts.address), undefined, "the entry that did not match is dropped");
    assert.equal(s.seen.length, 1, "nothing reached the server over the unverified connection");
  });

  test("a certificate renewed since: the call goes over a verified connection, unnoticed, and the new one is remembered", async () => {
    const s = await serve(answer(["a", "b"]));
    const verified = store();
    const opts = { ...s.options(), verified };
    verified.remember(opts.caPem, opts.address, remembered(other.serverCertPem));
    const conn = new GrpcConnection(opts);
    const r = await collect(conn, Buffer.from("q"));
    conn.close();
    await s.close();
    assert.deepEqual(r, { messages: ["a", "b"], error: undefined });
    assert.deepEqual(s.seen.map((x) => x.body), [frames("q")]);
    assert.equal(verified.lookup(opts.caPem, opts.address)?.sha256, fingerprint(pki.serverCertPem));
  });

  test("messages written before the certificate is checked arrive in order; a cancel then ends the call CANCELLED", async () => {
    const s = await serve(answer(["ok"]));
    const verified = store();
    const opts = { ...s.options(), verified };
    verified.remember(opts.caPem, opts.address, remembered(pki.serverCertPem));
    const conn = new GrpcConnection(opts);
    const r = await new Promise<{ messages: string[]; error: RpcError | undefined }>((resolve) => {
      const messages: string[] = [];
      const call = conn.call("/joblet.JobletService/Test", {
        maxMessageBytes: 1 << 20,
        onMessage: (m) => messages.push(m.toString()),
        onEnd: (error) => resolve({ messages, error }),
      });
      for (const t of ["one", "two", "three"]) call.write(Buffer.from(t));
      call.end();
    });
    assert.deepEqual(r, { messages: ["ok"], error: undefined });
    assert.deepEqual(s.seen.map((x) => x.body), [frames("one", "two", "three")]);

    const cancelled = await new Promise<RpcError | undefined>((resolve) => {
      const call = new GrpcConnection(opts).call("/joblet.JobletService/Test", { maxMessageBytes: 1 << 20, onMessage: () => {}, onEnd: resolve });
      call.write(Buffer.from("never sent"));
      call.cancel();
    });
    conn.close();
    await s.close();
    assert.equal(cancelled?.code, GrpcStatus.CANCELLED);
  });

  test("a client certificate the server rejects, with a remembered certificate: the same closed-after-handshake", async () => {
    const s = await serve(answer(["x"]));
    const verified = store();
    const opts = { ...s.options(), keyPem: other.adminKeyPem, certPem: other.adminCertPem, verified };
    verified.remember(opts.caPem, opts.address, remembered(pki.serverCertPem));
    const conn = new GrpcConnection(opts);
    const r = await collect(conn, undefined, { timeoutMs: 5000 });
    conn.close();
    await s.close();
    assert.equal(r.error?.code, GrpcStatus.UNAVAILABLE);
    assert.match(r.error!.details, new RegExp(`${CLOSED_AFTER_HANDSHAKE}|alert`));
    assert.ok(verified.lookup(opts.caPem, opts.address), "the server's certificate was the remembered one: kept");
  });

  test("nothing listening, with a remembered certificate: the same UNAVAILABLE with ECONNREFUSED", async () => {
    const s = await serve(answer([]));
    await s.close();
    const verified = store();
    const opts = { ...s.options(), verified };
    verified.remember(opts.caPem, opts.address, remembered(pki.serverCertPem));
    const conn = new GrpcConnection(opts);
    const r = await collect(conn, undefined, { timeoutMs: 5000 });
    conn.close();
    assert.equal(r.error?.code, GrpcStatus.UNAVAILABLE);
    assert.match(r.error!.details, /ECONNREFUSED/);
  });
});
