// The synthetic validation set of Li, Zhang et al. (TMLR 2024), §5.1 and App. G.1: 200-dimensional
// N(0, I) points, label = sign of the sum of the features, the transparent step model
// y = σ(Σ x) as an ONNX graph, and its ground-truth Shapley attribution. Shared by
// examples/synthetic.ts and __test__/synthetic.spec.ts.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { writeOnnx, type Dataset } from 'xai-eval'

export const FEATURES = 200

/** Samples as 1 × 1 × 200 images, so that the noisy linear imputer works along the row. */
export const shapeOf = (n: number): [number, number, number, number] => [n, 1, 1, FEATURES]

/** mulberry32: a tiny seeded generator for the data (the library's own is not public). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface Synthetic {
  x: Float32Array
  /** 1 where Σ x > 0, else 0. */
  y: Int32Array
  shape: [number, number, number, number]
}

/** `n` points from N(0, I_200) (Box–Muller on a seeded generator), labelled by the sign of Σ x. */
export function synthetic(n: number, seed: number): Synthetic {
  const rand = mulberry32(seed)
  const x = new Float32Array(n * FEATURES)
  for (let i = 0; i < x.length; i++) {
    const u1 = 1 - rand()
    x[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * rand())
  }
  return { x, y: labels(x, n), shape: shapeOf(n) }
}

/** The data-generating rule: class 1 iff Σ x > 0. */
export function labels(x: Float32Array, n: number): Int32Array {
  const y = new Int32Array(n)
  for (let s = 0; s < n; s++) {
    let sum = 0
    for (let i = s * FEATURES; i < (s + 1) * FEATURES; i++) sum += x[i]!
    y[s] = sum > 0 ? 1 : 0
  }
  return y
}

/**
 * Ground-truth Shapley attribution of the step model (App. G.1): φ_i = x_i − E[x_i] = x_i for
 * positive samples, −x_i for negative ones; negative values clipped to 0 (the metrics take
 * non-negative maps), then each map divided by its maximum so that it lies in [0, 1] (paper-mode
 * Completeness thresholds t = 0.9 … 0.1 are absolute, and Table 3's shifts of 0.6 assume [0, 1]).
 */
export function groundTruth(d: Synthetic): Float32Array {
  const n = d.y.length
  const a = new Float32Array(d.x.length)
  for (let s = 0; s < n; s++) {
    const sign = d.y[s] === 1 ? 1 : -1
    let max = 0
    for (let i = s * FEATURES; i < (s + 1) * FEATURES; i++) {
      a[i] = Math.max(0, sign * d.x[i]!)
      max = Math.max(max, a[i]!)
    }
    if (max > 0) for (let i = s * FEATURES; i < (s + 1) * FEATURES; i++) a[i] = a[i]! / max
  }
  return a
}

export const dataset = (d: Synthetic, a: Float32Array): Dataset => ({ x: d.x, shape: d.shape, y: d.y, a })

/**
 * The paper's linear model y = σ(Σx) as an ONNX graph: logits (−Σx, Σx), so the argmax is the
 * step σ(Σx) and the true-class logit (the 'score' indicator, the authors' PredScore) is ±Σx —
 * it rises exactly when features that push towards the label are kept. (A graph of a hard step,
 * logits ±c·sign(Σx), has a constant score: every step then looks like no gain, see README.)
 */
export function stepModelOnnx(): Uint8Array {
  return writeOnnx({
    name: 'linear_step',
    inputs: [{ name: 'x', dims: ['N', 1, 1, FEATURES] }],
    outputs: [{ name: 'logits', dims: ['N', 2] }],
    initializers: [{ name: 'w', dims: [FEATURES, 2], data: Float32Array.from({ length: 2 * FEATURES }, (_, i) => (i % 2 === 1 ? 1 : -1)) }],
    nodes: [
      { op: 'Flatten', inputs: ['x'], outputs: ['flat'], attributes: { axis: 1 } },
      { op: 'MatMul', inputs: ['flat', 'w'], outputs: ['logits'] },
    ],
  })
}

/** Writes a model to a fresh temporary file and returns its path. */
export function writeTemp(bytes: Uint8Array, name = 'step.onnx'): string {
  const path = join(mkdtempSync(join(tmpdir(), 'xai-eval-synthetic-')), name)
  writeFileSync(path, bytes)
  return path
}
