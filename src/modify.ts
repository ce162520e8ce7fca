// The Remove / Introduce modifications of attribution maps of Li, Zhang et al., "A Dual-Perspective
// Approach to Evaluating Feature Attribution Methods" (TMLR 2024), App. G.3, Table 3: controlled
// changes that should lower completeness (Remove) or soundness (Introduce), used in §5.1 and §5.2
// to check that a metric tells modified maps from the original ones.
//
// Table 3 states the shifts (0.6) and quantiles on the scale of the authors' maps, which are min–max
// normalised to [0, 1] (stored as uint8 PNGs). Normalise maps to [0, 1] (e.g. by each map's
// maximum) before applying the defaults, or scale `amount`.
import { XaiEvalError } from './errors.js'
import { keyedUniforms } from './native.js'
import { parseOptions, seed as seedSchema, z } from './options.js'

export type ModificationKind = 'constant' | 'random' | 'partial'

export interface ModifyOptions {
  /**
   * Which row of Table 3:
   * - `'constant'`: Remove — "Subtract the attribution map by a constant 0.6."; Introduce — "Add
   *   the attribution map with a constant 0.6."
   * - `'random'`: Remove — "Sample a shift from U(−0.6, 0) for each pixel independently, and add
   *   the attribution of each pixel with the corresponding shift."; Introduce — the same with a
   *   shift from U(0, 0.6).
   * - `'partial'`: Remove — "Sort the attribution map in ascending order and select the pixels in
   *   the indexing range [0.6N, 0.8N], where N is the number of pixels. Then set the attribution
   *   of these pixels to 0."; Introduce — "Sort the attribution map in ascending order and select
   *   the pixels in indexing range [0, 0.4N] … Then set the attribution of these pixels to q0.8,
   *   where qt denotes the t-th quantile of attribution values."
   */
  kind: ModificationKind
  /** `'constant'` / `'random'`: the shift, or the width of the uniform shift (default 0.6). */
  amount?: number
  /**
   * `'constant'` / `'random'`: clip the result to `[lo, hi]` (default `[0, 1]`, as the authors'
   * code does on its uint8 maps, `tools/generate_shifted_modified_smaps.py`), or `null` for no
   * clipping. Table 3 does not mention clipping; without it a Remove-shifted map goes negative,
   * which the soundness metric rejects.
   */
  clip?: readonly [number, number] | null
  /**
   * `'partial'`: the range `[lo, hi]` of fractions of the ascending order whose pixels are changed;
   * positions `⌊lo·N⌋ … ⌊hi·N⌋ − 1` (default: Remove `[0.6, 0.8]`, Introduce `[0, 0.4]`).
   */
  range?: readonly [number, number]
  /**
   * `'partial'`: the value the selected pixels get (default: Remove 0, Introduce none — see
   * `quantile`). Give either `value` or `quantile`.
   */
  value?: number
  /**
   * `'partial'`: set the selected pixels to the `quantile`-th quantile of the map's original values
   * (linear interpolation, as `numpy.quantile`; default: Introduce 0.8, Remove none).
   */
  quantile?: number
  /** Seed of the random shifts (`'random'`) and of the order of tied values (`'partial'`); default 0. */
  seed?: number
}

/**
 * The Remove modification (Table 3, left column) of every map in `a`, a new array. `shape` is
 * `[N, ...]`: the `N` samples' maps are the remaining dimensions flattened (all channels of a
 * sample form one map). Map `n` draws random stream `n` of `seed`, so a sample's result does not
 * depend on the other samples.
 */
export function remove(a: Float32Array, shape: readonly number[], options: ModifyOptions): Float32Array {
  return modify('remove', a, shape, options)
}

/** The Introduce modification (Table 3, right column); see {@link remove}. */
export function introduce(a: Float32Array, shape: readonly number[], options: ModifyOptions): Float32Array {
  return modify('introduce', a, shape, options)
}

type Direction = 'remove' | 'introduce'

const OPTIONS = new Set(['kind', 'amount', 'clip', 'range', 'value', 'quantile', 'seed'])

