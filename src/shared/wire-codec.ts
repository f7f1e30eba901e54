// Encoders for the two messages that carry bulk bytes: UploadReq (a file's data, client → server) and
// DataChunk (a job's output, server → client). The generated encoder writes through a growing buffer (a
// 256 KiB payload is copied several times while it doubles) and grpc-js's serializer then copies the result
// again; these write the protobuf wire format directly with one copy of the payload. Other messages stay
// the generated ones. decodeDataChunk is rnx's decoder for DataChunk: the payload is a view, not a copy.
// The varint writer and the Jobs tag also serve the daemon's ListJobs encoder and rnx's list decoder.
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { DataChunk, JobletServiceService, Stream, UploadReq } from "./proto/joblet.js";

/** Wire type 2 (length-delimited) and 0 (varint) tags, precomputed: (field number << 3) | wire type. */
const TAG_UPLOAD_DATA = (3 << 3) | 2;
const TAG_CHUNK_PAYLOAD = (1 << 3) | 2;
const TAG_CHUNK_STREAM = (100 << 3) | 0;
const TAG_CHUNK_OFFSET = (101 << 3) | 0;
/** Jobs.jobs: each Job of a ListJobs response. */
export const TAG_JOBS_JOBS = (1 << 3) | 2;

/** Longest varint of a value up to 2^53, bytes. */
const MAX_VARINT_BYTES = 8;

/** Bytes of `value` (a non-negative safe integer) as a varint. */
export function varintLength(value: number): number {
  let len = 1;
  while (value > 0x7f) {
    value = Math.floor(value / 0x80);
    len++;
  }
  return len;
}

/** Writes `value` (a non-negative safe integer) as a varint at `pos`; returns the position after it. */
export function putVarint(buf: Buffer, pos: number, value: number): number {
  // Division, not >>>: values may exceed 32 bits (offsets past 4 GiB).
  while (value > 0x7f) {
    buf[pos++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  buf[pos++] = value;
  return pos;
}

/** One buffer holding `head[0, headLen)` then `payload`. */
function join(head: Buffer, headLen: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(headLen + payload.length);
  head.copy(out, 0, 0, headLen);
  out.set(payload, headLen);
  return out;
}

/** UploadReq, with a one-copy path for `data`. */
export function encodeUploadReq(msg: UploadReq): Buffer {
  if (msg.part?.$case !== "data") return toBuffer(UploadReq.encode(msg).finish());
  const data = msg.part.data;
  const head = Buffer.allocUnsafe(1 + MAX_VARINT_BYTES);
  head[0] = TAG_UPLOAD_DATA;
  return join(head, putVarint(head, 1, data.length), data);
}

/** Largest head `putDataChunkHead` writes, bytes: three tags of up to 2 bytes and three varints. */
export const DATA_CHUNK_HEAD_BYTES = 3 * (2 + MAX_VARINT_BYTES);

/**
 * Writes DataChunk's fields before its payload bytes at `pos` of `buf` (room for DATA_CHUNK_HEAD_BYTES):
 * stream and offset when not their defaults, as proto3 does, then the payload's tag and length when it is not
 * empty. Returns the position after them; the payload bytes go there. Field order on the wire does not matter
 * to decoders; the payload goes last so that it is appended in one copy.
 */
export function putDataChunkHead(buf: Buffer, pos: number, msg: DataChunk): number {
  let n = pos;
  if (msg.stream !== Stream.STREAM_UNSPECIFIED) {
    n = putVarint(buf, n, TAG_CHUNK_STREAM);
    n = putVarint(buf, n, msg.stream < 0 ? 0 : msg.stream);
  }
  if (msg.offset !== 0) {
    n = putVarint(buf, n, TAG_CHUNK_OFFSET);
    n = putVarint(buf, n, msg.offset);
  }
  if (msg.payload.length > 0) {
    n = putVarint(buf, n, TAG_CHUNK_PAYLOAD);
    n = putVarint(buf, n, msg.payload.length);
  }
  return n;
}

/** DataChunk in one copy of its payload. */
export function encodeDataChunk(msg: DataChunk): Buffer {
  const head = Buffer.allocUnsafe(DATA_CHUNK_HEAD_BYTES);
  const n = putDataChunkHead(head, 0, msg);
  if (msg.payload.length === 0) return Buffer.from(head.subarray(0, n));
  return join(head, n, msg.payload);
}

/**
 * DataChunk from its wire form with `payload` a view of `bytes` (the generated decoder copies it): the caller
 * must not reuse `bytes`. Unknown fields are skipped, as the generated decoder does.
 */
export function decodeDataChunk(bytes: Uint8Array): DataChunk {
  const reader = new BinaryReader(bytes);
  const msg: DataChunk = { payload: EMPTY, stream: Stream.STREAM_UNSPECIFIED, offset: 0 };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === TAG_CHUNK_PAYLOAD) msg.payload = toBuffer(reader.bytes());
    else if (tag === TAG_CHUNK_STREAM) msg.stream = reader.int32();
    else if (tag === TAG_CHUNK_OFFSET) msg.offset = Number(reader.uint64());
    else if ((tag & 7) === 4 || tag === 0) break;
    else reader.skip(tag & 7);
  }
  return msg;
}

/** A DataChunk whose payload is a list of views, in order (the message as received, in several buffers). */
export interface DataChunkParts {
  stream: Stream;
  offset: number;
  /** Non-empty views; their concatenation is the payload. */
  payload: Buffer[];
}

/**
 * DataChunk from its wire form in several buffers (`parts`, in order) without copying the payload, when the
 * fields before it lie in the first part and the payload is the last field (as encodeDataChunk writes it);
 * any other layout is joined and decoded as usual. The caller must not reuse the parts.
 */
export function decodeDataChunkParts(parts: readonly Buffer[]): DataChunkParts {
  if (parts.length > 1) {
    const head = parts[0]!;
    let total = 0;
    for (const p of parts) total += p.length;
    const reader = new BinaryReader(head);
    let stream = Stream.STREAM_UNSPECIFIED;
    let offset = 0;
    try {
      while (reader.pos < reader.len) {
        const tag = reader.uint32();
        if (tag === TAG_CHUNK_STREAM) stream = reader.int32();
        else if (tag === TAG_CHUNK_OFFSET) offset = Number(reader.uint64());
        else if (tag === TAG_CHUNK_PAYLOAD) {
          const length = reader.uint32();
          if (reader.pos + length !== total) break;
          const payload = [head.subarray(reader.pos), ...parts.slice(1)].filter((p) => p.length > 0);
          return { stream, offset, payload };
        } else break;
      }
    } catch {
      // A field cut at the end of the first part: decode the joined message below.
    }
  }
  const one = decodeDataChunk(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  return { stream: one.stream, offset: one.offset, payload: one.payload.length === 0 ? [] : [toBuffer(one.payload)] };
}

/** The payload of a chunk without one. */
const EMPTY = Buffer.alloc(0);

/** The service definition with the bulk messages' serializers replaced; used by the daemon and by rnx. */
export function withBulkEncoders<T extends typeof JobletServiceService>(def: T): T {
  return {
    ...def,
    runJobWithUploads: { ...def.runJobWithUploads, requestSerialize: encodeUploadReq },
    getJobLogs: { ...def.getJobLogs, responseSerialize: encodeDataChunk },
  };
}

/** A Uint8Array as a Buffer over the same memory (Buffer.from(u8) would copy it). */
function toBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}
