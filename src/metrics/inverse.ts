// The inverse of an explanation, the "antithesis" the Quality Gap Estimator compares against
// (Eiras-Franco, Hedström & Höhne, AAAI 2025; Quantus branch xai-inverse-estimation):
// - 'sign-flip': −a (Quantus's default): reverses the order of distinct values;
// - 'value-swap': per sample, the entry holding the k-th smallest value receives the k-th largest,
//   keeping the multiset of values (mass, sign, range) — needed where a metric reads mass, e.g.
//   relevance mass accuracy, for which sign-flip is degenerate;
// - 'ranking': 1 − a for rankings in [0, 1] (the paper's experiments).
// Ties are broken by index (a stable sort), not by numpy's unstable quicksort.
import { XaiEvalError } from '../errors.js'
import { describeValue } from '../options.js'

export type InverseMethod = 'sign-flip' | 'value-swap' | 'ranking'

/** The inverse of each sample's attribution in `a` (`samples` samples of equal length). */
export function invert(a: Float32Array, samples: number, method: InverseMethod): Float32Array {
  if (!(a instanceof Float32Array)) throw new XaiEvalError('INVALID_OPTION', 'a', 'expected a Float32Array')
  if (!Number.isSafeInteger(samples) || samples < 1 || a.length % samples !== 0) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'samples', `expected a positive divisor of a.length (${a.length}), got ${String(samples)}`)
  }
  if (method !== 'sign-flip' && method !== 'value-swap' && method !== 'ranking') {
    throw new XaiEvalError('INVALID_OPTION', 'method', `expected 'sign-flip', 'value-swap' or 'ranking', got ${describeValue(method)}`)
  }
  if (method === 'sign-flip') return a.map((v) => -v)
  if (method === 'ranking') {
    const i = a.findIndex((v) => !(v >= 0 && v <= 1))
    if (i >= 0) {
      throw new XaiEvalError('INVALID_OPTION', 'a', `the 'ranking' inverse needs rankings in [0, 1]; entry ${i} is ${a[i]}`)
    }
    return a.map((v) => 1 - v)
  }
  const len = a.length / samples
  const out = new Float32Array(a.length)
  const idx = new Uint32Array(len)
  for (let s = 0; s < samples; s++) {
    const v = a.subarray(s * len, (s + 1) * len)
    for (let i = 0; i < len; i++) idx[i] = i
    // Ascending, ties by index: TypedArray#sort is stable for equal keys only via the comparator.
    idx.sort((p, q) => v[p]! - v[q]! || p - q)
    const o = out.subarray(s * len, (s + 1) * len)
    for (let k = 0; k < len; k++) o[idx[k]!] = v[idx[len - 1 - k]!]!
  }
  return out
}