function modify(direction: Direction, a: Float32Array, shape: readonly number[], options: ModifyOptions): Float32Array {
  if (!(a instanceof Float32Array)) throw new XaiEvalError('INVALID_OPTION', 'a', 'expected a Float32Array')
  if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'shape', `expected [N, ...] of at least two non-negative integers, got ${String(shape)}`)
  }
  const n = shape[0]!
  const size = shape.slice(1).reduce((p, d) => p * d, 1)
  if (a.length !== n * size) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'a', `length ${a.length} does not match shape [${shape.join(', ')}] (${n * size})`)
  }
  if (n === 0 || size === 0) throw new XaiEvalError('EMPTY_INPUT', 'a', 'there is no attribution to modify')
  if (options === null || typeof options !== 'object') {
    throw new XaiEvalError('INVALID_OPTION', 'options', "expected { kind: 'constant' | 'random' | 'partial', ... }")
  }
  for (const key of Object.keys(options)) {
    if (!OPTIONS.has(key)) throw new XaiEvalError('INVALID_OPTION', key, `unknown option of modify.${direction}`)
  }
  const kind = options.kind
  if (kind !== 'constant' && kind !== 'random' && kind !== 'partial') {
    throw new XaiEvalError('INVALID_OPTION', 'kind', `expected one of 'constant', 'random', 'partial', got ${String(kind)}`)
  }
  const { seed } = parseOptions(z.object({ seed: seedSchema.default(0) }), { seed: options.seed })
  const bad = a.findIndex((v) => !Number.isFinite(v))
  if (bad >= 0) throw new XaiEvalError('NON_FINITE', 'a', `${a[bad]} at index ${bad}`)

  if (kind === 'partial') {
    for (const k of ['amount', 'clip'] as const) {
      if (options[k] !== undefined) throw new XaiEvalError('INVALID_OPTION', k, `not an option of kind 'partial'`)
    }
    return partial(direction, a, n, size, options, seed)
  }
  for (const k of ['range', 'value', 'quantile'] as const) {
    if (options[k] !== undefined) throw new XaiEvalError('INVALID_OPTION', k, `only an option of kind 'partial'`)
  }
  const amount = options.amount ?? 0.6
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
    throw new XaiEvalError('INVALID_OPTION', 'amount', `expected a finite value ≥ 0, got ${String(amount)}`)
  }
  const clip = options.clip === undefined ? ([0, 1] as const) : options.clip
  if (
    clip !== null &&
    !(Array.isArray(clip) && clip.length === 2 && clip.every((v) => typeof v === 'number' && !Number.isNaN(v)) && clip[0]! <= clip[1]!)
  ) {
    throw new XaiEvalError('INVALID_OPTION', 'clip', `expected [lo, hi] with lo ≤ hi, or null, got ${String(clip)}`)
  }
  const lo = clip === null ? -Infinity : clip[0]!
  const hi = clip === null ? Infinity : clip[1]!
  const sign = direction === 'remove' ? -1 : 1
  const out = new Float32Array(a.length)
  for (let s = 0; s < n; s++) {
    const u = kind === 'random' ? keyedUniforms(size, seed, s, 'perturbation', 0) : undefined
    for (let i = 0; i < size; i++) {
      // Remove: a + U(−amount, 0) = a − U(0, amount); Introduce: a + U(0, amount).
      const shift = u ? amount * u[i]! : amount
      out[s * size + i] = Math.min(hi, Math.max(lo, a[s * size + i]! + sign * shift))
    }
  }
  return out
}

function fraction(name: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
    throw new XaiEvalError('INVALID_OPTION', name, `expected a number in [0, 1], got ${String(v)}`)
  }
  return v
}

function partial(direction: Direction, a: Float32Array, n: number, size: number, options: ModifyOptions, seed: number): Float32Array {
  const range = options.range ?? (direction === 'remove' ? [0.6, 0.8] : [0, 0.4])
  if (!Array.isArray(range) || range.length !== 2) {
    throw new XaiEvalError('INVALID_OPTION', 'range', `expected [lo, hi] fractions, got ${String(range)}`)
  }
  const from = fraction('range', range[0])
  const to = fraction('range', range[1])
  if (from > to) throw new XaiEvalError('INVALID_OPTION', 'range', `expected lo ≤ hi, got [${from}, ${to}]`)
  if (options.value !== undefined && options.quantile !== undefined) {
    throw new XaiEvalError('INVALID_OPTION', 'value', 'give either value or quantile, not both')
  }
  let value: number | undefined
  let quantile: number | undefined
  if (options.quantile !== undefined) quantile = fraction('quantile', options.quantile)
  else if (options.value !== undefined) {
    if (typeof options.value !== 'number' || !Number.isFinite(options.value)) {
      throw new XaiEvalError('INVALID_OPTION', 'value', `expected a finite number, got ${String(options.value)}`)
    }
    value = options.value
  } else if (direction === 'remove') value = 0
  else quantile = 0.8

  const start = Math.floor(from * size)
  const end = Math.floor(to * size)
  const out = a.slice()
  const order = new Uint32Array(size)
  const sorted = new Float64Array(size)
  for (let s = 0; s < n; s++) {
    const map = a.subarray(s * size, (s + 1) * size)
    // Ascending order; ties in a random order keyed by (seed, sample), then by index.
    const keys = keyedUniforms(size, seed, s, 'ties', 0)
    for (let i = 0; i < size; i++) order[i] = i
    order.sort((i, j) => map[i]! - map[j]! || keys[i]! - keys[j]! || i - j)
    let v = value
    if (quantile !== undefined) {
      for (let i = 0; i < size; i++) sorted[i] = map[order[i]!]!
      v = quantileOfSorted(sorted, quantile)
    }
    for (let k = start; k < end; k++) out[s * size + order[k]!] = v!
  }
  return out
}

/** `numpy.quantile(values, q)` (method 'linear') of ascending `sorted`. */
function quantileOfSorted(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1)
  const lo = Math.floor(pos)
  const hi = Math.min(lo + 1, sorted.length - 1)
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!)
}
