import { needsSoftmax, type Plan, run } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { imputeRows, rankFeatures } from '../native.js'
import { seed, z } from '../options.js'
import { type Checked, layoutOf } from '../validate.js'
import { type Curves, FROM_END } from './curve.js'
import { type CheckedMapOptions, column, type Merged, Metric, type MetricResult, newCost, type Shard } from './protocol.js'

const schema = z
  .strictObject({
    /** Remove the most relevant pixels first (default) or the least relevant. */
    order: z.enum(['morf', 'lerf']).default('morf'),
    /**
     * Fractions of pixels removed, each in [0, 1] (default the paper's [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9];
     * per cent values 1, 3, …, 99 with `compat: 'quantus'`).
     */
    percentages: z.array(z.number().min(0).max(100)).min(1).max(10_000).optional(),
    /** Standard deviation of the imputation noise (default 0.01). */
    noise: z.number().min(0).max(1e6).default(0.01),
    /** Seed of the imputation noise (default 0). */
    seed: seed.default(0),
    /** Rank by |a| (default false). */
    abs: z.boolean().default(false),
    /**
     * `'quantus'` reproduces quantus.ROAD 0.6: `percentages` in per cent (default 1, 3, …, 99),
     * `⌊H·W·p / 100⌋` pixels removed, MoRF only, single-channel inputs only (Quantus indexes the
     * image's pixels with its ranking of the channel-broadcast attribution). Imputation noise is
     * drawn from our seeded generator, not numpy's global one: set `noise: 0` for exact parity.
     */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.compat && o.order !== 'morf') ctx.addIssue({ code: 'custom', path: ['order'], message: "Quantus's ROAD is MoRF only" })
    if (!o.compat && o.percentages?.some((p) => p > 1)) {
      ctx.addIssue({
        code: 'custom',
        path: ['percentages'],
        message: 'expected fractions in [0, 1] (per cent values only with compat: quantus)',
      })
    }
  })
  .transform((o) => ({
    ...o,
    percentages: o.percentages ?? (o.compat ? Array.from({ length: 50 }, (_, i) => 2 * i + 1) : [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9]),
  }))

export type RoadOptions = z.input<typeof schema>
export type RoadParams = z.output<typeof schema>

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
 * overlapped with inference. Imputation noise is keyed by the sample's global index and the row.
 */
export class Road extends Metric<RoadParams, RoadResult> {
  static readonly meta = {
    id: 'road',
    name: 'Road',
    higherIsBetter: false,
    needs: ['attributions'],
    version: 1,
    cost: '1 row (and 1 imputation) per percentage',
    reference: 'Rong, Leemann et al., ICML 2022; quantus.ROAD 0.6',
  } as const

  constructor(options?: RoadOptions) {
    super(schema, options)
  }

  /** LeRF keeps the relevant pixels: higher is better. */
  override get higherIsBetter(): boolean {
    return this.params.order === 'lerf'
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { order, percentages, noise, seed, abs, compat } = this.params
    const layout = layoutOf(d, 'pixel')
    const pixels = d.height * d.width
    if (compat && d.channels !== 1) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'compat',
        `Quantus's ROAD supports single-channel inputs only (got C = ${d.channels}): it ranks the channel-broadcast attribution but imputes pixels`,
      )
    }
    // Quantus: int(a_size * p / 100), the product exact, one division, truncation.
    const counts = percentages.map((p) => (compat ? Math.trunc((pixels * p) / 100) : Math.floor(pixels * p)))
    const flags = order === 'lerf' ? FROM_END : 0
    const ranked = await rankFeatures(d.a, d.n, layout, abs, o.signal)
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
        return imputeRows(d.x, shape, ranked, triples, noise, seed, o.firstSample, out, signal)
      },
    }

    const cost = newCost()
    const probability = new Float64Array(d.n * k)
    const correct = new Float64Array(d.n * k)
    await run(
      model,
      [d.channels, d.height, d.width],
      plan,
      needsSoftmax(model, true),
      ({ start, scores, argmax }) => {
        probability.set(scores, start)
        for (let i = 0; i < scores.length; i++) correct[start + i] = argmax[i] === d.y[Math.floor((start + i) / k)] ? 1 : 0
      },
      o,
      cost,
    )
    return this.shard(o.firstSample, d.n, { probability: { width: k, values: probability }, correct: { width: k, values: correct } }, cost)
  }

  protected finish(m: Merged): RoadResult {
    const probability = column(m, 'probability').values
    const correct = column(m, 'correct').values
    const k = this.params.percentages.length
    const n = m.samples
    const x = Float64Array.from(this.params.percentages)
    const perStep = (v: Float64Array) =>
      Float64Array.from({ length: k }, (_, j) => {
        let sum = 0
        for (let s = 0; s < n; s++) sum += v[s * k + j]!
        return sum / n
      })
    const scores = Float64Array.from({ length: n }, (_, s) => probability.subarray(s * k, (s + 1) * k).reduce((a, b) => a + b, 0) / k)
    return this.result(m, scores, {
      accuracy: perStep(correct),
      probability: perStep(probability),
      curves: { correct: { x, values: correct, points: k }, probability: { x, values: probability, points: k } },
    })
  }
}
