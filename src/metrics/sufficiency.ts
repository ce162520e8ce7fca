import { type Plan, run } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { sufficiencyScores } from '../native.js'
import { z } from '../options.js'
import { type Checked, rowShape } from '../validate.js'
import { type CheckedMapOptions, column, type Merged, Metric, type MetricResult, newCost, type Shard } from './protocol.js'

/** Default bound on the attribution values a shard or a reduce holds (`N · F`): 2²⁶ = 512 MiB as float64. */
export const SUFFICIENCY_MAX_VALUES = 2 ** 26

const schema = z
  .strictObject({
    /** Largest normalised distance (distance / largest distance, in [0, 1]) at which two explanations are neighbours (default 0.6). */
    threshold: z.number().min(0).max(1e6).default(0.6),
    /** Compare |a| (default true, as Quantus). */
    abs: z.boolean().default(true),
    /**
     * Divide attributions by their max |a| before comparing (default true): each sample by its own
     * maximum; with `compat: 'quantus'` the whole data set by one maximum, as Quantus does.
     */
    normalise: z.boolean().default(true),
    /** Quantus's `batch_size` (default 64): the groups of consecutive samples compared; only with `compat: 'quantus'`. */
    batchSize: z.int().min(1).max(1_000_000).optional(),
    /**
     * Most attribution values (samples × attribution entries) a shard or the reduce may hold
     * (default 2²⁶; at most 2²⁸ = 2 GiB as float64). More is a typed error: every shard carries its
     * samples' attributions to the reduce, which compares all pairs (`N²·F` work).
     */
    maxValues: z
      .int()
      .min(1)
      .max(2 ** 28)
      .default(SUFFICIENCY_MAX_VALUES),
    /** `'quantus'` reproduces quantus.Sufficiency 0.6 (see the class comment). */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.batchSize !== undefined && !o.compat) {
      ctx.addIssue({
        code: 'custom',
        path: ['batchSize'],
        message: "only with compat: 'quantus' (the paper compares every pair of the data set)",
      })
    }
  })
  .transform((o) => (o.compat ? { ...o, batchSize: o.batchSize ?? 64 } : o))

export type SufficiencyOptions = z.input<typeof schema>
export type SufficiencyParams = z.output<typeof schema>

export interface SufficiencyResult extends MetricResult {
  /** Per sample: number of neighbours (other samples within `threshold`). */
  neighbours: Float64Array
  /** Per sample: the model's predicted class on the clean input. */
  predicted: Int32Array
}

/**
 * Sufficiency (Dasgupta, Frost & Moshkovitz, ICML 2022, as operationalised by Quantus): an
 * explanation is sufficient when the samples it "covers" get the same prediction. Two samples
 * cover each other when their explanations are close — standardised Euclidean distance, divided
 * by the largest distance among the samples compared, at most `threshold` — and a sample's score
 * is the share of its neighbours (itself excluded) that the model assigns its own predicted
 * class (higher is better). One clean row per sample gives the predicted class.
 *
 * Not a per-sample metric: a score depends on every other sample. Each shard carries its samples'
 * attributions (`N × F` float64 values, `F` = the attribution's entries — mind the memory, bounded
 * by `maxValues`) and predicted classes, and the reduce compares every pair of the **whole** data
 * set in the Rust core (`N²·F`, synchronous, no `N × N` matrix kept), so the result never depends
 * on how the samples were batched or sharded. By default (the data-set definition):
 * - attributions are normalised per sample by their max |a| (then `abs`), the feature variances
 *   `V_f` (ddof 1) are taken over all N samples, and constant features (V_f = 0) are left out;
 * - a sample without neighbours has no defined sufficiency: its score is NaN (`neighbours` is 0).
 *
 * `compat: 'quantus'` reproduces quantus.Sufficiency 0.6 (quantus-semantics §1.8): one
 * normalise-by-max over the whole data set in float32, then groups of `batchSize` (64)
 * consecutive samples of the data set (counted from the reduce's first sample, so still
 * shard-independent), each compared on its own with SciPy's seuclidean variance
 * `var(vstack([A, A]), ddof=1)` — a constant feature in a group makes all its distances NaN and
 * every score 0 —, the group's distances divided by their max, and 0 for a sample without
 * neighbours. Deviations of the default from Quantus: whole data set instead of batches,
 * per-sample normalisation, constant features ignored, NaN instead of 0 without neighbours.
 *
 * Cost: 1 row per sample; the reduce does `N²·F` flops on all cores (N = 1000, F = 784: ~0.4 s on
 * 2 cores; it grows with N²) and blocks the JS thread while it runs.
 */
export class Sufficiency extends Metric<SufficiencyParams, SufficiencyResult> {
  static readonly meta = {
    id: 'sufficiency',
    name: 'Sufficiency',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '1 row (the prediction); the reduce compares all pairs, N²·F',
    reference: 'Dasgupta, Frost & Moshkovitz, ICML 2022; quantus.Sufficiency 0.6',
  } as const

  constructor(options?: SufficiencyOptions) {
    super(schema, options)
  }

  private checkSize(samples: number, features: number, what: string): void {
    if (samples * features > this.params.maxValues) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'maxValues',
        `${what} would hold ${samples} × ${features} = ${samples * features} attribution values, more than maxValues = ${this.params.maxValues}; Sufficiency compares every pair of samples (N²·F): raise maxValues (≤ 2²⁸) or evaluate fewer samples`,
      )
    }
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const features = d.attrChannels * d.height * d.width
    this.checkSize(d.n, features, 'this shard')
    const bad = d.a.findIndex((v) => !Number.isFinite(v))
    if (bad >= 0) throw new XaiEvalError('NON_FINITE', 'a', `contains a NaN or infinite value at flat index ${bad}`)
    const rowLen = d.channels * d.height * d.width
    const plan: Plan = {
      rows: d.n,
      build: async (start, end, out, targets) => {
        out.set(d.x.subarray(start * rowLen, end * rowLen))
        targets.fill(-1)
      },
    }
    const predicted = new Float64Array(d.n)
    const cost = newCost()
    await run(model, rowShape(d), plan, false, ({ start, argmax }) => predicted.set(argmax, start), o, cost)
    return this.shard(
      o.firstSample,
      d.n,
      { attribution: { width: features, values: Float64Array.from(d.a) }, predicted: { width: 1, values: predicted } },
      cost,
      { aShape: [d.attrChannels, d.height, d.width] },
    )
  }

  protected finish(m: Merged): SufficiencyResult {
    const { width: features, values } = column(m, 'attribution')
    this.checkSize(m.samples, features, 'the data set')
    const predicted = Int32Array.from(column(m, 'predicted').values)
    const { threshold, abs, normalise, compat } = this.params
    const batchSize = compat ? (this.params.batchSize ?? 64) : 0
    const r = sufficiencyScores(values, m.samples, features, predicted, threshold, abs, normalise, batchSize)
    return this.result(m, r.scores, { neighbours: r.neighbours, predicted })
  }
}
