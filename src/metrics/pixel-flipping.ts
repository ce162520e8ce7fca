import { needsSoftmax, scoreCurves } from '../engine.js'
import type { Model } from '../models/model.js'
import { areas } from '../native.js'
import { seed, z } from '../options.js'
import { type Checked, featureCount, layoutOf } from '../validate.js'
import { countsByStep, type CurveResult, FROM_END, fractions } from './curve.js'
import { type CheckedMapOptions, column, type Merged, Metric, newCost, type Shard } from './protocol.js'
import { checkQuantusBaseline, checkQuantusSteps, curveBaseline, curveBaselineSpec } from './quantus.js'

const schema = z
  .strictObject({
    /** Most relevant features first (default) or least relevant first. */
    order: z.enum(['morf', 'lerf']).default('morf'),
    /** Features removed per step (default 1). */
    featuresInStep: z
      .int()
      .min(1)
      .max(2 ** 31)
      .default(1),
    /** What removed features become (default 0; with `compat: 'quantus'` Quantus's `'black'`, the sample minimum). */
    baseline: curveBaseline.optional(),
    /** Rank by |a| instead of a (default false). */
    abs: z.boolean().default(false),
    /** Seed of a `{ uniform }` baseline (default 0). */
    seed: seed.default(0),
    /**
     * `'quantus'` reproduces quantus.PixelFlipping 0.6: softmax scores, the curve without the
     * unperturbed point, AUC = trapz(curve, dx=1) in steps, `(H·W) % featuresInStep == 0`.
     */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine(checkQuantusBaseline)
  .transform((o) => ({ ...o, baseline: o.baseline ?? (o.compat ? ('black' as const) : 0) }))

export type PixelFlippingOptions = z.input<typeof schema>
export type PixelFlippingParams = z.output<typeof schema>

/**
 * Pixel flipping (Bach et al. 2015): remove features in order of attribution, `featuresInStep`
 * at a time, and follow the model's probability of the label. Per sample, the score is the area
 * under that curve on x = fraction removed ∈ [0, 1], the unperturbed input included. MoRF: lower is
 * better, as {@link PixelFlipping.meta} says; with `order: 'lerf'` higher is better (the result's
 * `higherIsBetter` says which).
 *
 * An `[N, 1, H, W]` attribution is broadcast over channels as in Quantus, so each input entry
 * is a feature.
 */
export class PixelFlipping extends Metric<PixelFlippingParams, CurveResult> {
  static readonly meta = {
    id: 'pixel-flipping',
    name: 'PixelFlipping',
    higherIsBetter: false,
    needs: ['attributions'],
    version: 1,
    cost: '⌈F / featuresInStep⌉ + 1 rows (F = C·H·W)',
    reference: 'Bach et al. 2015, PLOS ONE; quantus.PixelFlipping 0.6',
  } as const

  constructor(options?: PixelFlippingOptions) {
    super(schema, options)
  }

  /** LeRF curves should stay high: higher is better. */
  override get higherIsBetter(): boolean {
    return this.params.order === 'lerf'
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { order, featuresInStep, baseline, abs, seed, compat } = this.params
    const layout = layoutOf(d, 'entry')
    const features = featureCount(layout)
    const all = countsByStep(features, featuresInStep)
    if (compat) checkQuantusSteps(d.height * d.width, featuresInStep)
    const counts = compat ? all.subarray(1) : all
    const cost = newCost()
    const { values } = await scoreCurves(
      model,
      d,
      {
        layout,
        baseline: curveBaselineSpec(baseline, seed),
        abs,
        target: 'label',
        softmax: needsSoftmax(model, compat ? true : undefined),
        firstSample: o.firstSample,
      },
      [{ name: order, counts, flags: order === 'lerf' ? FROM_END : 0 }],
      o,
      cost,
    )
    const x = compat ? Float64Array.from(counts, (_, k) => k) : fractions(counts, features)
    return this.shard(o.firstSample, d.n, { curve: { width: counts.length, values: values[order]! } }, cost, { x })
  }

  protected finish(m: Merged): CurveResult {
    const { width: points, values } = column(m, 'curve')
    const x = m.common.x as Float64Array
    const scores = areas(values, this.params.compat ? new Float64Array() : x, points)
    return this.result(m, scores, {
      curves: { [this.params.order]: { x, values, points } },
    })
  }
}
