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
    /** Features removed per step (default 1). */
    featuresInStep: z
      .int()
      .min(1)
      .max(2 ** 31)
      .default(1),
    /**
     * What removed features become (default 0: for inputs normalised to zero channel mean this is the
     * paper's channel-wise data-set mean imputer; pass `'channelMean'` or a constant otherwise).
     */
    baseline: curveBaseline.default(0),
    /**
     * Rank by |a| (default false). Keep `false` where the sign of the attribution is evidence for or
     * against the class (LRP, Shapley values, integrated gradients); use `true` for sensitivity maps
     * whose sign is a direction in colour space (raw gradients). Rankings are sensitive to this choice,
     * unlike to the baseline and step size.
     */
    abs: z.boolean().default(false),
    /** Seed of a `{ uniform }` baseline (default 0). */
    seed: seed.default(0),
    /** `'quantus'` reproduces the Quantus PR #374 numbers: softmax, no unperturbed point, mean of LIF − MIF. */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine(checkQuantusBaseline)

export type SymmetricRelevanceGainOptions = z.input<typeof schema>
export type SymmetricRelevanceGainParams = z.output<typeof schema>

/**
 * Symmetric Relevance Gain (Blücher et al., TMLR 2024): the area between the pixel-flipping curves
 * of the least (LIF) and most (MIF) influential features first, SRG = AUC(LIF) − AUC(MIF) on
 * x ∈ [0, 1]. Higher is better; a random ranking scores about 0, whatever the occlusion strategy.
 *
 * One stable ordering serves both curves (LIF is its exact reverse) and one baseline snapshot both
 * imputations. The curves share their first point (the unperturbed input) and their last (everything
 * imputed), which the engine evaluates once. Cost per sample: 2K rows for K steps.
 */
export class SymmetricRelevanceGain extends Metric<SymmetricRelevanceGainParams, CurveResult> {
  static readonly meta = {
    id: 'srg',
    name: 'SymmetricRelevanceGain',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '2K rows for K = ⌈F / featuresInStep⌉ steps (F = C·H·W)',
    reference: 'Blücher, Vielhaben & Strodthoff, TMLR 2024; Quantus PR #374',
  } as const

  constructor(options?: SymmetricRelevanceGainOptions) {
    super(schema, options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { featuresInStep, baseline, abs, seed, compat } = this.params
    const layout = layoutOf(d, 'entry')
    const features = featureCount(layout)
    const all = countsByStep(features, featuresInStep)
    if (compat) checkQuantusSteps(d.height * d.width, featuresInStep)
    // Quantus's curves leave out the unperturbed point.
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
      [
        { name: 'mif', counts, flags: 0 },
        { name: 'lif', counts, flags: FROM_END },
      ],
      o,
      cost,
    )
    const points = counts.length
    const x = compat ? Float64Array.from(counts, (_, k) => k + 1) : fractions(counts, features)
    return this.shard(
      o.firstSample,
      d.n,
      { mif: { width: points, values: values.mif! }, lif: { width: points, values: values.lif! } },
      cost,
      { x },
    )
  }

  protected finish(m: Merged): CurveResult {
    const mif = column(m, 'mif').values
    const lif = column(m, 'lif').values
    const points = column(m, 'mif').width
    const x = m.common.x as Float64Array
    let scores: Float64Array
    if (this.params.compat) {
      scores = new Float64Array(m.samples)
      for (let s = 0; s < m.samples; s++) {
        let sum = 0
        for (let k = 0; k < points; k++) sum += lif[s * points + k]! - mif[s * points + k]!
        scores[s] = sum / points
      }
    } else {
      const a = areas(lif, x, points)
      const b = areas(mif, x, points)
      scores = a.map((v, i) => v - b[i]!)
    }
    return this.result(m, scores, { curves: { mif: { x, values: mif, points }, lif: { x, values: lif, points } } })
  }
}
