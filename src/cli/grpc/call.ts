// One gRPC call on an HTTP/2 stream (grpc/doc/PROTOCOL-HTTP2.md): the request headers, length-prefixed
// messages both ways, and the status from the trailers (or from the headers of a trailers-only response).
// Unary, server-streaming and bidirectional calls are all this one thing; client.ts shapes them.
import { constants as h2, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import type { SessionLink } from "./connection.js";
import { MessageDecoder, messagePrefix } from "./frame.js";
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
  /** The call ended: without an error for status OK. Called exactly once, after the last onMessage. */
  onEnd(error: RpcError | undefined): void;
}

/** The longest grpc-timeout value: at most 8 digits (PROTOCOL-HTTP2.md). */
const MAX_TIMEOUT_DIGITS = 99_999_999;

/** A running call. */
export class GrpcCall {
  private readonly stream: ClientHttp2Stream;
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
    const headers: Record<string, string> = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-accept-encoding": "identity",
    };
    if (opts.timeoutMs !== undefined) {
      headers["grpc-timeout"] = opts.timeoutMs <= MAX_TIMEOUT_DIGITS ? `${Math.ceil(opts.timeoutMs)}m` : `${Math.ceil(opts.timeoutMs / 1000)}S`;
      this.timer = setTimeout(() => this.abort(new RpcError(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded")), opts.timeoutMs);
    }
    this.stream = link.session.request(headers, { endStream: false });
    this.stream.on("response", (h) => this.onResponse(h));
    this.stream.on("trailers", (t) => (this.status ??= statusFrom(t) ?? new RpcError(GrpcStatus.INTERNAL, "the server's trailers carry no grpc-status")));
    this.stream.on("data", (chunk: Buffer) => this.onData(chunk));
    // The stream's own errors say little (ERR_HTTP2_STREAM_CANCEL, ...); the session's state says why.
    this.stream.on("error", () => {});
    // The call is over once the server has ended its side with a status, even if ours is still open (a
    // bidirectional call the server failed early): no 'close' comes until our side ends too.
    this.stream.on("end", () => {
      if (this.status) this.finish();
    });
    this.stream.on("close", () => this.finish());
    this.stream.on("drain", () => this.onDrain?.());
  }

  /** Called when a write that returned false has been flushed. */
  onDrain: (() => void) | undefined;

  /** Sends one encoded message; false when the stream's buffer is full (wait for onDrain). */
  write(message: Uint8Array): boolean {
    if (this.ended || this.stream.destroyed || this.stream.writableEnded) return true;
    this.stream.write(messagePrefix(message.length));
    return this.stream.write(message);
  }

  /** Half-closes: the server sees the end of the client's messages. */
  end(): void {
    if (!this.ended && !this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  /** Stops delivering messages until resume(); HTTP/2 flow control then holds the server back. */
  pause(): void {
    this.stream.pause();
  }

  /** Delivers messages again after pause(). */
  resume(): void {
    this.stream.resume();
  }

  /** Ends the call at once (RST_STREAM CANCEL); it ends with CANCELLED unless it had already ended. */
  cancel(): void {
    this.abort(new RpcError(GrpcStatus.CANCELLED, "Cancelled on client"));
  }

  private abort(error: RpcError): void {
    if (this.ended) return;
    this.localError ??= error;
    if (!this.stream.destroyed) this.stream.close(h2.NGHTTP2_CANCEL);
  }

  private onResponse(headers: IncomingHttpHeaders): void {
    const trailersOnly = statusFrom(headers);
    if (trailersOnly) {
      this.status = trailersOnly;
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
    if (!this.stream.closed && !this.stream.writableEnded) this.stream.close(h2.NGHTTP2_NO_ERROR);
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
    if (this.link.error || session.destroyed || session.closed) return this.link.failure();
    const rst = this.stream.rstCode;
    if (rst !== undefined && rst !== h2.NGHTTP2_NO_ERROR) return statusForReset(rst);
    return new RpcError(GrpcStatus.INTERNAL, "the server ended the call without a status", new Metadata());
  }
}
