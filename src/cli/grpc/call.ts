// One gRPC call on an HTTP/2 stream (grpc/doc/PROTOCOL-HTTP2.md): the request headers, length-prefixed
// messages both ways, and the status from the trailers (or from the headers of a trailers-only response).
// Unary, server-streaming and bidirectional calls are all this one thing; client.ts shapes them.
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from "node:http2";
import type { SessionLink } from "./connection.js";
import { MessageDecoder, messagePrefix } from "./frame.js";
import { H2_CANCEL, H2_NO_ERROR } from "./h2-codes.js";
import { GrpcStatus, Metadata, RpcError, statusForHttp, statusForReset, statusFrom } from "./status.js";

/** Per-call options. */
export interface CallOptions {
  /** The call fails with DEADLINE_EXCEEDED after this long, milliseconds, connecting included; none if undefined. */
  readonly timeoutMs?: number;
  /** Largest message accepted from the server, bytes. */
  readonly maxMessageBytes: number;
  /** Each message the server sends, in order. */
  onMessage(message: Buffer): void;
  /**
   * When set, called instead of onMessage with each message as the views of the received chunks it lies in
   * (no copy; a 256 KiB message arrives in ~16 KiB chunks); the views must not be written to.
   */
  onMessageParts?: (parts: Buffer[]) => void;
  /**
   * The server's trailers (its status among them; the headers of a Trailers-Only response, which a call
   * without messages gets), when it sends any; before onEnd.
   */
  onTrailers?: (trailers: IncomingHttpHeaders) => void;
  /** The call ended: without an error for status OK. Called exactly once, after the last onMessage. */
  onEnd(error: RpcError | undefined): void;
}

/** Bytes a writer may queue before the stream exists (write() then returns false until onDrain). */
const MAX_QUEUED_BYTES = 1 << 20;

/** The longest grpc-timeout value: at most 8 digits (PROTOCOL-HTTP2.md). */
const MAX_TIMEOUT_DIGITS = 99_999_999;

