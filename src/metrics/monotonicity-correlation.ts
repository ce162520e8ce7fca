import { needsSoftmax, phase, run } from '../engine.js'
import type { Model } from '../models/model.js'
import { computeBaselines, fillGroupRows, type GroupFillSpec, type GroupSpec, groupSums, rankFeatures } from '../native.js'
import { seed, z } from '../options.js'
import { type Checked, featureCount, layoutOf } from '../validate.js'
import {
  type CorrelationResult,
  checkQuantusNames,
  cleanScores,
  correlate,
  type FixedBaseline,
  fixedBaseline,
  fixedBaselineSpec,
  perturbedRows,
  undefinedScores,
} from './correlation.js'
import { countsByStep } from './curve.js'
import { type CheckedMapOptions, column, type Merged, Metric, newCost, type Shard } from './protocol.js'
import { checkQuantusSteps } from './quantus.js'

/** Rows per chunk of the perturbed rows (bounds the memory of their scores: 32 MiB). */
const CHUNK_ROWS = 2 ** 22

const uniform = z
  .strictObject({ uniform: z.tuple([z.number(), z.number()]) })
  .refine((b) => Number.isFinite(b.uniform[0]) && b.uniform[0] < b.uniform[1], 'expected uniform: [low, high] with low < high')

const schema = z
  .strictObject({
    /** Features per group (default 1). */
    featuresInStep: z
      .int()
      .min(1)
      .max(2 ** 31)
      .default(1),
    /** Perturbations per group with a random baseline (default 100; deterministic baselines need one). */
    nrSamples: z.int().min(1).max(100_000).default(100),
    /**
     * What a group's features become (default `{ uniform: [0, 1] }`: **one** value per sample,
     * group and repetition drawn from U(low, high), written into every feature of the group, as
     * Quantus does), or a fixed baseline; with `compat: 'quantus'` also `'uniform'` (= [0, 1]),
     * `'black'`, `'white'`.
     */
    baseline: z.union([fixedBaseline, uniform, z.literal('uniform')]).optional(),
    /** Rank and sum |a| (default true, as the paper and Quantus). */
    abs: z.boolean().default(true),
    /** Seed of the uniform draws (default 0). */
    seed: seed.default(0),
    /** `'quantus'` reproduces quantus.MonotonicityCorrelation 0.6: `(H·W) % featuresInStep == 0`, Quantus's baseline names. */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine(checkQuantusNames)
  .transform((o) => ({ ...o, baseline: o.baseline ?? { uniform: [0, 1] as [number, number] } }))

export type MonotonicityCorrelationOptions = z.input<typeof schema>
export type MonotonicityCorrelationParams = z.output<typeof schema>

/**
 * Monotonicity correlation (Nguyen & Martínez 2020, "On quantitative aspects of model
 * interpretability"): features are grouped `featuresInStep` at a time in order of *increasing*
 * attribution; each group alone (non-cumulative, the rest at the input) is replaced `nrSamples`
 * times, and its effect is the mean squared change of the label's probability,
 * `v_k = mean_s (f_y(x̃_{k,s}) − f_y(x))²`. The score is Spearman's ρ (average ranks on ties)
 * between the groups' attribution sums and `v`. Higher is better.
 *
 * With the uniform baseline, the value of sample n, group k, repetition s is
 * `low + (high − low) · Rng::keyed(seed, n, Perturbation, k · nrSamples + s).uniform()` (n global).
 * A fixed baseline makes the repetitions identical: each group's row is evaluated once.
 *
 * Deviations from quantus.MonotonicityCorrelation 0.6: Quantus multiplies v by `1/|f_y(x)|²`
 * (by 1 when `|f_y(x)| < eps`); that positive per-sample factor cannot change ρ and is left out,
 * which also removes Quantus's crash (ValueError) when only some samples of a batch have
 * `|f_y(x)| < eps` — so there is no `eps` option. Quantus's uniform draws come from numpy's global
 * generator (one `np.random.uniform` per call and batch); compat and default use the keyed draws
 * above (how the fixtures hand Quantus its draws). Ties in the ranking: numpy's unstable sort in
 * Quantus, stable here (matters only when a group boundary splits tied features). A constant
 * series gives NaN with its reason in `undefinedScores`.
 *
 * Cost: 1 + ⌈F / featuresInStep⌉ · nrSamples rows per sample (· 1 with a fixed baseline).
 */
export class MonotonicityCorrelation extends Metric<MonotonicityCorrelationParams, CorrelationResult> {
  static readonly meta = {
    id: 'monotonicity-correlation',
    name: 'MonotonicityCorrelation',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '1 + ⌈F / featuresInStep⌉ · nrSamples rows (F = C·H·W; nrSamples = 1 for a fixed baseline)',
    reference: 'Nguyen & Martínez 2020; quantus.MonotonicityCorrelation 0.6',
  } as const

  constructor(options?: MonotonicityCorrelationOptions) {
    super(schema, options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { featuresInStep, nrSamples, baseline, abs, seed, compat } = this.params
    const layout = layoutOf(d, 'entry')
    const features = featureCount(layout)
    const groups = countsByStep(features, featuresInStep).length - 1
    if (compat) checkQuantusSteps(d.height * d.width, featuresInStep)
    const random = baseline === 'uniform' || (typeof baseline === 'object' && 'uniform' in baseline)
    const [low, high] = baseline === 'uniform' ? [0, 1] : typeof baseline === 'object' && 'uniform' in baseline ? baseline.uniform : [0, 0]
    const reps = random ? nrSamples : 1
    const shape = [d.n, d.channels, d.height, d.width]
    const [order, baselines] = await Promise.all([
      rankFeatures(d.a, d.n, layout, abs, o.signal),
      random
        ? Promise.resolve(new Float32Array(d.x.length))
        : computeBaselines(d.x, shape, fixedBaselineSpec(baseline as FixedBaseline), o.firstSample, o.signal),
    ])
    const spec: GroupSpec = { samples: d.n, layout, groupSize: featuresInStep, ascending: true, firstSample: o.firstSample }
    const fill: GroupFillSpec = random ? { kind: 'uniform', low, high, seed, reps } : { kind: 'baseline' }
    const sums = await groupSums(d.a, order, spec, abs, o.signal)
    const perSample = groups * reps
    const softmax = needsSoftmax(model, true)
    const total = d.n * (1 + perSample)
    const cost = newCost()
    const y0 = await cleanScores(model, d, softmax, phase(o, 0, total), cost)
    const sampleOf = (p: number) => Math.floor(p / perSample)
    // The rows run in chunks of at most CHUNK_ROWS (all samples and groups batched together);
    // each chunk's squared changes are then summed in row order, so memory stays bounded however
    // many repetitions, and every sum is taken in the same order whatever the batching or sharding.
    const effects = new Float64Array(d.n * groups)
    const rows = d.n * perSample
    for (let c0 = 0; c0 < rows; c0 += CHUNK_ROWS) {
      const c1 = Math.min(rows, c0 + CHUNK_ROWS)
      const plan = perturbedRows(
        d,
        c1 - c0,
        (p) => sampleOf(c0 + p),
        (p0, p1, out, signal) => {
          const triples = new Uint32Array(3 * (p1 - p0))
          for (let p = c0 + p0; p < c0 + p1; p++) {
            const q = p % perSample
            triples.set([sampleOf(p), Math.floor(q / reps), q % reps], 3 * (p - c0 - p0))
          }
          return fillGroupRows(d.x, baselines, order, spec, fill, triples, out, signal)
        },
      )
      const scored = new Float64Array(c1 - c0)
      await run(
        model,
        [d.channels, d.height, d.width],
        plan,
        softmax,
        ({ start, scores }) => scored.set(scores, start),
        phase(o, d.n + c0, total),
        cost,
      )
      for (let p = c0; p < c1; p++) {
        const s = sampleOf(p)
        const j = s * groups + Math.floor((p % perSample) / reps)
        effects[j] = effects[j]! + (scored[p - c0]! - y0[s]!) ** 2
      }
    }
    for (let i = 0; i < effects.length; i++) effects[i] = effects[i]! / reps
    const { score, reason } = await correlate(sums, effects, groups, 'spearman', o.signal)
    return this.shard(o.firstSample, d.n, { score: { width: 1, values: score }, reason: { width: 1, values: reason } }, cost)
  }

  protected finish(m: Merged): CorrelationResult {
    return this.result(m, column(m, 'score').values, {
      undefinedScores: undefinedScores(m, ['attribution sums', 'prediction changes', 'feature groups']),
    })
  }
}
