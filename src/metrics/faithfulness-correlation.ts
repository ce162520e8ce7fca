import { needsSoftmax, phase, run } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { computeBaselines, fillSubsetRows, subsetSums } from '../native.js'
import { seed, z } from '../options.js'
import { type Checked, layoutOf } from '../validate.js'
import { type CorrelationResult, checkSnapshotBaseline, cleanScores, correlate, perturbedRows, undefinedScores } from './correlation.js'
import { type CheckedMapOptions, column, type Merged, Metric, newCost, type Shard } from './protocol.js'
import { curveBaseline, curveBaselineSpec } from './quantus.js'

const schema = z
  .strictObject({
    /** Random subsets per sample (default 100). */
    nrRuns: z.int().min(2).max(100_000).default(100),
    /** Input entries per subset, 1 ≤ subsetSize < C·H·W (default 224). */
    subsetSize: z
      .int()
      .min(1)
      .max(2 ** 31)
      .default(224),
    /** What the subset's entries become (default 0; with `compat: 'quantus'` `'black'`, the sample minimum; a
     * `{ uniform }` baseline draws one value per entry, keyed by `seed` and the global sample). */
    baseline: curveBaseline.optional(),
    /** Seed of the subsets (default 0). */
    seed: seed.default(0),
    /**
     * `'quantus'` reproduces quantus.FaithfulnessCorrelation 0.6 (per-sample scores, i.e.
     * `return_aggregate=False`): logits, baseline `'black'`, `subsetSize < H·W`; the subsets are
     * our keyed draws, not numpy's (see the class comment).
     */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine(checkSnapshotBaseline)
  .transform((o) => ({ ...o, baseline: o.baseline ?? (o.compat ? ('black' as const) : 0) }))

export type FaithfulnessCorrelationOptions = z.input<typeof schema>
export type FaithfulnessCorrelationParams = z.output<typeof schema>

export interface FaithfulnessCorrelationResult extends CorrelationResult {
  /** Per sample and run `[N, nrRuns]`: the attribution summed over the subset, and the drop `f_y(x) − f_y(x̃)`. */
  runs: { attributionSums: Float64Array; predictionDrops: Float64Array; width: number }
}

/**
 * Faithfulness correlation (Bhatt, Weller & Moura, IJCAI 2020): per sample, `nrRuns` random
 * subsets S of `subsetSize` input entries are set to the baseline; the score is Pearson's r between
 * Σ_{i∈S} a_i and the drop of the label's score f_y(x) − f_y(x_S←baseline) over the runs. Higher
 * is better. A `[N, 1, H, W]` attribution is broadcast over channels (F = C·H·W entries).
 *
 * Subsets are `Rng::keyed(seed, global sample, Subset, run).subset(F, subsetSize)`: any sharding
 * gives the same numbers. The score is the model's declared output (probabilities, or logits for
 * a logit model declared so); the paper's f is the model's output.
 *
 * Deviations from quantus.FaithfulnessCorrelation 0.6 (all but the first reproduced by
 * `compat: 'quantus'`): Quantus draws subsets from numpy's global generator
 * (`np.random.choice`, batch-dependent; compat uses our keyed subsets, which is how the fixtures
 * hand Quantus its draws); it returns the mean over samples by default (we return per-sample
 * scores, `mean` holds the mean); it scores logits; its default baseline `'black'` is the sample
 * minimum (ours: 0); it asserts `subsetSize < H·W` (ours: `< C·H·W`). A constant series gives
 * NaN with its reason in `undefinedScores` (Quantus: NaN, silently).
 *
 * Cost: 1 + nrRuns rows per sample.
 */
export class FaithfulnessCorrelation extends Metric<FaithfulnessCorrelationParams, FaithfulnessCorrelationResult> {
  static readonly meta = {
    id: 'faithfulness-correlation',
    name: 'FaithfulnessCorrelation',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '1 + nrRuns rows',
    reference: 'Bhatt, Weller & Moura, IJCAI 2020; quantus.FaithfulnessCorrelation 0.6',
  } as const

  constructor(options?: FaithfulnessCorrelationOptions) {
    super(schema, options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { nrRuns, subsetSize, baseline, seed, compat } = this.params
    const layout = layoutOf(d, 'entry')
    const rowLen = d.channels * d.height * d.width
    if (subsetSize >= rowLen) {
      throw new XaiEvalError('INVALID_OPTION', 'subsetSize', `expected fewer than the C·H·W = ${rowLen} input entries, got ${subsetSize}`)
    }
    if (compat && subsetSize >= d.height * d.width) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'subsetSize',
        `Quantus requires subsetSize < H·W = ${d.height * d.width} (the spatial size), got ${subsetSize}`,
      )
    }
    const shape = [d.n, d.channels, d.height, d.width]
    const [baselines, sums] = await Promise.all([
      computeBaselines(d.x, shape, curveBaselineSpec(baseline, seed), o.firstSample, o.signal),
      subsetSums(d.a, d.n, layout, seed, o.firstSample, nrRuns, subsetSize, o.signal),
    ])
    const softmax = needsSoftmax(model, compat ? false : undefined)
    const total = d.n * (1 + nrRuns)
    const cost = newCost()
    const y0 = await cleanScores(model, d, softmax, phase(o, 0, total), cost)
    const sampleOf = (p: number) => Math.floor(p / nrRuns)
    const plan = perturbedRows(d, d.n * nrRuns, sampleOf, (p0, p1, out, signal) => {
      const pairs = new Uint32Array(2 * (p1 - p0))
      for (let p = p0; p < p1; p++) pairs.set([sampleOf(p), p % nrRuns], 2 * (p - p0))
      return fillSubsetRows(d.x, baselines, d.n, rowLen, seed, o.firstSample, subsetSize, pairs, out, signal)
    })
    const drops = new Float64Array(d.n * nrRuns)
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
    const { score, reason } = await correlate(sums, drops, nrRuns, 'pearson', o.signal)
    return this.shard(
      o.firstSample,
      d.n,
      {
        score: { width: 1, values: score },
        reason: { width: 1, values: reason },
        attributionSums: { width: nrRuns, values: sums },
        predictionDrops: { width: nrRuns, values: drops },
      },
      cost,
    )
  }

  protected finish(m: Merged): FaithfulnessCorrelationResult {
    return this.result(m, column(m, 'score').values, {
      undefinedScores: undefinedScores(m, ['attribution sums', 'prediction drops', 'runs']),
      runs: {
        attributionSums: column(m, 'attributionSums').values,
        predictionDrops: column(m, 'predictionDrops').values,
        width: this.params.nrRuns,
      },
    })
  }
}
