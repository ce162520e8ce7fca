import { needsSoftmax, type Plan, phase, run } from '../engine.js'
import type { Model } from '../models/model.js'
import { SocoCompletenessStats, socoCompletenessMasks, socoCompletenessThresholds, typedCall } from '../native.js'
import { type Checked, rowShape } from '../validate.js'
import { type CheckedMapOptions, column, type Merged, type MetricMeta, type MetricResult, newCost, type Shard } from './protocol.js'
import { StepwiseImputationMetric, stepRows } from './stepwise.js'

export interface CompletenessResult extends MetricResult {
  /** The paper's plot: the indicator's drop `clean − imputed` against the threshold t. */
  curve: { thresholds: Float64Array; clean: number; indicator: Float64Array; difference: Float64Array }
  /** `[N, 1 + thresholds]` per-sample values (clean first). */
  values: Float64Array
}

/**
 * Completeness (Li, Zhang et al., TMLR 2024, Algorithm 4): impute every pixel whose attribution
 * exceeds t, for t = 0.9 … 0.1, and measure how far the indicator falls from the clean one; a
 * complete attribution loses the prediction already at high t. Maps (attributions summed over
 * channels, non-negative) are divided by their maximum, so t is relative to each map's peak;
 * `compat: 'soco'` quantises them to uint8 first, as the authors' code.
 * `scores` holds each sample's drop `clean − imputed`, averaged over the thresholds.
 *
 * One clean forward pass per sample serves every threshold. Map + reduce as {@link Soundness}.
 */
export class Completeness extends StepwiseImputationMetric<CompletenessResult> {
  static readonly meta: MetricMeta = {
    id: 'completeness',
    name: 'Completeness',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '1 clean row + 1 row (and 1 imputation) per threshold: 10 (paper)',
    reference: 'Li, Zhang et al., TMLR 2024, Algorithm 4',
  }

  get thresholds(): Float64Array {
    return socoCompletenessThresholds(this.mode)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { indicator, imputation, noise, seed } = this.params
    const pixels = d.height * d.width
    const maps = this.maps(d, true)
    const steps = this.thresholds.length
    const width = steps + 1
    const values = new Float64Array(d.n * width)
    const record = (s: number, j: number, score: number, argmax: number) => {
      values[s * width + j] = indicator === 'score' ? score : Number(argmax === d.y[s])
    }
    const cost = newCost()
    const softmax = needsSoftmax(model, false)

    // The clean pass: rows with nothing perturbed.
    const rowLen = d.channels * pixels
    const clean: Plan = {
      rows: d.n,
      build: async (start, end, out, targets) => {
        out.set(d.x.subarray(start * rowLen, end * rowLen))
        targets.set(d.y.subarray(start, end))
      },
    }
    await run(
      model,
      rowShape(d),
      clean,
      softmax,
      ({ start, scores, argmax }) => {
        for (let i = 0; i < scores.length; i++) record(start + i, 0, scores[i]!, argmax[i]!)
      },
      phase(o, 0, d.n * width),
      cost,
    )

    const masks = async (step: number, s0: number, s1: number, signal?: AbortSignal) =>
      (await socoCompletenessMasks(maps.subarray(s0 * pixels, s1 * pixels), pixels, step, this.mode, signal)).masks
    // Noise keys 1000 + step keep completeness noise apart from soundness's on the same samples.
    const plan = stepRows(d, steps, masks, { fill: imputation, noise, seed, firstSample: o.firstSample }, (step) => 1000 + step)
    await run(
      model,
      rowShape(d),
      plan,
      softmax,
      ({ start, scores, argmax }) => {
        for (let i = 0; i < scores.length; i++) {
          const r = start + i
          record(r % d.n, 1 + Math.floor(r / d.n), scores[i]!, argmax[i]!)
        }
      },
      phase(o, d.n, d.n * width),
      cost,
    )

    const stats = typedCall(() => {
      const st = new SocoCompletenessStats(this.mode, indicator)
      const col = (j: number) => Float64Array.from({ length: d.n }, (_, s) => values[s * width + j]!)
      st.addClean(col(0))
      for (let k = 0; k < steps; k++) st.addValues(k, col(k + 1))
      return st.toBytes()
    })
    return this.shard(o.firstSample, d.n, { values: { width, values } }, cost, {}, { completeness: stats })
  }

  protected finish(m: Merged): CompletenessResult {
    const curve = typedCall(() => {
      const total = new SocoCompletenessStats(this.mode, this.params.indicator)
      for (const s of m.stats) total.merge(SocoCompletenessStats.fromBytes(s.completeness!))
      return total.curve()
    })
    const { width, values } = column(m, 'values')
    const scores = Float64Array.from({ length: m.samples }, (_, i) => {
      let drop = 0
      for (let j = 1; j < width; j++) drop += values[i * width]! - values[i * width + j]!
      return drop / (width - 1)
    })
    return this.result(m, scores, {
      curve: { thresholds: curve.thresholds, clean: curve.clean, indicator: curve.indicator, difference: curve.difference },
      values,
    })
  }
}
