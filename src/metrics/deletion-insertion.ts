// Deletion and Insertion (Petsiuk et al., RISE, 2018) with autotimm's fields: the same curve read
// in the two directions, pixels in order of attribution summed over channels.
import { needsSoftmax, scoreCurves } from '../engine.js'
import type { Model } from '../models/model.js'
import { areas } from '../native.js'
import { seed, z } from '../options.js'
import { type Checked, featureCount, layoutOf } from '../validate.js'
import { baselineSchema, baselineSpec } from './baseline.js'
import { countsOfSteps, type CurveResult, fractions, INSERT } from './curve.js'
import { type CheckedMapOptions, column, type Merged, Metric, type MetricMeta, newCost, type Shard } from './protocol.js'

const schema = z.strictObject({
  /** Points after the first (default 50): step k covers round(k·P/steps) of the P pixels. */
  steps: z.int().min(1).max(1_000_000).default(50),
  /**
   * The substrate (default `'blur'`, a Gaussian blur with σ = 5 pixels, as autotimm recommends;
   * `{ blur: σ }` for another σ, 0 for zeros — autotimm's `'black'` — or any {@link Baseline}).
   */
  baseline: baselineSchema.default('blur'),
  /** Follow the model's predicted class on the clean input (default) or the label `y`. */
  target: z.enum(['label', 'predicted']).default('predicted'),
  /** Seed of a `{ uniform }` substrate (default 0). */
  seed: seed.default(0),
})

export type DeletionInsertionOptions = z.input<typeof schema>
export type DeletionInsertionParams = z.output<typeof schema>

export interface DeletionInsertionResult extends CurveResult {
  /** Per sample: area under the curve on x ∈ [0, 1] (also `scores`). */
  auc: Float64Array
  /** Per sample: score of the clean input. */
  originalScore: Float64Array
  /** Per sample: score of the substrate (everything removed). */
  baselineScore: Float64Array
}

export interface DeletionResult extends DeletionInsertionResult {
  /** Per sample: (original − last) / original, autotimm's `final_drop` (higher is better). */
  finalDrop: Float64Array
}

export interface InsertionResult extends DeletionInsertionResult {
  /** Per sample: (last − baseline) / original, autotimm's `final_rise` (higher is better). */
  finalRise: Float64Array
}

abstract class PixelGame<R extends DeletionInsertionResult> extends Metric<DeletionInsertionParams, R> {
  protected abstract readonly flags: number

  constructor(options?: DeletionInsertionOptions) {
    super(schema, options)
  }

  /** Scores the curve points k = 0…steps of every sample, `[N, steps + 1]`. */
  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const layout = layoutOf(d, 'pixel')
    const pixels = featureCount(layout)
    const counts = countsOfSteps(pixels, this.params.steps)
    const cost = newCost()
    const setup = {
      layout,
      baseline: baselineSpec(this.params.baseline, this.params.seed),
      abs: false,
      target: this.params.target,
      softmax: needsSoftmax(model),
      firstSample: o.firstSample,
    }
    const { values } = await scoreCurves(model, d, setup, [{ name: 'scores', counts, flags: this.flags }], o, cost)
    return this.shard(o.firstSample, d.n, { curve: { width: counts.length, values: values.scores! } }, cost, {
      x: fractions(counts, pixels),
    })
  }

  /** Per-sample AUC and the curve's clean and substrate ends, with the relative change between them. */
  protected summary(m: Merged) {
    const { width: points, values } = column(m, 'curve')
    const x = m.common.x as Float64Array
    const cleanAt = this.flags & INSERT ? points - 1 : 0
    const substrateAt = points - 1 - cleanAt
    const n = m.samples
    const originalScore = new Float64Array(n)
    const baselineScore = new Float64Array(n)
    const change = new Float64Array(n)
    for (let s = 0; s < n; s++) {
      originalScore[s] = values[s * points + cleanAt]!
      baselineScore[s] = values[s * points + substrateAt]!
      change[s] = (originalScore[s]! - baselineScore[s]!) / originalScore[s]!
    }
    const auc = areas(values, x, points)
    return { auc, originalScore, baselineScore, change, curves: { scores: { x, values, points } } }
  }
}

/**
 * Deletion: replace the most important pixels with the substrate, `steps` times, and follow the
 * target score. A faithful attribution makes it fall fast: lower AUC is better.
 */
export class Deletion extends PixelGame<DeletionResult> {
  static readonly meta: MetricMeta = {
    id: 'deletion',
    name: 'Deletion',
    higherIsBetter: false,
    needs: ['attributions'],
    version: 1,
    cost: 'steps + 1 rows',
    reference: 'Petsiuk, Das & Saenko, RISE, BMVC 2018; autotimm ExplanationMetrics.deletion',
  }
  protected readonly flags = 0

  protected finish(m: Merged): DeletionResult {
    const { auc, originalScore, baselineScore, change, curves } = this.summary(m)
    return this.result(m, auc, { auc, originalScore, baselineScore, finalDrop: change, curves })
  }
}

/**
 * Insertion: start from the substrate and put the most important pixels back, `steps` times. A
 * faithful attribution recovers the score fast: higher AUC is better.
 */
export class Insertion extends PixelGame<InsertionResult> {
  static readonly meta: MetricMeta = {
    id: 'insertion',
    name: 'Insertion',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: 'steps + 1 rows',
    reference: 'Petsiuk, Das & Saenko, RISE, BMVC 2018; autotimm ExplanationMetrics.insertion',
  }
  protected readonly flags = INSERT

  protected finish(m: Merged): InsertionResult {
    // Insertion's curve runs from the substrate (first point) to the clean input (last).
    const { auc, originalScore, baselineScore, change, curves } = this.summary(m)
    return this.result(m, auc, { auc, originalScore, baselineScore, finalRise: change, curves })
  }
}
