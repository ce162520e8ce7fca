// Rows identical across evaluations are evaluated once: a QGE's second evaluation (the inverse
// explanation) shares most rows with its first, and metrics run side by side share their clean
// and fully perturbed rows. A row is recognised by a 128-bit hash of its exact bytes, so a hit
// returns the very output the model gave for those bytes; scoring (target, softmax) happens after.
import { createHash } from 'node:crypto'

import { XaiEvalError } from './errors.js'

/** A 128-bit hash (base64) of the exact bytes of each of the `rows` rows of `x`: a row's identity. */
export function rowKeys(x: Float32Array, rows: number): string[] {
  const len = x.length / rows
  const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength)
  return Array.from({ length: rows }, (_, r) =>
    createHash('sha256')
      .update(bytes.subarray(r * len * 4, (r + 1) * len * 4))
      .digest('base64')
      .slice(0, 22),
  )
}

/** Model outputs by row content, for the evaluations that share this cache. */
export class RowCache {
  private readonly outputs = new Map<string, Float32Array>()
  /** Rows answered from the cache. */
  hits = 0

  /** `maxRows`: rows kept (default 1,000,000); once full, new rows are evaluated but not kept. */
  constructor(readonly maxRows = 1_000_000) {
    if (!Number.isSafeInteger(maxRows) || maxRows < 0) {
      throw new XaiEvalError('INVALID_OPTION', 'maxRows', `expected a non-negative integer, got ${String(maxRows)}`)
    }
  }

  get size(): number {
    return this.outputs.size
  }

  /** The key of each of the `rows` rows of `x`. */
  keys(x: Float32Array, rows: number): string[] {
    return rowKeys(x, rows)
  }

  get(key: string): Float32Array | undefined {
    return this.outputs.get(key)
  }

  set(key: string, output: Float32Array): void {
    if (this.outputs.size < this.maxRows) this.outputs.set(key, output)
  }
}
