// One HTTP/2 connection over mutual TLS to a gRPC server, made on first use and made again when it has
// closed or failed (a daemon restart), plus what is known about how far it got: that is what tells a refused
// connection, a failed TLS handshake, a client certificate the server rejected and a dropped connection apart.
// A daemon certificate verified before is recognised instead of verified again (verified-servers.ts).
// Named imports of Node's modules: a default import makes the bundle copy every export of each (~0.5 ms).
// node:http2 is loaded only once the TLS connection is under way (loadHttp2).
import type * as Http2 from "node:http2";
import type { ClientHttp2Session } from "node:http2";
import { createRequire } from "node:module";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { setFlagsFromString } from "node:v8";
import { GrpcCall, type CallOptions } from "./call.js";
import { GrpcStatus, RpcError } from "./status.js";
import type { RememberedCert, VerifiedServers } from "./verified-servers.js";

/** Where to connect and with which credentials (PEM text). */
export interface ConnectionOptions {
  /** "host:port", IPv6 addresses in brackets. */
  readonly address: string;
  readonly caPem: string;
  readonly keyPem: string;
  readonly certPem: string;
  /** Daemon certificates verified before (verified-servers.ts); without it every connection is verified. */
  readonly verified?: VerifiedServers;
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

/**
 * One HTTP/2 session and how far it got. When the daemon's certificate was verified before (`opts.verified`),
 * the TLS connection is made first without a chain check, and the session only starts on it once the server
 * has presented that same certificate; any other certificate closes that connection, unused, and the session
 * starts on a new one that OpenSSL verifies (and whose certificate is then remembered). Until then `session`
 * is undefined and calls wait (whenReady).
 */
export class SessionLink {
  /** TLS handshake done (our side verified the server). */
  tlsDone = false;
  /** The server's first SETTINGS frame arrived: it accepted us and speaks HTTP/2. */
  settingsSeen = false;
  /** The first socket or session error, if any. */
  error: Error | undefined;
  /** No new calls: it has closed, failed or received GOAWAY. */
  unusable = false;
  /** The HTTP/2 session; undefined while a remembered certificate is being checked. */
  session: ClientHttp2Session | undefined;
  /** Called once the session exists (or the connection failed before it could). */
  private waiting: (() => void)[] = [];
  private preSocket: TLSSocket | undefined;
  private readonly target: { host: string; port: number; servername: string | undefined };

  constructor(private readonly opts: ConnectionOptions) {
    // Split here, outside withoutRegexpTierUp: a pattern must always run on the same side of it (below).
    const { host, port } = splitAddress(opts.address);
    // SNI takes host names only: for an IP target leave it out (Node warns, DEP0123, when it is set to an
    // IP); the certificate is still verified against the IP (server certificates carry IP SANs).
    this.target = { host, port, servername: looksLikeIp(host) ? undefined : host };
    const remembered = opts.verified?.lookup(opts.caPem, opts.address);
    if (remembered) this.checkRemembered(remembered);
    else this.session = this.startSession(this.connectVerified());
  }

  /** Runs `fn` once the session exists or the connection has failed without one (at once if so already). */
  whenReady(fn: () => void): void {
    if (this.session || this.unusable) fn();
    else this.waiting.push(fn);
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

  /** True once nothing more can come of it: its session is gone, or it failed before having one. */
  get dead(): boolean {
    return this.session ? this.session.closed || this.session.destroyed : this.unusable;
  }

  /** Closes the session (its calls are cancelled), or the connection still being checked. */
  destroy(): void {
    this.unusable = true;
    this.session?.destroy();
    this.preSocket?.destroy();
    this.ready();
  }

  private fail(err: Error): void {
    this.error ??= err;
    this.unusable = true;
  }

  private ready(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const fn of waiting) fn();
  }

  /** Connects without a chain check; starts the session on it if the server presents `remembered`. */
  private checkRemembered(remembered: RememberedCert): void {
    const socket = withoutRegexpTierUp(() => this.connectTls(false));
    // While the name is looked up and the handshake runs: the session will need it.
    loadHttp2();
    this.preSocket = socket;
    socket.on("error", (err) => this.fail(err));
    socket.once("close", () => {
      if (this.session) return; // it carries the session, or it was replaced by a verified connection
      this.unusable = true;
      this.ready();
    });
    socket.once("secureConnect", () => {
      this.preSocket = undefined;
      if (this.unusable) return; // destroyed meanwhile; its 'close' wakes the waiting calls
      const cert = socket.getPeerCertificate();
      const now = Date.now();
      if (cert.fingerprint256 === remembered.sha256 && now >= remembered.notBefore && now <= remembered.notAfter) {
        this.tlsDone = true;
        this.session = this.startSession(socket);
      } else {
        // Another certificate (renewed, another daemon at the address): nothing is sent over this connection;
        // the session starts on a new one that OpenSSL verifies (set first: this one's 'close' then ignored).
        this.opts.verified?.forget(this.opts.caPem, this.opts.address);
        this.session = this.startSession(this.connectVerified());
        socket.destroy();
      }
      this.ready();
    });
  }

