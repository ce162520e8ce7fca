// A plain, deliberately slow reference for the perturbation-curve metrics, written from their
// definitions and not from src/: one forward call per curve point, fresh rows built from scratch,
// nothing batched, shared or incremental. Only the ordering contract is taken from the library:
// a stable descending sort with ties to the lower index, LIF being the exact reverse of MIF.

/** One input row `[C, H, W]` → raw model outputs `[K]`. */
export type RowModel = (row: Float32Array) => Float32Array

export interface RefData {
  x: Float32Array
  shape: readonly [number, number, number, number]
  y: ArrayLike<number>
  a: Float32Array
  /** Default `shape`; `[N, 1, H, W]` broadcasts over channels. */
  aShape?: readonly number[]
}

export interface RefCurve {
  /** Fraction of features removed (or inserted) at each point. */
  x: number[]
  /** Per sample, the target score at each point. */
  values: number[][]
  /** Per sample, trapezoidal area on `x`. */
  auc: number[]
}

// ---------------------------------------------------------------------------------------------
// Small pieces

/** Indices 0…n−1 sorted by descending key, equal keys in ascending index order. */
export function stableDescending(keys: readonly number[]): number[] {
  const idx = keys.map((_, i) => i)
  idx.sort((i, j) => {
    if (keys[i]! > keys[j]!) return -1
    if (keys[i]! < keys[j]!) return 1
    return i - j
  })
  return idx
}

export function softmax(v: ArrayLike<number>): number[] {
  let max = -Infinity
  for (let i = 0; i < v.length; i++) max = Math.max(max, v[i]!)
  const e = Array.from(v, (z) => Math.exp(z - max))
  const s = e.reduce((p, q) => p + q, 0)
  return e.map((z) => z / s)
}

/** Index of the first maximum. */
export function argmax(v: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i
  return best
}

/** Trapezoidal area under `y` sampled at `x`. */
export function trapezoid(y: readonly number[], x: readonly number[]): number {
  let area = 0
  for (let k = 0; k + 1 < y.length; k++) area += ((x[k + 1]! - x[k]!) * (y[k]! + y[k + 1]!)) / 2
  return area
}

/** The score a metric reads from a row's raw outputs. */
export function scoreOf(out: Float32Array, target: number, applySoftmax: boolean): number {
  if (target < 0 || target >= out.length) throw new Error(`reference: target ${target} out of range`)
  return applySoftmax ? softmax(out)[target]! : out[target]!
}

function dims(d: RefData) {
  const [n, c, h, w] = d.shape
  const aShape = d.aShape ?? d.shape
  return { n, c, p: h * w, rowLen: c * h * w, ac: aShape[1]! }
}

function sampleRow(d: RefData, s: number): Float32Array {
  const { rowLen } = dims(d)
  return d.x.slice(s * rowLen, (s + 1) * rowLen)
}

/**
 * Attribution of each input entry of sample `s` (`C·H·W` features, flat index c·H·W + p): an
 * `[N, 1, H, W]` attribution is copied to every channel.
 */
export function entryAttribution(d: RefData, s: number): number[] {
  const { c, p, ac } = dims(d)
  const out: number[] = []
  for (let ch = 0; ch < c; ch++) {
    for (let q = 0; q < p; q++) out.push(d.a[s * ac * p + (ac === 1 ? 0 : ch) * p + q]!)
  }
  return out
}