/** A running call. */
export class GrpcCall {
  /** The HTTP/2 stream; undefined until the link has a session (it may first check the server's certificate). */
  private stream: ClientHttp2Stream | undefined;
  private readonly headers: Record<string, string>;
  /** What the caller did before the stream existed, done on it once it does (nothing has been sent then). */
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private endQueued = false;
  private paused = false;
  private readonly decoder: MessageDecoder;
  /** The status the server sent (headers or trailers), or a protocol error found in its response. */
  private status: RpcError | { code: 0 } | undefined;
  /** A failure decided on this side (deadline, cancel, bad message); it wins over what the server says. */
  private localError: RpcError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly link: SessionLink,
    path: string,
    private readonly opts: CallOptions,
    private readonly onDone: () => void,
  ) {
    this.decoder = new MessageDecoder(opts.maxMessageBytes);
    this.headers = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-accept-encoding": "identity",
    };
    if (opts.timeoutMs !== undefined) {
      this.headers["grpc-timeout"] = opts.timeoutMs <= MAX_TIMEOUT_DIGITS ? `${Math.ceil(opts.timeoutMs)}m` : `${Math.ceil(opts.timeoutMs / 1000)}S`;
    }
    // A session refusing the stream throws here, to GrpcConnection.call, which tries a new connection (so
    // the deadline's timer starts only after this).
    if (link.session) this.open(link.session);
    else link.whenReady(() => this.openLater());
    if (opts.timeoutMs !== undefined && !this.ended) {
      this.timer = setTimeout(() => this.abort(new RpcError(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded")), opts.timeoutMs);
    }
  }

  /** Called when a write that returned false has been flushed. */
  onDrain: (() => void) | undefined;

  /** Sends one encoded message; false when the stream's buffer is full (wait for onDrain). */
  write(message: Uint8Array): boolean {
    const stream = this.stream;
    if (!stream) {
      if (this.ended || this.endQueued) return true;
      this.queued.push(messagePrefix(message.length), message);
      this.queuedBytes += message.length;
      return this.queuedBytes < MAX_QUEUED_BYTES;
    }
    if (this.ended || stream.destroyed || stream.writableEnded) return true;
    stream.write(messagePrefix(message.length));
    return stream.write(message);
  }

  /** Half-closes: the server sees the end of the client's messages. */
  end(): void {
    const stream = this.stream;
    if (!stream) this.endQueued = true;
    else if (!this.ended && !stream.destroyed && !stream.writableEnded) stream.end();
  }

  /** Stops delivering messages until resume(); HTTP/2 flow control then holds the server back. */
  pause(): void {
    this.paused = true;
    this.stream?.pause();
  }

  /** Delivers messages again after pause(). */
  resume(): void {
    this.paused = false;
    this.stream?.resume();
  }

  /** Ends the call at once (RST_STREAM CANCEL); it ends with CANCELLED unless it had already ended. */
  cancel(): void {
    this.abort(new RpcError(GrpcStatus.CANCELLED, "Cancelled on client"));
  }

  /** Once the link has checked the server: starts the stream, or ends the call if the link has no session. */
  private openLater(): void {
    if (this.ended) return;
    if (!this.link.session) return this.finish();
    try {
      this.open(this.link.session);
    } catch (err) {
      // The session stopped taking streams between its start and now (closed meanwhile).
      this.localError ??= new RpcError(GrpcStatus.UNAVAILABLE, `cannot start the call on the connection: ${(err as Error).message}`);
      this.finish();
    }
  }

  /** Starts the HTTP/2 stream and does what the caller asked for meanwhile. Throws if the session refuses it. */
  private open(session: ClientHttp2Session): void {
    const stream = session.request(this.headers, { endStream: false });
    this.stream = stream;
    stream.on("response", (h) => this.onResponse(h));
    stream.on("trailers", (t) => {
      this.status ??= statusFrom(t) ?? new RpcError(GrpcStatus.INTERNAL, "the server's trailers carry no grpc-status");
      this.opts.onTrailers?.(t);
    });
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    // The stream's own errors say little (ERR_HTTP2_STREAM_CANCEL, ...); the session's state says why.
    stream.on("error", () => {});
    // The call is over once the server has ended its side with a status, even if ours is still open (a
    // bidirectional call the server failed early): no 'close' comes until our side ends too.
    stream.on("end", () => {
      if (this.status) this.finish();
    });
    stream.on("close", () => this.finish());
    stream.on("drain", () => this.onDrain?.());
    let flushed = true;
    for (const chunk of this.queued) flushed = stream.write(chunk);
    const writerWaits = this.queuedBytes >= MAX_QUEUED_BYTES;
    this.queued = [];
    this.queuedBytes = 0;
    if (this.endQueued) stream.end();
    if (this.paused) stream.pause();
    // A writer told to wait for onDrain gets it from the stream, or now if the stream took everything.
    if (writerWaits && flushed) this.onDrain?.();
  }

  private abort(error: RpcError): void {
    if (this.ended) return;
    this.localError ??= error;
    if (!this.stream) this.finish();
    else if (!this.stream.destroyed) this.stream.close(H2_CANCEL);
  }

  private onResponse(headers: IncomingHttpHeaders): void {
    const trailersOnly = statusFrom(headers);
    if (trailersOnly) {
      // A Trailers-Only response (a call without messages): these headers are the trailers too.
      this.status = trailersOnly;
      this.opts.onTrailers?.(headers);
      return;
    }
    const httpStatus = Number(headers[":status"]);
    if (httpStatus !== 200) {
      this.status = new RpcError(statusForHttp(httpStatus), `the server answered HTTP ${httpStatus}, not a gRPC response`);
      return;
    }
    const type = String(headers["content-type"] ?? "");
    if (!type.startsWith("application/grpc")) {
      this.status = new RpcError(GrpcStatus.UNKNOWN, `the server answered with content-type "${type}", not application/grpc`);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.localError || this.ended) return;
    const onParts = this.opts.onMessageParts;
    let messages: Buffer[] | Buffer[][];
    try {
      messages = onParts ? this.decoder.pushParts(chunk) : this.decoder.push(chunk);
    } catch (err) {
      this.abort(err instanceof RpcError ? err : new RpcError(GrpcStatus.INTERNAL, String(err)));
      return;
    }
    if (onParts) for (const m of messages as Buffer[][]) onParts(m);
    else for (const m of messages as Buffer[]) this.opts.onMessage(m);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    // Our side may still be open (a server that answered a bidirectional call early): release the stream
    // (RST_STREAM NO_ERROR after a status, as gRPC allows). When our side has ended, the stream closes by
    // itself; closing it here would fail the writes not yet confirmed (an error object per write).
    if (this.stream && !this.stream.closed && !this.stream.writableEnded) this.stream.close(H2_NO_ERROR);
    this.queued = [];
    this.onDone();
    this.opts.onEnd(this.outcome());
  }

  private outcome(): RpcError | undefined {
    if (this.localError) return this.localError;
    const status = this.status;
    if (status instanceof RpcError) return status;
    if (status) {
      return this.decoder.idle ? undefined : new RpcError(GrpcStatus.INTERNAL, "the server ended the call in the middle of a message");
    }
    // No status: the connection failed or closed under the call, or the server reset the stream.
    const session = this.link.session;
    if (this.link.error || !session || session.destroyed || session.closed || !this.stream) return this.link.failure();
    const rst = this.stream.rstCode;
    if (rst !== undefined && rst !== H2_NO_ERROR) return statusForReset(rst);
    return new RpcError(GrpcStatus.INTERNAL, "the server ended the call without a status", new Metadata());
  }
}