  /**
   * A TLS connection to the daemon. verify: OpenSSL checks the chain against the node's CA and the name
   * (Node's default); otherwise nothing is checked here and the caller must compare the certificate.
   */
  private connectTls(verify: boolean): TLSSocket {
    const { host, port } = this.target;
    return connectTls({
      host,
      port,
      // ca: [] trusts nothing and, unlike any ca, does not make Node build its root store.
      ...(verify ? { ca: this.opts.caPem } : { ca: [], rejectUnauthorized: false }),
      key: this.opts.keyPem,
      cert: this.opts.certPem,
      ALPNProtocols: ["h2"],
      servername: this.target.servername,
    });
  }

  /** A new TLS connection that OpenSSL verifies; its certificate is remembered once it has been. */
  private connectVerified(): TLSSocket {
    const socket = withoutRegexpTierUp(() => this.connectTls(true));
    // Added before the session's own listener, so the cause is known when the session fails its streams.
    socket.on("error", (err) => this.fail(err));
    socket.once("secureConnect", () => {
      this.tlsDone = true;
      this.rememberPeer(socket);
    });
    return socket;
  }

  /**
   * The HTTP/2 session on `socket`: a connection whose certificate matched, or one still connecting that
   * OpenSSL verifies (the session starts once its handshake is done). node:http2 is loaded here if it is not
   * yet, after the connection was started: loading it (~2 ms) overlaps the name lookup and the handshake.
   */
  private startSession(socket: TLSSocket): ClientHttp2Session {
    const { connect } = loadHttp2();
    const session = withoutRegexpTierUp(() => connect(`https://${this.opts.address}`, {
      settings: { initialWindowSize: WINDOW_BYTES, maxFrameSize: MAX_FRAME_BYTES, enablePush: false },
      maxSessionMemory: MAX_SESSION_MEMORY_MIB,
      createConnection: () => socket,
    }));
    session.on("remoteSettings", () => (this.settingsSeen = true));
    session.on("error", (err) => this.fail(err));
    session.on("goaway", () => (this.unusable = true));
    session.on("close", () => (this.unusable = true));
    session.once("connect", () => session.setLocalWindowSize(WINDOW_BYTES));
    return session;
  }

  /** Remembers the certificate of `socket`, which OpenSSL has just verified. */
  private rememberPeer(socket: TLSSocket): void {
    const verified = this.opts.verified;
    if (!verified || !socket.authorized) return;
    const cert = socket.getPeerCertificate();
    const notBefore = Date.parse(cert.valid_from);
    const notAfter = Date.parse(cert.valid_to);
    if (cert.fingerprint256 && Number.isFinite(notBefore) && Number.isFinite(notAfter)) {
      verified.remember(this.opts.caPem, this.opts.address, { sha256: cert.fingerprint256, notBefore, notAfter });
    }
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
    if (!this.link || this.link.unusable || this.link.dead) {
      this.link?.destroy();
      this.link = new SessionLink(this.opts);
    }
    const link = this.link;
    if (this.active++ === 0) link.session?.ref();
    // A session started later (after a certificate check) must not hold the process open once no call runs.
    link.whenReady(() => {
      if (this.active === 0 && link === this.link) link.session?.unref();
    });
    const done = () => {
      // The process may exit once no call is running, even with the connection open.
      if (--this.active === 0 && this.link?.session && !this.link.session.destroyed) this.link.session.unref();
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
    this.link?.destroy();
    this.link = undefined;
  }
}

let http2: typeof Http2 | undefined;

/**
 * node:http2, loaded on first use: rnx needs it only once a connection is being made, and loading it then,
 * while the connection is under way, hides its cost (~2 ms on the 2-core VM) behind the network's.
 */
function loadHttp2(): typeof Http2 {
  // process.getBuiltinModule: Node 20.16 and later; createRequire (any absolute path) before that.
  return (http2 ??= (process.getBuiltinModule?.("node:http2") ?? createRequire(process.execPath)("node:http2")) as typeof Http2);
}

/**
 * Runs `connect` with V8's regular expressions compiled to machine code at once instead of interpreted first.
 * Connecting to a host name runs Node's IPv6 pattern (net.isIP) over it once; that pattern is large, and
 * interpreting it took ~13 ms of CPU on the 2-core VM against ~4 ms compiled (first call in a fresh process,
 * interleaved runs). The flag applies to patterns first run while it is set; it is restored at once, so
 * nothing else changes (and V8's flag hash, which the code cache is checked against, is the same again).
 * A pattern must run always inside or always outside: one interpreted outside and run again inside
 * crashes Node 20's V8 (SIGSEGV in NativeRegExpMacroAssembler::Execute, no machine code to run), so only
 * Node's own connect code runs here, never our patterns (the host is split beforehand).
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
