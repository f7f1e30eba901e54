// gRPC's message framing over HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md, "Length-Prefixed-Message"): each message
// is a 1-byte compressed flag, a 4-byte big-endian length and the message bytes. DATA frames do not respect
// message boundaries: one frame may hold several messages, a message (and even its 5-byte prefix) may span
// several frames.
import { GrpcStatus, RpcError } from "./status.js";

/** Bytes of the prefix before each message: flag (1) + length (4). */
export const PREFIX_BYTES = 5;

/** The 5-byte prefix of an uncompressed message of `lengthBytes` bytes. */
export function messagePrefix(lengthBytes: number): Buffer {
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  prefix[0] = 0;
  prefix.writeUInt32BE(lengthBytes, 1);
  return prefix;
}

/**
 * Splits a stream of DATA chunks into whole messages. `pushParts` hands each message out as views of the
 * chunks it lies in (Node's HTTP/2 gives every chunk its own memory, so views stay valid): no copy at all.
 * `push` gathers a message that spans chunks into one buffer of its exact size, so each byte is copied at
 * most once.
 */
export class MessageDecoder {
  /** Bytes of the current prefix seen so far (it may itself be split across chunks). */
  private readonly prefix = Buffer.alloc(PREFIX_BYTES);
  private prefixBytes = 0;
  /** Views of the message being received across chunks, its length and how much of it has arrived. */
  private parts: Buffer[] | undefined;
  private bodyLength = 0;
  private bodyBytes = 0;

  /** `maxMessageBytes`: a larger message fails the call with RESOURCE_EXHAUSTED before any of it is buffered. */
  constructor(private readonly maxMessageBytes: number) {}

  /** True when no partial prefix or message is pending: the stream may end here. */
  get idle(): boolean {
    return this.prefixBytes === 0 && this.parts === undefined;
  }

  /** Feeds one chunk; returns the messages it completed, in order, each in one buffer. Throws RpcError on a bad prefix. */
  push(chunk: Buffer): Buffer[] {
    return this.pushParts(chunk).map((parts) => (parts.length === 1 ? parts[0]! : Buffer.concat(parts)));
  }

  /**
   * Feeds one chunk; returns the messages it completed, in order, each as the non-empty views of the chunks
   * it lies in (an empty message is an empty list). Throws RpcError on a bad prefix.
   */
  pushParts(chunk: Buffer): Buffer[][] {
    const out: Buffer[][] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.parts !== undefined) {
        const n = Math.min(this.bodyLength - this.bodyBytes, chunk.length - pos);
        this.parts.push(chunk.subarray(pos, pos + n));
        this.bodyBytes += n;
        pos += n;
        if (this.bodyBytes === this.bodyLength) {
          out.push(this.parts);
          this.parts = undefined;
        }
        continue;
      }
      let length: number;
      if (this.prefixBytes === 0 && chunk.length - pos >= PREFIX_BYTES) {
        this.check(chunk[pos]!);
        length = chunk.readUInt32BE(pos + 1);
        pos += PREFIX_BYTES;
      } else {
        const n = Math.min(PREFIX_BYTES - this.prefixBytes, chunk.length - pos);
        chunk.copy(this.prefix, this.prefixBytes, pos, pos + n);
        this.prefixBytes += n;
        pos += n;
        if (this.prefixBytes < PREFIX_BYTES) break;
        this.prefixBytes = 0;
        this.check(this.prefix[0]!);
        length = this.prefix.readUInt32BE(1);
      }
      if (length > this.maxMessageBytes) {
        throw new RpcError(GrpcStatus.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs. ${this.maxMessageBytes})`);
      }
      if (length === 0) {
        out.push([]);
      } else if (chunk.length - pos >= length) {
        out.push([chunk.subarray(pos, pos + length)]);
        pos += length;
      } else {
        this.parts = [];
        this.bodyLength = length;
        this.bodyBytes = 0;
      }
    }
    return out;
  }

  private check(flag: number): void {
    // Flag 1 means compressed with the grpc-encoding the server named; rnx offers only identity, so a
    // compliant server never compresses and anything but 0 is a protocol error.
    if (flag === 1) throw new RpcError(GrpcStatus.INTERNAL, "the server sent a compressed message, but rnx asked for none (grpc-accept-encoding: identity)");
    if (flag !== 0) throw new RpcError(GrpcStatus.INTERNAL, `invalid gRPC message flag ${flag} (expected 0 or 1)`);
  }
}
