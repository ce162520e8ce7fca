// The experiment behind the Quality Gap Estimator's claim, on any model and metric: for each input,
// the metric's values over many random explanations are its "latent quality distribution" (their
// z-scores say how exceptional each explanation is), and an estimator of quality is as good as it
// ranks those explanations like the truth does. QGE costs one more evaluation per explanation; the
// random baseline QB_K costs K (Eiras-Franco, Hedström & Höhne, AAAI 2025, §4.1, Table 1).
import type { Dataset } from './data.js'
import { throwIfAborted } from './errors.js'
import { type InverseMethod, invert } from './metrics/inverse.js'
import { checkModel, metricOption } from './metrics/protocol.js'
import type { Model } from './models/model.js'
import { agreement, randomBaselineGaps, randomRankings } from './native.js'
import { parseOptions, seed, z } from './options.js'
import { RowCache } from './row-cache.js'
import { checkDataset, datasetOf } from './validate.js'

const schema = z.strictObject({
  /** The quality measure Ψ: any metric of the registry, or its `{ id, params }`. */
  metric: metricOption,
  /** Random explanations per input (default 100; the paper uses 10^3–10^4). */
  explanations: z.int().min(3).max(100_000).default(100),
  /** Sizes K of the random baselines compared (default 1…10, as the paper's plots). */
  k: z.array(z.int().min(1).max(1000)).min(1).max(100).default([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
  /** The inverse QGE uses (default `'ranking'`, 1 − r, as the paper's experiments). */
  inverse: z.enum(['sign-flip', 'value-swap', 'ranking']).default('ranking'),
  /** Rank cells of `chunk × chunk` pixels (the paper's "chunky" rankings; default 1). */
  chunk: z.int().min(1).max(4096).default(1),
  /** Seed of the random explanations and of the baselines' draws (default 0). */
  seed: seed.default(0),
  /** Global index of the first sample (keys the draws). */
  firstSample: z.int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
  /** Called after each random explanation with the number done. */
  onProgress: z.custom<(p: { done: number; total: number }) => void>((v) => typeof v === 'function', 'expected a function').optional(),
})

export type LatentQualityOptions = z.input<typeof schema>

/** Agreement of one estimator with the truth, per input and averaged over inputs. */
export interface Agreement {
  /** Kendall's τ-b per input. */
  kendall: Float64Array
  /** Spearman's ρ per input. */
  spearman: Float64Array
  /** Share of correctly ordered pairs per input (exact over all pairs). */
  pairs: Float64Array
  mean: { kendall: number; spearman: number; pairs: number }
}

export interface LatentQuality {
  metric: string
  samples: number
  explanations: number
  /** `[N, M]`: Ψ of each input's random explanations (its latent quality distribution). */
  quality: Float64Array
  /** `[N, M]`: z-scores of `quality` per input (population std). */
  z: Float64Array
  /** `[N, M]`: QGE of each random explanation, Ψ(r) − Ψ(inverse(r)). */
  qge: Float64Array
  /** Per input: the std of its latent distribution (the paper's Table 2 column). */
  std: Float64Array
  /** By estimator: `'QGE'`, `'QB1'`, `'QB2'`, …: agreement with the truth. */
  agreement: Record<string, Agreement>
  /** Model rows evaluated. */
  forwardPasses: number
}

/**
 * Evaluates Ψ on `explanations` random rankings of every input of `data` and on their inverses,
 * and measures how well QGE and the random baselines QB_K rank the explanations as Ψ itself does.
 */
export async function latentQuality(model: Model, data: Dataset, options: LatentQualityOptions): Promise<LatentQuality> {
  checkModel(model)
  const d = checkDataset(data)
  const o = parseOptions(schema, options)
  const m = o.explanations
  const n = d.n
  const quality = new Float64Array(n * m)
  const qge = new Float64Array(n * m)
  const rows = new RowCache()
  let forwardPasses = 0
  for (let i = 0; i < m; i++) {
    throwIfAborted(o.signal)
    const r = randomRankings(n, o.firstSample, d.height, d.width, o.chunk, o.seed, i)
    const aShape = [n, 1, d.height, d.width]
    const evalOpts = { rows, firstSample: o.firstSample, ...(o.signal ? { signal: o.signal } : {}) }
    const fwd = await o.metric.evaluate(model, { ...datasetOf(d, r), aShape }, evalOpts)
    const inv = await o.metric.evaluate(model, { ...datasetOf(d, invert(r, n, o.inverse as InverseMethod)), aShape }, evalOpts)
    forwardPasses += fwd.forwardPasses + inv.forwardPasses
    for (let s = 0; s < n; s++) {
      quality[s * m + i] = fwd.scores[s]!
      qge[s * m + i] = fwd.scores[s]! - inv.scores[s]!
    }
    o.onProgress?.({ done: i + 1, total: m })
  }

  const z = new Float64Array(n * m)
  const std = new Float64Array(n)
  const estimators: Record<string, Float64Array> = { QGE: qge }
  for (const k of o.k) {
    const e = new Float64Array(n * m)
    for (let s = 0; s < n; s++) e.set(randomBaselineGaps(quality.subarray(s * m, (s + 1) * m), k, o.seed, o.firstSample + s), s * m)
    estimators[`QB${k}`] = e
  }
  for (let s = 0; s < n; s++) {
    const q = quality.subarray(s * m, (s + 1) * m)
    const mean = q.reduce((a, b) => a + b, 0) / m
    std[s] = Math.sqrt(q.reduce((a, b) => a + (b - mean) ** 2, 0) / m)
    for (let i = 0; i < m; i++) z[s * m + i] = (q[i]! - mean) / std[s]!
  }
  const result: Record<string, Agreement> = {}
  for (const [name, e] of Object.entries(estimators)) {
    const kendall = new Float64Array(n)
    const spearman = new Float64Array(n)
    const pairs = new Float64Array(n)
    for (let s = 0; s < n; s++) {
      const [tau, rho, share] = agreement(quality.subarray(s * m, (s + 1) * m), e.subarray(s * m, (s + 1) * m))
      kendall[s] = tau!
      spearman[s] = rho!
      pairs[s] = share!
    }
    const avg = (v: Float64Array) => {
      const finite = [...v].filter(Number.isFinite)
      return finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : Number.NaN
    }
    result[name] = { kendall, spearman, pairs, mean: { kendall: avg(kendall), spearman: avg(spearman), pairs: avg(pairs) } }
  }
  return { metric: o.metric.meta.id, samples: n, explanations: m, quality, z, qge, std, agreement: result, forwardPasses }
}