/** Attribution of each pixel of sample `s`: the sum over the attribution's channels (in float32). */
export function pixelAttribution(d: RefData, s: number): number[] {
  const { p, ac } = dims(d)
  const out: number[] = []
  for (let q = 0; q < p; q++) {
    let sum = 0
    for (let ch = 0; ch < ac; ch++) sum = Math.fround(sum + d.a[s * ac * p + ch * p + q]!)
    out.push(sum)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Pixel flipping and SRG: entry features, `featuresInStep` per step, constant baseline.

export interface PixelFlippingRefOptions {
  order: 'mif' | 'lif'
  featuresInStep: number
  /** Constant baseline (default 0). */
  baseline?: number
  abs?: boolean
  /** Apply softmax to the raw outputs before reading the label's score. */
  softmax: boolean
}

export function pixelFlippingRef(model: RowModel, d: RefData, o: PixelFlippingRefOptions): RefCurve {
  const { n, rowLen } = dims(d)
  const features = rowLen
  const counts: number[] = []
  for (let c = 0; c < features; c += o.featuresInStep) counts.push(c)
  counts.push(features)
  const base = Math.fround(o.baseline ?? 0)
  const values: number[][] = []
  for (let s = 0; s < n; s++) {
    const attr = entryAttribution(d, s).map((v) => (o.abs ? Math.abs(v) : v))
    const mif = stableDescending(attr)
    const ranking = o.order === 'mif' ? mif : [...mif].reverse()
    const curve: number[] = []
    for (const count of counts) {
      const row = sampleRow(d, s)
      for (let k = 0; k < count; k++) row[ranking[k]!] = base
      curve.push(scoreOf(model(row), d.y[s]!, o.softmax))
    }
    values.push(curve)
  }
  const x = counts.map((c) => c / features)
  return { x, values, auc: values.map((v) => trapezoid(v, x)) }
}

export interface SrgRef {
  scores: number[]
  mif: RefCurve
  lif: RefCurve
}

export function srgRef(model: RowModel, d: RefData, o: Omit<PixelFlippingRefOptions, 'order'>): SrgRef {
  const mif = pixelFlippingRef(model, d, { ...o, order: 'mif' })
  const lif = pixelFlippingRef(model, d, { ...o, order: 'lif' })
  return { scores: mif.auc.map((m, s) => lif.auc[s]! - m), mif, lif }
}

// ---------------------------------------------------------------------------------------------
// Deletion and Insertion: pixel features (all channels at once), `steps` points after the first.

export interface DeletionInsertionRefOptions {
  steps: number
  /** Constant baseline. */
  baseline: number
  target: 'label' | 'predicted'
  softmax: boolean
}

export interface DeletionInsertionRef extends RefCurve {
  /** Per sample, the class followed. */
  target: number[]
}

function pixelGame(model: RowModel, d: RefData, o: DeletionInsertionRefOptions, insert: boolean): DeletionInsertionRef {
  const { n, c, p } = dims(d)
  const counts = Array.from({ length: o.steps + 1 }, (_, k) => Math.round((k * p) / o.steps))
  const base = Math.fround(o.baseline)
  const values: number[][] = []
  const targets: number[] = []
  for (let s = 0; s < n; s++) {
    const clean = sampleRow(d, s)
    const target = o.target === 'label' ? d.y[s]! : argmax(model(clean))
    targets.push(target)
    const ranking = stableDescending(pixelAttribution(d, s))
    const curve: number[] = []
    for (const count of counts) {
      const chosen = new Set(ranking.slice(0, count))
      const row = new Float32Array(clean.length)
      for (let ch = 0; ch < c; ch++) {
        for (let q = 0; q < p; q++) {
          const i = ch * p + q
          // Deletion: chosen pixels become the baseline. Insertion: only chosen pixels are real.
          row[i] = chosen.has(q) !== insert ? base : clean[i]!
        }
      }
      curve.push(scoreOf(model(row), target, o.softmax))
    }
    values.push(curve)
  }
  const x = counts.map((k) => k / p)
  return { x, values, auc: values.map((v) => trapezoid(v, x)), target: targets }
}

export function deletionRef(model: RowModel, d: RefData, o: DeletionInsertionRefOptions): DeletionInsertionRef {
  return pixelGame(model, d, o, false)
}

export function insertionRef(model: RowModel, d: RefData, o: DeletionInsertionRefOptions): DeletionInsertionRef {
  return pixelGame(model, d, o, true)
}

// ---------------------------------------------------------------------------------------------
// Test helpers shared by the specs: a seeded PRNG and a linear classifier.

/** mulberry32: a small seeded PRNG with uniform output in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A linear classifier `logits = W·row + b` (`W` is `[K, D]`), computed in f64, returned as float32. */
export function linearRowModel(weights: Float64Array, bias: Float64Array): RowModel {
  const k = bias.length
  const dim = weights.length / k
  return (row) => {
    if (row.length !== dim) throw new Error(`linear model: expected ${dim} inputs, got ${row.length}`)
    const out = new Float32Array(k)
    for (let j = 0; j < k; j++) {
      let z = bias[j]!
      for (let i = 0; i < dim; i++) z += weights[j * dim + i]! * row[i]!
      out[j] = z
    }
    return out
  }
}

/** Applies a row model to a `[rows, ...rowShape]` batch: the body of a FunctionModel. */
export function batched(model: RowModel): (x: Float32Array, shape: number[]) => Float32Array {
  return (x, shape) => {
    const rows = shape[0]!
    const rowLen = x.length / rows
    const outs: Float32Array[] = []
    for (let r = 0; r < rows; r++) outs.push(model(x.subarray(r * rowLen, (r + 1) * rowLen)))
    const k = outs[0]?.length ?? 0
    const out = new Float32Array(rows * k)
    outs.forEach((o, r) => {
      out.set(o, r * k)
    })
    return out
  }
}
