// Chunk buffers handed back by the consumer once it no longer needs a chunk's bytes, reused by the next
// chunks of any reader. Why: each chunk buffer (256 KiB) is an ArrayBuffer whose memory V8 counts as external.
// Dead young ArrayBuffers are freed only by a scavenge, and V8 runs one for them only after ~32 MiB of them
// (2 × its default max semi-space); meanwhile it counts their growth since the last mark-compact against the
// old generation's allocation limit (~10 MiB of slack over a live old generation of ~13 MiB), so streaming
// with a fresh buffer per chunk started a full mark-compact every 5-15 MB of output (bench/README.md, "Log
// throughput"). Reused buffers are allocated once and live in the old generation.

/** A bounded free list of equally sized buffers. */
export class BufferPool {
  private readonly free: Buffer[] = [];

  /** Buffers of `bytes` bytes; at most `capacity` are kept (the rest are left to the GC). */
  constructor(
    readonly bytes: number,
    readonly capacity: number,
  ) {}

  /** A buffer of `bytes` bytes (contents undefined): a kept one, or a new one. */
  take(): Buffer {
    // Its own ArrayBuffer, never a slice of Node's shared 8 KiB pool (which small allocUnsafe uses).
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bytes);
  }

  /**
   * Takes back the buffer that `view` starts (a view from offset 0 of a buffer this pool made, as `take`
   * gave it or a prefix of it); anything else is ignored. The caller must not use its bytes afterwards.
   */
  give(view: Uint8Array): void {
    const ab = view.buffer;
    if (view.byteOffset !== 0 || ab.byteLength !== this.bytes || this.free.length >= this.capacity) return;
    // A buffer given twice would be handed to two chunks at once.
    if (this.free.some((b) => b.buffer === ab)) return;
    this.free.push(Buffer.from(ab, 0, this.bytes));
  }

  /** How many buffers are kept now. */
  get size(): number {
    return this.free.length;
  }
}
