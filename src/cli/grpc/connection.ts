// One HTTP/2 connection over mutual TLS to a gRPC server, made on first use and made again when it has
// closed or failed (a daemon restart), plus what is known about how far it got: that is what tells a refused
// connection, a failed TLS handshake, a client certificate the server rejected and a dropped connection apart.
// Named imports of Node's modules: a default import makes the bundle copy every export of each (~0.5 ms).
import { connect as connectHttp2, type ClientHttp2Session } from "node:http2";
import { connect as connectTls } from "node:tls";
import { setFlagsFromString } from "node:v8";
import { GrpcCall, type CallOptions } from "./call.js";
import { GrpcStatus, RpcError } from "./status.js";

/** Where to connect and with which credentials (PEM text). */
export interface ConnectionOptions {
  /** "host:port", IPv6 addresses in brackets. */
  readonly address: string;
  readonly caPem: string;
  readonly keyPem: string;
  readonly certPem: string;
}

/**
 * HTTP/2 flow-control window for each stream and for the whole connection, bytes. With the default 64 KiB a
 * server streaming a log waits for a WINDOW_UPDATE every 64 KiB (16,384 round trips per GiB); 16 MiB doubled
 * `rnx log` replay speed (bench/README.md). Data is only buffered this far when rnx's output is slower.
 */
const WINDOW_BYTES = 16 << 20;
/** Largest DATA frame the server may send, bytes: the protocol's maximum (2^24 − 1), fewer frames per message. */
const MAX_FRAME_BYTES = (1 << 24) - 1;
/** nghttp2's memory budget for the session, MiB: above it new streams are refused; a full window must fit. */
const MAX_SESSION_MEMORY_MIB = 64;

/** The markers rpc-errors.ts recognises in `details`; the rest of each text is for people. */
export const CLOSED_AFTER_HANDSHAKE = "the server closed the connection after the TLS handshake, before HTTP/2 started";
export const CONNECTION_LOST = "the connection to the server was lost";

/** One HTTP/2 session and how far it got. */
export class SessionLink {
  /** TLS handshake done (our side verified the server). */
  tlsDone = false;
  /** The server's first SETTINGS frame arrived: it accepted us and speaks HTTP/2. */
  settingsSeen = false;
  /** The first socket or session error, if any. */
  error: Error | undefined;
  /** No new calls: it has closed, failed or received GOAWAY. */
  unusable = false;
  readonly session: ClientHttp2Session;

  constructor(opts: ConnectionOptions) {
    const { host, port } = splitAddress(opts.address);
    this.session = withoutRegexpTierUp(() => connectHttp2(`https://${opts.address}`, {
      settings: { initialWindowSize: WINDOW_BYTES, maxFrameSize: MAX_FRAME_BYTES, enablePush: false },
      maxSessionMemory: MAX_SESSION_MEMORY_MIB,
      createConnection: () => {
        const socket = connectTls({
          host,
          port,
          ca: opts.caPem,
          key: opts.keyPem,
          cert: opts.certPem,
          ALPNProtocols: ["h2"],
          // SNI takes host names only: for an IP target leave it out (Node warns, DEP0123, when it is set to
          // an IP); the certificate is still verified against the IP (server certificates carry IP SANs).
          servername: looksLikeIp(host) ? undefined : host,
        });
        // Added before the session's own listener, so the cause is known when the session fails its streams.
        socket.on("error", (err) => this.fail(err));
        socket.once("secureConnect", () => (this.tlsDone = true));
        return socket;
      },
    }));
    this.session.on("remoteSettings", () => (this.settingsSeen = true));
    this.session.on("error", (err) => this.fail(err));
    this.session.on("goaway", () => (this.unusable = true));
    this.session.on("close", () => (this.unusable = true));
    this.session.once("connect", () => this.session.setLocalWindowSize(WINDOW_BYTES));
  }

