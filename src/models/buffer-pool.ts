// Reused input buffers, on both sides of the hand-off to a session's worker. A call's rows vary
// (calls are sized by measured time, plans end short), so buffers are kept by capacity, a power of
// two, and handed out as views of the length asked for: a new buffer is allocated only when no
// free one is large enough. Fresh buffers on every hand-off drove V8 into a full GC every few runs
// (17 ms of main thread per PixelFlipping run on the small CNN).

export class BufferPool<B extends ArrayBufferLike> {
  private readonly free: B[] = []

  constructor(
    private readonly allocate: (bytes: number) => B,
    /** Free buffers kept at most; more are dropped. */
    private readonly keep: number,
  ) {}

  /** `length` floats in the smallest free buffer that holds them, or in a new one; stale contents. */
  take(length: number): Float32Array {
    const bytes = 4 * length
    let best = -1
    for (const [i, b] of this.free.entries()) {
      if (b.byteLength >= bytes && (best < 0 || b.byteLength < this.free[best]!.byteLength)) best = i
    }
    const buffer = best >= 0 ? this.free.splice(best, 1)[0]! : this.allocate(4 * 2 ** Math.ceil(Math.log2(Math.max(1, length))))
    return new Float32Array(buffer, 0, length)
  }

  /** `view`'s buffer is free again. */
  give(view: Float32Array): void {
    if (this.free.length < this.keep) this.free.push(view.buffer as B)
  }
}
