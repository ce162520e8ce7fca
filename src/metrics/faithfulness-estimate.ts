import { needsSoftmax, phase, run } from '../engine.js'
import type { Model } from '../models/model.js'
import { computeBaselines, fillGroupRows, type GroupSpec, groupSums, rankFeatures } from '../native.js'
import { seed, z } from '../options.js'
import { type Checked, featureCount, layoutOf } from '../validate.js'
import { type CorrelationResult, checkSnapshotBaseline, cleanScores, correlate, perturbedRows, undefinedScores } from './correlation.js'
import { countsByStep } from './curve.js'
import { type CheckedMapOptions, column, type Merged, Metric, newCost, type Shard } from './protocol.js'
import { checkQuantusSteps, curveBaseline, curveBaselineSpec } from './quantus.js'

const schema = z
  .strictObject({
    /** Features per group (default 1: every feature on its own, the paper's estimate). */
    featuresInStep: z
      .int()
      .min(1)
      .max(2 ** 31)
      .default(1),
    /** What a group's features become (default 0; with `compat: 'quantus'` `'black'`, the sample minimum; a
     * `{ uniform }` baseline draws one value per entry, keyed by `seed` and the global sample). */
    baseline: curveBaseline.optional(),
    /** Rank and sum |a| instead of a (default false). */
    abs: z.boolean().default(false),
    /** Seed of a `{ uniform }` baseline (default 0). */
    seed: seed.default(0),
    /**
     * `'quantus'` reproduces quantus.FaithfulnessEstimate 0.6: logits, baseline `'black'`,
     * `(H·W) % featuresInStep == 0`.
     */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine(checkSnapshotBaseline)
  .transform((o) => ({ ...o, baseline: o.baseline ?? (o.compat ? ('black' as const) : 0) }))

export type FaithfulnessEstimateOptions = z.input<typeof schema>
export type FaithfulnessEstimateParams = z.output<typeof schema>

/**
 * Faithfulness estimate (Alvarez-Melis & Jaakkola, NeurIPS 2018, the "faithfulness" of
 * self-explaining neural networks): each feature (or group of `featuresInStep` features, taken in
 * order of decreasing attribution) is set to the baseline on its own — the others stay at the input
 * — and the score is Pearson's r between the group's attribution sum and the drop of the label's
 * probability f_y(x) − f_y(x̃). Higher is better. Entries are the features (a `[N, 1, H, W]`
 * attribution is broadcast over channels).
 *
 * Deviations from quantus.FaithfulnessEstimate 0.6 (reproduced by `compat: 'quantus'`): Quantus
 * scores logits (the paper: probability drops); its default baseline `'black'` is the sample
 * minimum (ours: 0); it asserts `(H·W) % featuresInStep == 0`; ties in the ranking are broken by
 * numpy's unstable sort (ours: stable; this changes groups only when a group boundary splits
 * tied features). A constant series gives NaN with its reason in `undefinedScores`.
 *
 * Cost: 1 + ⌈F / featuresInStep⌉ rows per sample.
 */
export class FaithfulnessEstimate extends Metric<FaithfulnessEstimateParams, CorrelationResult> {
  static readonly meta = {
    id: 'faithfulness-estimate',
    name: 'FaithfulnessEstimate',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '1 + ⌈F / featuresInStep⌉ rows (F = C·H·W)',
    reference: 'Alvarez-Melis & Jaakkola, NeurIPS 2018; quantus.FaithfulnessEstimate 0.6',
  } as const

  constructor(options?: FaithfulnessEstimateOptions) {
    super(schema, options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { featuresInStep, baseline, abs, seed, compat } = this.params
    const layout = layoutOf(d, 'entry')
    const features = featureCount(layout)
    const groups = countsByStep(features, featuresInStep).length - 1
    if (compat) checkQuantusSteps(d.height * d.width, featuresInStep)
    const shape = [d.n, d.channels, d.height, d.width]
    const [order, baselines] = await Promise.all([
      rankFeatures(d.a, d.n, layout, abs, o.signal),
      computeBaselines(d.x, shape, curveBaselineSpec(baseline, seed), o.firstSample, o.signal),
    ])
    const spec: GroupSpec = { samples: d.n, layout, groupSize: featuresInStep, ascending: false, firstSample: o.firstSample }
    const sums = await groupSums(d.a, order, spec, abs, o.signal)
    const softmax = needsSoftmax(model, !compat)
    const total = d.n * (1 + groups)
    const cost = newCost()
    const y0 = await cleanScores(model, d, softmax, phase(o, 0, total), cost)
    const sampleOf = (p: number) => Math.floor(p / groups)
    const plan = perturbedRows(d, d.n * groups, sampleOf, (p0, p1, out, signal) => {
      const triples = new Uint32Array(3 * (p1 - p0))
      for (let p = p0; p < p1; p++) triples.set([sampleOf(p), p % groups, 0], 3 * (p - p0))
      return fillGroupRows(d.x, baselines, order, spec, { kind: 'baseline' }, triples, out, signal)
    })
    const drops = new Float64Array(d.n * groups)
    await run(
      model,
      [d.channels, d.height, d.width],
      plan,
      softmax,
      ({ start, scores }) => {
        for (let i = 0; i < scores.length; i++) drops[start + i] = y0[sampleOf(start + i)]! - scores[i]!
      },
      phase(o, d.n, total),
      cost,
    )
    const { score, reason } = await correlate(sums, drops, groups, 'pearson', o.signal)
    return this.shard(o.firstSample, d.n, { score: { width: 1, values: score }, reason: { width: 1, values: reason } }, cost)
  }

  protected finish(m: Merged): CorrelationResult {
    return this.result(m, column(m, 'score').values, {
      undefinedScores: undefinedScores(m, ['attribution sums', 'prediction drops', 'feature groups']),
    })
  }
}
