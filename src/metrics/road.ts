import type { Dataset } from '../data.js'
import { needsSoftmax, run, type Plan } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { imputeRows, rankFeatures } from '../native.js'
import { finish, meter, type Curves, type MetricResult } from '../result.js'
import { checkDataset, layoutOf, nonNegative, oneOf, rowShape, seedOf } from '../validate.js'
import { FROM_END, type EvaluateOptions } from './curve.js'

export interface RoadOptions {
  /** Remove the most relevant pixels first (default) or the least relevant. */
  order?: 'morf' | 'lerf'
  /** Fractions of pixels removed, each in [0, 1] (default the paper's [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9]). */
  percentages?: number[]
  /** Standard deviation of the imputation noise (default 0.01). */
  noise?: number
  /** Seed of the imputation noise (default 0). */
  seed?: number
  /** Rank by |a| (default false). */
  abs?: boolean
  /**
   * `'quantus'` reproduces quantus.ROAD 0.6: `percentages` in per cent (default 1, 3, …, 99),
   * `⌊H·W·p / 100⌋` pixels removed, MoRF only, single-channel inputs only (Quantus indexes the
   * image's pixels with its ranking of the channel-broadcast attribution). Imputation noise is
   * drawn from our seeded generator, not numpy's global one: set `noise: 0` for exact parity.
   */
  compat?: 'quantus'
}

export interface RoadResult extends MetricResult {
  /** Per percentage: the fraction of samples still classified as their label. */
  accuracy: Float64Array
  /** Per percentage: the mean probability of the label. */
  probability: Float64Array
  /** Per sample: correctness `[N, P]` (1 or 0) and label probability `[N, P]` curves over `percentages`. */
  curves: { correct: Curves; probability: Curves }
}

/**
 * ROAD, RemOve And Debias (Rong, Leemann et al., ICML 2022): remove a fraction p of the pixels in
 * order of attribution (summed over channels) and fill them by noisy linear imputation, which
 * leaks far less of the removed shape than a constant baseline; follow accuracy and the label's
 * probability as p grows. MoRF (lower is better) removes the p most relevant pixels, LeRF (higher
 * is better) the p least relevant — the paper's protocol. The road repository's LeRF at p instead
 * *keeps* the p most relevant pixels, i.e. it is this LeRF at 1 − p.
 *
 * `scores` holds each sample's label probability averaged over the percentages.
 * Cost: one imputation and one row per (sample, percentage); imputation runs in parallel in Rust,
 * overlapped with inference.
 */
export class Road {
  readonly order: 'morf' | 'lerf'
  readonly percentages: readonly number[]
  readonly noise: number
  readonly seed: number
  readonly abs: boolean
  readonly compat: 'quantus' | undefined

  constructor(options: RoadOptions = {}) {
    this.order = oneOf('order', options.order ?? 'morf', ['morf', 'lerf'])
    this.compat = options.compat === undefined ? undefined : oneOf('compat', options.compat, ['quantus'])
    if (this.compat && this.order !== 'morf') throw new XaiEvalError('INVALID_OPTION', 'order', "Quantus's ROAD is MoRF only")
    const unit = this.compat ? 100 : 1
    this.percentages =
      options.percentages ?? (this.compat ? Array.from({ length: 50 }, (_, i) => 2 * i + 1) : [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9])
    if (
      !Array.isArray(this.percentages) ||
      this.percentages.length === 0 ||
      !this.percentages.every((p) => typeof p === 'number' && p >= 0 && p <= unit)
    ) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'percentages',
        `expected a non-empty list of ${this.compat ? 'per cent values in [0, 100]' : 'fractions in [0, 1]'}, got ${JSON.stringify(options.percentages)}`,
      )
    }
    this.abs = options.abs ?? false
    this.noise = nonNegative('noise', options.noise ?? 0.01)
    this.seed = seedOf(options.seed ?? 0)
  }

  async evaluate(model: Model, data: Dataset, options: EvaluateOptions = {}): Promise<RoadResult> {
    const d = checkDataset(data)
    const layout = layoutOf(d, 'pixel')
    const pixels = d.height * d.width
    if (this.compat && d.channels !== 1) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'compat',
        `Quantus's ROAD supports single-channel inputs only (got C = ${d.channels}): it ranks the channel-broadcast attribution but imputes pixels`,
      )
    }
    // Quantus: int(a_size * p / 100), the product exact, one division, truncation.
    const counts = this.percentages.map((p) => (this.compat ? Math.trunc((pixels * p) / 100) : Math.floor(pixels * p)))
    const flags = this.order === 'lerf' ? FROM_END : 0
    const order = await rankFeatures(d.a, d.n, layout, this.abs, options.signal)
    const k = counts.length
    const shape = [d.n, d.channels, d.height, d.width]
    const plan: Plan = {
      rows: d.n * k,
      build: (start, end, out, targets, signal) => {
        const triples = new Uint32Array(3 * (end - start))
        for (let r = start; r < end; r++) {
          const i = r - start
          const s = Math.floor(r / k)
          triples.set([s, counts[r % k]!, flags], 3 * i)
          targets[i] = d.y[s]!
        }
        return imputeRows(d.x, shape, order, triples, this.noise, this.seed, 0, out, signal)
      },
    }

    const cost = meter(model.stats)
    const probability = new Float64Array(d.n * k)
    const correct = new Float64Array(d.n * k)
    await run(
      model,
      rowShape(d),
      plan,
      needsSoftmax(model, true),
      ({ start, scores, argmax }) => {
        probability.set(scores, start)
        for (let i = 0; i < scores.length; i++) correct[start + i] = argmax[i] === d.y[Math.floor((start + i) / k)] ? 1 : 0
      },
      options,
    )

    const x = Float64Array.from(this.percentages)
    const perStep = (v: Float64Array) =>
      Float64Array.from({ length: k }, (_, j) => {
        let sum = 0
        for (let s = 0; s < d.n; s++) sum += v[s * k + j]!
        return sum / d.n
      })
    const scores = Float64Array.from({ length: d.n }, (_, s) => probability.subarray(s * k, (s + 1) * k).reduce((a, b) => a + b, 0) / k)
    return finish<RoadResult>({
      metric: 'Road',
      scores,
      accuracy: perStep(correct),
      probability: perStep(probability),
      curves: { correct: { x, values: correct, points: k }, probability: { x, values: probability, points: k } },
      ...cost(),
      params: { order: this.order, percentages: this.percentages, noise: this.noise, seed: this.seed, abs: this.abs, compat: this.compat },
    })
  }
}
