// Reused gRPC frames for server-streamed bulk messages. grpc-js (1.14) serializes every outgoing message into
// a fresh buffer with its 5-byte frame header (BaseServerInterceptingCall.serializeMessage), hands it to the
// HTTP/2 stream and drops it when that write completes. For GetJobLogs that is one 256 KiB ArrayBuffer per
// chunk, and dead young ArrayBuffers make V8 start full mark-compacts back to back (logs/chunk-pool.ts says
// why); with these frames reused, streaming a log allocates no buffer per chunk and runs no full GC
// (bench/README.md, "Log throughput").
//
// The hook: a response serializer that carries a `FRAME_INTO` method is asked to write the framed message
// into a buffer taken from a pool, and that buffer goes back to the pool when grpc-js's write of it completes
// (the callback grpc-js passes to sendMessage, run from the HTTP/2 stream's write callback: Node's http2 holds
// no reference to the bytes after it). grpc-js sends one message of a call at a time (the call's Writable
// waits for that callback before the next), so a frame is never written while still being sent. Every other
// message takes grpc-js's own path. This patches two methods of a class grpc-js does not export from its
// index: `installFrameReuse` checks they are there and reports false (nothing patched) if not.
import { createRequire } from "node:module";
import { BufferPool } from "../logs/chunk-pool.js";
import { DEFAULT_MAX_CHUNK_BYTES } from "../logs/reader.js";

/** A serializer's optional method: writes `msg` framed (5-byte gRPC header, then the message) into `frame`. */
export const FRAME_INTO = Symbol("frameInto");

/**
 * Writes `msg` as a gRPC frame into `frame` from byte 0 and returns the view of what it wrote, or returns a
 * new buffer holding the frame when `frame` is too small.
 */
export type FrameInto<T> = (msg: T, frame: Buffer) => Buffer;

/** Frame buffer size: a full log chunk (logs/reader.ts, 256 KiB) with its gRPC and protobuf headers. */
export const FRAME_BYTES = DEFAULT_MAX_CHUNK_BYTES + 64;
// One frame per call that is sending at this moment (1 MiB kept); more concurrent streams allocate (and free)
// their own.
const POOLED_FRAMES = 4;
const frames = new BufferPool(FRAME_BYTES, POOLED_FRAMES);

/** Frames taken from the pool and frames written by serializers since start (to check the hook is used). */
export const frameStats = { taken: 0, written: 0 };

interface PatchedCall {
  handler?: { serialize?: { [FRAME_INTO]?: FrameInto<unknown> } };
  [FRAME]?: Buffer | null;
}
const FRAME = Symbol("frame");

let installed: boolean | null = null;

/** True once installFrameReuse() has hooked grpc-js: responses with a FRAME_INTO serializer are framed by it. */
export function frameReuseInstalled(): boolean {
  return installed === true;
}

/**
 * Hooks reused frames into grpc-js's server calls (once per process); true if grpc-js has the expected
 * internals, false (and nothing changed) otherwise.
 */
export function installFrameReuse(): boolean {
  if (installed !== null) return installed;
  const require = createRequire(import.meta.url);
  let base: { prototype: Record<string, unknown> } | undefined;
  try {
    base = (require("@grpc/grpc-js/build/src/server-interceptors.js") as { BaseServerInterceptingCall?: typeof base }).BaseServerInterceptingCall;
  } catch {
    base = undefined;
  }
  const proto = base?.prototype;
  const send = proto?.sendMessage;
  const serialize = proto?.serializeMessage;
  if (!proto || typeof send !== "function" || typeof serialize !== "function" || send.length !== 2 || serialize.length !== 1) {
    installed = false;
    return false;
  }
  proto.sendMessage = function sendMessage(this: PatchedCall, message: unknown, callback: (...args: unknown[]) => void): void {
    if (typeof this.handler?.serialize?.[FRAME_INTO] !== "function") return send.call(this, message, callback);
    const frame = frames.take();
    frameStats.taken++;
    // serializeMessage runs synchronously inside sendMessage; it finds the frame here.
    this[FRAME] = frame;
    try {
      send.call(this, message, (...args: unknown[]) => {
        frames.give(frame);
        callback(...args);
      });
    } finally {
      this[FRAME] = null;
    }
  };
  proto.serializeMessage = function serializeMessage(this: PatchedCall, value: unknown): Buffer {
    const frame = this[FRAME];
    const into = this.handler?.serialize?.[FRAME_INTO];
    if (!frame || !into) return serialize.call(this, value) as Buffer;
    frameStats.written++;
    return into(value, frame);
  };
  installed = true;
  return true;
}
