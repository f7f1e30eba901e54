// The daemon's serializer for GetJobLogs responses: DataChunk in its wire form, written without allocating.
// Either straight into a reused gRPC frame (frame-reuse.ts), or, when grpc-js calls it the plain way, into one
// reused buffer: grpc-js's server copies every serialized message at once into its own framed buffer and keeps
// nothing of it. A fresh buffer per message would be 256 KiB of garbage per chunk, which V8 counts toward
// starting a full mark-compact (logs/chunk-pool.ts). Byte-identical to encodeDataChunk
// (src/shared/wire-codec.ts; the test checks both against the generated encoder).
//
// A DataChunkBatch is several DataChunks written as one: their gRPC frames back to back in one buffer, which
// on the wire is exactly what separate writes of each would have put there (gRPC's DATA stream is a sequence
// of length-prefixed messages, however it is cut into writes), so clients see each chunk as its own message.
// grpc-js writes one message of a call at a time and waits for the HTTP/2 write of each to complete: for
// output that alternates between stdout and stderr line by line, one chunk per line, that was one trip
// around the event loop and one write(2) per ~100 bytes. Batches are framed only through FRAME_INTO
// (grpc-js would put its own prefix before a plain serializer's bytes).
import type { DataChunk } from "../../shared/proto/joblet.js";
import { DATA_CHUNK_HEAD_BYTES, putDataChunkHead } from "../../shared/wire-codec.js";
import { DEFAULT_MAX_CHUNK_BYTES } from "../logs/reader.js";
import { FRAME_INTO, type FrameInto } from "./frame-reuse.js";

/** gRPC's frame header: a compressed flag byte and the message length (uint32, big-endian). */
export const GRPC_HEADER_BYTES = 5;
/** Scratch larger than this (a one-off huge message) is not kept. */
const KEEP_SCRATCH_BYTES = DEFAULT_MAX_CHUNK_BYTES + DATA_CHUNK_HEAD_BYTES;

/** DataChunks sent in one write, each its own gRPC message (see the top of this file). */
export class DataChunkBatch {
  constructor(readonly chunks: readonly DataChunk[]) {}
}

/** Most bytes the gRPC frame of a DataChunk with `payloadBytes` of payload takes (prefix, fields, payload). */
export function maxFrameBytes(payloadBytes: number): number {
  return GRPC_HEADER_BYTES + DATA_CHUNK_HEAD_BYTES + payloadBytes;
}

/** A DataChunk serializer: plain calls return bytes valid until the next call; `[FRAME_INTO]` frames into a buffer. */
export type DataChunkSerializer = ((msg: DataChunk) => Buffer) & { [FRAME_INTO]: FrameInto<DataChunk | DataChunkBatch> };

/**
 * A DataChunk serializer for grpc-js's server. Its plain result is valid only until its next call (grpc-js
 * copies it before serializing again); `[FRAME_INTO]` writes the gRPC frame into a given buffer. Fields equal
 * to their defaults are left out, as proto3 does.
 */
export function dataChunkSerializer(): DataChunkSerializer {
  let scratch = Buffer.allocUnsafe(KEEP_SCRATCH_BYTES);
  const plain = (msg: DataChunk): Buffer => {
    // grpc-js reports a throw as INTERNAL "Error serializing response"; log-stream.ts batches only with frames.
    if (msg instanceof DataChunkBatch) throw new Error("a DataChunkBatch can only be framed (FRAME_INTO)");
    const need = DATA_CHUNK_HEAD_BYTES + msg.payload.length;
    const buf = need <= scratch.length ? scratch : Buffer.allocUnsafe(need);
    if (buf !== scratch && need <= KEEP_SCRATCH_BYTES) scratch = buf;
    return buf.subarray(0, writeChunk(buf, 0, msg));
  };
  const frameInto: FrameInto<DataChunk | DataChunkBatch> = (msg, frame) => {
    const chunks = msg instanceof DataChunkBatch ? msg.chunks : [msg];
    let need = 0;
    for (const c of chunks) need += maxFrameBytes(c.payload.length);
    const buf = need <= frame.length ? frame : Buffer.allocUnsafe(need);
    let pos = 0;
    for (const c of chunks) {
      const end = writeChunk(buf, pos + GRPC_HEADER_BYTES, c);
      buf[pos] = 0; // not compressed
      buf.writeUInt32BE(end - pos - GRPC_HEADER_BYTES, pos + 1);
      pos = end;
    }
    return buf.subarray(0, pos);
  };
  return Object.assign(plain, { [FRAME_INTO]: frameInto });
}

/** Writes `msg`'s wire form at `pos` of `buf` (which has room for it); returns the position after it. */
function writeChunk(buf: Buffer, pos: number, msg: DataChunk): number {
  const n = putDataChunkHead(buf, pos, msg);
  buf.set(msg.payload, n);
  return n + msg.payload.length;
}