  /** Why calls on this session failed without a status from the server: always UNAVAILABLE. */
  failure(): RpcError {
    const err = this.error;
    if (!this.tlsDone) {
      return new RpcError(GrpcStatus.UNAVAILABLE, err ? describeSocketError(err) : "the connection closed before the TLS handshake finished");
    }
    if (!this.settingsSeen) return new RpcError(GrpcStatus.UNAVAILABLE, CLOSED_AFTER_HANDSHAKE);
    return new RpcError(GrpcStatus.UNAVAILABLE, err ? `${CONNECTION_LOST}: ${describeSocketError(err)}` : CONNECTION_LOST);
  }

  private fail(err: Error): void {
    this.error ??= err;
    this.unusable = true;
  }
}

/** A lazily opened, re-opened-when-lost HTTP/2 connection; held open only while calls are running. */
export class GrpcConnection {
  private link: SessionLink | undefined;
  private active = 0;

  constructor(private readonly opts: ConnectionOptions) {}

  /**
   * Starts a call of `path` ("/package.Service/Method"). Throws RpcError (UNAVAILABLE) only if the session
   * refuses a new stream twice, on the current connection and on a fresh one.
   */
  call(path: string, opts: CallOptions): GrpcCall {
    try {
      return this.start(path, opts);
    } catch {
      // A session that stopped taking streams between our check and the request (GOAWAY, closing).
      if (this.link) this.link.unusable = true;
      try {
        return this.start(path, opts);
      } catch (err) {
        throw new RpcError(GrpcStatus.UNAVAILABLE, `cannot start ${path} on the connection: ${describeSocketError(err as Error)}`);
      }
    }
  }

  private start(path: string, opts: CallOptions): GrpcCall {
    if (!this.link || this.link.unusable || this.link.session.closed || this.link.session.destroyed) {
      this.link?.session.destroy();
      this.link = new SessionLink(this.opts);
    }
    const link = this.link;
    if (this.active++ === 0) link.session.ref();
    const done = () => {
      // The process may exit once no call is running, even with the connection open.
      if (--this.active === 0 && this.link && !this.link.session.destroyed) this.link.session.unref();
    };
    try {
      return new GrpcCall(link, path, opts, done);
    } catch (err) {
      done();
      throw err;
    }
  }

  /** Closes the connection; running calls are cancelled. */
  close(): void {
    this.link?.session.destroy();
    this.link = undefined;
  }
}

/**
 * Runs `connect` with V8's regular expressions compiled to machine code at once instead of interpreted first.
 * Connecting to a host name runs Node's IPv6 pattern (net.isIP) over it once; that pattern is large, and
 * interpreting it took ~13 ms of CPU on the 2-core VM against ~4 ms compiled (first call in a fresh process,
 * interleaved runs). The flag applies to patterns first run while it is set; it is restored at once, so
 * nothing else changes (and V8's flag hash, which the code cache is checked against, is the same again).
 */
function withoutRegexpTierUp<T>(connect: () => T): T {
  setFlagsFromString("--no-regexp-tier-up");
  try {
    return connect();
  } finally {
    setFlagsFromString("--regexp-tier-up");
  }
}

/** True for an IPv4 or IPv6 literal (a host name never holds ':' nor is all digits and dots); cheaper than net.isIP. */
function looksLikeIp(host: string): boolean {
  return host.includes(":") || /^[\d.]+$/.test(host);
}

/** "host:port" or "[v6]:port" → its parts. */
function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(":");
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(address.slice(i + 1)) };
}

/**
 * A socket or TLS error as "[CODE] message". With Happy Eyeballs (Node 20 tries every address of a name) a
 * refused connection is an AggregateError whose own message is empty: its attempts' messages are used.
 */
export function describeSocketError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  const inner = err instanceof AggregateError ? err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join("; ") : "";
  const message = err.message || inner || "connection failed";
  return code && !message.includes(code) ? `[${code}] ${message}` : message;
}
