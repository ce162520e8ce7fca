import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { areas } from '../native.js'
import { z } from '../options.js'
import { RowCache } from '../row-cache.js'
import { type Checked, datasetOf } from '../validate.js'
import type { Curves } from './curve.js'
import { type InverseMethod, invert } from './inverse.js'
import {
  type CheckedMapOptions,
  metricOption,
  type Merged,
  Metric,
  type MetricMeta,
  type MetricResult,
  newCost,
  type Shard,
} from './protocol.js'

const schema = z
  .strictObject({
    /** The quality measure Ψ: any metric of the registry, or its `{ id, params }`. */
    metric: metricOption,
    /** How the inverse explanation is built (default `'sign-flip'`, Quantus's). */
    inverse: z.enum(['sign-flip', 'value-swap', 'ranking']).default('sign-flip'),
    /**
     * Report QGE so that higher is better whatever Ψ's direction (default false: QGE inherits Ψ's
     * direction, so a lower-is-better Ψ gives a good explanation a negative QGE).
     */
    orient: z.boolean().default(false),
    /**
     * `'quantus'` reproduces Quantus's `InverseEstimation`: for a curve-valued Ψ (its curve, e.g. with
     * `PixelFlipping({ compat: 'quantus' })`) the per-sample mean (or, with `aggregate: 'auc'`,
     * `trapz(dx=1)`) of the curve of differences; a scalar Ψ is subtracted as is.
     */
    compat: z.enum(['quantus']).optional(),
    /** With `compat: 'quantus'`: Quantus's `return_mean_per_sample` (`'mean'`, default) or `return_auc_per_sample` (`'auc'`). */
    aggregate: z.enum(['mean', 'auc']).optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.metric.params as { abs?: unknown }).abs === true) {
      ctx.addIssue({
        code: 'custom',
        path: ['metric'],
        message:
          "the wrapped metric ranks |a| (abs: true), which makes an explanation and its sign-flipped inverse the same: set abs: false (for sensitivity maps, pass |a| as the explanation and use inverse: 'value-swap')",
      })
    }
    if (o.aggregate && !o.compat) ctx.addIssue({ code: 'custom', path: ['aggregate'], message: "only with compat: 'quantus'" })
  })
  .transform((o) => ({ ...o, aggregate: o.compat ? (o.aggregate ?? ('mean' as const)) : undefined }))

export type QualityGapEstimatorOptions = z.input<typeof schema>
export type QualityGapEstimatorParams = z.output<typeof schema>

export interface QualityGapResult extends MetricResult {
  /** Ψ(e) per sample. */
  original: Float64Array
  /** Ψ(e_inv) per sample. */
  inverse: Float64Array
  /** The wrapped metric's own results on e and on e_inv. */
  results: { original: MetricResult; inverse: MetricResult }
}

/**
 * The Quality Gap Estimator (Eiras-Franco, Hedström & Höhne, AAAI 2025): how much better an
 * explanation e scores than its inverse e_inv, QGE = Ψ(e) − Ψ(e_inv) per sample — one more
 * evaluation of Ψ instead of the K random explanations of the usual random baseline.
 *
 * Rows the two evaluations share are evaluated once (an engine-wide row cache keyed by content):
 * with pixel flipping and the sign-flip inverse on tie-free maps, the inverse's MoRF curve is the
 * explanation's LeRF curve, so QGE costs exactly SRG's rows, and QGE = −SRG.
 * Shards carry both evaluations' shards, reduced by Ψ's own reduce (which may need the whole data
 * set, as soundness's does).
 */
export class QualityGapEstimator extends Metric<QualityGapEstimatorParams, QualityGapResult> {
  static readonly meta: MetricMeta = {
    id: 'qge',
    name: 'QualityGapEstimator',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: "2 × Ψ's rows, less the rows both evaluations share",
    reference: 'Eiras-Franco, Hedström & Höhne, AAAI 2025; Quantus branch xai-inverse-estimation (InverseEstimation)',
  }

  constructor(options: QualityGapEstimatorOptions) {
    super(schema, options)
  }

  /** Ψ's direction, unless `orient` makes it higher-is-better. */
  override get higherIsBetter(): boolean {
    return this.params.orient || this.params.metric.higherIsBetter
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const rows = o.rows ?? new RowCache()
    const psi = this.params.metric
    const original = await psi.map(model, datasetOf(d), { ...o, rows })
    const inv = await psi.map(model, datasetOf(d, invert(d.a, d.n, this.params.inverse as InverseMethod)), { ...o, rows })
    const cost = newCost()
    cost.forwardPasses = original.forwardPasses + inv.forwardPasses
    cost.batches = original.batches + inv.batches
    return this.shard(o.firstSample, d.n, {}, cost, {}, undefined, { original, inverse: inv })
  }

  protected finish(m: Merged): QualityGapResult {
    const psi = this.params.metric
    const original = psi.reduce(m.parts.original ?? [])
    const inverse = psi.reduce(m.parts.inverse ?? [])
    let scores: Float64Array
    const curves = (r: MetricResult) => Object.values((r as { curves?: Record<string, Curves> }).curves ?? {})
    if (this.params.compat && curves(original).length === 1) {
      const [a] = curves(original) as [Curves]
      const [b] = curves(inverse) as [Curves]
      const diff = a.values.map((v, i) => v - b.values[i]!)
      scores =
        this.params.aggregate === 'auc'
          ? areas(diff, new Float64Array(), a.points)
          : Float64Array.from(
              { length: m.samples },
              (_, s) => diff.subarray(s * a.points, (s + 1) * a.points).reduce((p, q) => p + q, 0) / a.points,
            )
    } else {
      if (this.params.compat && curves(original).length > 1) {
        throw new XaiEvalError(
          'INVALID_OPTION',
          'metric',
          `Quantus's InverseEstimation needs a single curve or a scalar; '${psi.meta.id}' has several curves`,
        )
      }
      scores = original.scores.map((v, i) => v - inverse.scores[i]!)
    }
    if (this.params.orient && !psi.higherIsBetter) scores = scores.map((v) => -v)
    return this.result(m, scores, { original: original.scores, inverse: inverse.scores, results: { original, inverse } })
  }
}
