import { needsSoftmax, run, scoreCurves } from '../engine.js'
import type { Model } from '../models/model.js'
import { fillQuantusMonotonicityRows, type GroupSpec, rankFeatures } from '../native.js'
import { seed, z } from '../options.js'
import { type Checked, featureCount, layoutOf } from '../validate.js'
import { checkQuantusNames, type FixedBaseline, fixedBaseline, fixedBaselineSpec, perturbedRows } from './correlation.js'
import { countsByStep, FROM_END, INSERT } from './curve.js'
import { type CheckedMapOptions, column, type Merged, Metric, type MetricResult, newCost, type Shard } from './protocol.js'
import { checkQuantusSteps } from './quantus.js'

const quantusBaseline = z.union([
  z.number(),
  z.enum(['black', 'white', 'mean', 'uniform']),
  z
    .strictObject({ uniform: z.tuple([z.number(), z.number()]) })
    .refine((b) => Number.isFinite(b.uniform[0]) && b.uniform[0] < b.uniform[1], 'expected uniform: [low, high] with low < high'),
])

const schema = z
  .strictObject({
    /** Features inserted per step (default 1). */
    featuresInStep: z
      .int()
      .min(1)
      .max(2 ** 31)
      .default(1),
    /**
     * The input everything starts from (default 0). With `compat: 'quantus'`: a number,
     * `'black'` (default), `'white'`, `'mean'`, `'uniform'` or `{ uniform: [low, high] }`.
     */
    baseline: z.union([fixedBaseline, quantusBaseline]).optional(),
    /** Rank by |a| (default false, as the paper; true with `compat: 'quantus'`). */
    abs: z.boolean().optional(),
    /** Follow the label (default) or the class the model predicts for the clean input (the paper's choice). */
    target: z.enum(['label', 'predicted']).default('label'),
    /** Seed of Quantus's uniform draws (compat only; default 0). */
    seed: seed.default(0),
    /** `'quantus'` reproduces quantus.Monotonicity 0.6, bug included (see the class comment). */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine((o, ctx) => {
    checkQuantusNames(o, ctx)
    if (o.compat) {
      if (o.target !== 'label') ctx.addIssue({ code: 'custom', path: ['target'], message: "Quantus's Monotonicity follows the label" })
      if (!quantusBaseline.safeParse(o.baseline ?? 'black').success) {
        ctx.addIssue({
          code: 'custom',
          path: ['baseline'],
          message: "Quantus's Monotonicity takes a number, 'black', 'white', 'mean', 'uniform' or { uniform: [low, high] }",
        })
      }
    } else if (typeof o.baseline === 'object' && 'uniform' in o.baseline) {
      ctx.addIssue({ code: 'custom', path: ['baseline'], message: 'a uniform baseline is for compat: quantus only; use a fixed baseline' })
    }
  })
  .transform((o) => ({ ...o, baseline: o.baseline ?? (o.compat ? ('black' as const) : 0), abs: o.abs ?? o.compat === 'quantus' }))

export type MonotonicityOptions = z.input<typeof schema>
export type MonotonicityParams = z.output<typeof schema>

/**
 * Monotonicity (Arya et al. 2019, AI Explainability 360's `monotonicity_metric`): start from the
 * baseline and put the input's features back `featuresInStep` at a time in order of *increasing*
 * attribution, scoring the probability of the target class after each step. The score is 1 when
 * that sequence never decreases, else 0. Higher is better. Entries are the features (a
 * `[N, 1, H, W]` attribution is broadcast over channels). AIX360 follows the predicted class
 * (`target: 'predicted'`); the default follows the label, as every xai-eval curve metric.
 *
 * `compat: 'quantus'` reproduces quantus.Monotonicity 0.6, which never puts input features back:
 * it fills a copy with the baseline scalar and "perturbs" it group by group (ascending order of
 * |a|, cumulative) with the baseline of that copy. A fixed baseline therefore never changes the
 * input — all steps are the same constant image, so every score is 1 (True) whatever the model
 * and the attribution; that image is evaluated once per sample. With `'uniform'`, the copy starts
 * at one uniform scalar and each step writes a fresh scalar into its group; the draws are
 * `Rng::keyed(seed, n, Perturbation, 0)` for the fill and `…, k + 1)` for step k (numpy's global
 * generator in Quantus; the fixtures hand Quantus these draws). Quantus's `'black'`/`'white'`/
 * `'mean'` are the sample's minimum/maximum/mean; it asserts `(H·W) % featuresInStep == 0`.
 *
 * Cost: ⌈F / featuresInStep⌉ rows per sample (+1 with a predicted target); compat with a fixed
 * baseline: 1 row.
 */
export class Monotonicity extends Metric<MonotonicityParams, MetricResult> {
  static readonly meta = {
    id: 'monotonicity',
    name: 'Monotonicity',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '⌈F / featuresInStep⌉ rows (F = C·H·W)',
    reference: 'Arya et al. 2019 (AIX360); quantus.Monotonicity 0.6',
  } as const

  constructor(options?: MonotonicityOptions) {
    super(schema, options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { featuresInStep, baseline, abs, target, seed, compat } = this.params
    const layout = layoutOf(d, 'entry')
    const features = featureCount(layout)
    const counts = countsByStep(features, featuresInStep).subarray(1)
    const steps = counts.length
    const cost = newCost()
    const softmax = needsSoftmax(model, true)
    const monotone = (curve: ArrayLike<number>, at: number, length: number) => {
      for (let k = at + 1; k < at + length; k++) if (!(curve[k]! >= curve[k - 1]!)) return 0
      return 1
    }
    const score = new Float64Array(d.n)
    if (!compat) {
      const { values } = await scoreCurves(
        model,
        d,
        { layout, baseline: fixedBaselineSpec(baseline as FixedBaseline), abs, target, softmax, firstSample: o.firstSample },
        [{ name: 'insertion', counts, flags: INSERT | FROM_END }],
        o,
        cost,
      )
      for (let s = 0; s < d.n; s++) score[s] = monotone(values.insertion!, s * steps, steps)
      return this.shard(o.firstSample, d.n, { score: { width: 1, values: score } }, cost)
    }

    checkQuantusSteps(d.height * d.width, featuresInStep)
    const rowLen = d.channels * d.height * d.width
    const rowShape = [d.channels, d.height, d.width]
    if (baseline === 'uniform' || (typeof baseline === 'object' && 'uniform' in baseline)) {
      const [low, high] = baseline === 'uniform' ? [0, 1] : baseline.uniform
      const order = await rankFeatures(d.a, d.n, layout, abs, o.signal)
      const spec: GroupSpec = { samples: d.n, layout, groupSize: featuresInStep, ascending: true, firstSample: o.firstSample }
      const sampleOf = (p: number) => Math.floor(p / steps)
      const plan = perturbedRows(d, d.n * steps, sampleOf, (p0, p1, out, signal) => {
        const pairs = new Uint32Array(2 * (p1 - p0))
        for (let p = p0; p < p1; p++) pairs.set([sampleOf(p), p % steps], 2 * (p - p0))
        return fillQuantusMonotonicityRows(order, spec, low, high, seed, pairs, out, signal)
      })
      const curves = new Float64Array(d.n * steps)
      await run(model, rowShape, plan, softmax, ({ start, scores }) => curves.set(scores, start), o, cost)
      for (let s = 0; s < d.n; s++) score[s] = monotone(curves, s * steps, steps)
      return this.shard(o.firstSample, d.n, { score: { width: 1, values: score } }, cost)
    }

    // A fixed baseline: every step is the constant image full(b(x_n)); one row per sample.
    const value = (s: number): number => {
      const x = d.x.subarray(s * rowLen, (s + 1) * rowLen)
      if (typeof baseline === 'number') return baseline
      if (baseline === 'black') return x.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY)
      if (baseline === 'white') return x.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY)
      return x.reduce((a, b) => a + b, 0) / rowLen
    }
    const plan = perturbedRows(
      d,
      d.n,
      (p) => p,
      async (p0, p1, out) => {
        for (let s = p0; s < p1; s++) out.fill(value(s), (s - p0) * rowLen, (s - p0 + 1) * rowLen)
      },
    )
    const constant = new Float64Array(d.n)
    await run(model, rowShape, plan, softmax, ({ start, scores }) => constant.set(scores, start), o, cost)
    // Quantus compares `steps` bit-identical predictions: monotone unless the prediction is NaN.
    for (let s = 0; s < d.n; s++) score[s] = steps < 2 || !Number.isNaN(constant[s]!) ? 1 : 0
    return this.shard(o.firstSample, d.n, { score: { width: 1, values: score } }, cost)
  }

  protected finish(m: Merged): MetricResult {
    return this.result(m, column(m, 'score').values, {})
  }
}
