import type { Dataset } from '../data.js'
import { needsSoftmax, phase, run, type Plan } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { SocoCompletenessStats, socoCompletenessMasks, socoCompletenessThresholds, typedCall } from '../native.js'
import { finish, meter, type MetricResult } from '../result.js'
import { checkDataset, rowShape } from '../validate.js'
import type { EvaluateOptions } from './curve.js'
import { firstSampleOf, stepRows, StepwiseImputationMetric, type ShardOptions } from './stepwise.js'

export interface CompletenessShard {
  firstSample: number
  samples: number
  /** `SocoCompletenessStats` bytes. */
  stats: Uint8Array
  /** `[samples, 1 + thresholds]`: the value on the clean input, then after imputing at each threshold. */
  values: Float64Array
  forwardPasses: number
  batches: number
}

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
export class Completeness extends StepwiseImputationMetric {
  get thresholds(): Float64Array {
    return socoCompletenessThresholds(this.mode)
  }

  async evaluate(model: Model, data: Dataset, options: EvaluateOptions = {}): Promise<CompletenessResult> {
    return this.reduce([await this.map(model, data, options)])
  }

  async map(model: Model, data: Dataset, options: ShardOptions = {}): Promise<CompletenessShard> {
    const d = checkDataset(data)
    const firstSample = firstSampleOf(options)
    const pixels = d.height * d.width
    const maps = this.maps(d, true)
    const steps = this.thresholds.length
    const width = steps + 1
    const values = new Float64Array(d.n * width)
    const record = (s: number, j: number, score: number, argmax: number) => {
      values[s * width + j] = this.indicator === 'score' ? score : Number(argmax === d.y[s])
    }
    const cost = meter(model.stats)
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
        scores.forEach((v, i) => {
          record(start + i, 0, v, argmax[i]!)
        })
      },
      phase(options, 0, d.n * width),
    )

    const masks = async (step: number, s0: number, s1: number, signal?: AbortSignal) =>
      (await socoCompletenessMasks(maps.subarray(s0 * pixels, s1 * pixels), pixels, step, this.mode, signal)).masks
    // Noise keys 1000 + step keep completeness noise apart from soundness's on the same samples.
    const plan = stepRows(
      d,
      steps,
      masks,
      { fill: this.imputation, noise: this.noise, seed: this.seed, firstSample },
      (step) => 1000 + step,
    )
    await run(
      model,
      rowShape(d),
      plan,
      softmax,
      ({ start, scores, argmax }) => {
        scores.forEach((v, i) => {
          const r = start + i
          record(r % d.n, 1 + Math.floor(r / d.n), v, argmax[i]!)
        })
      },
      phase(options, d.n, d.n * width),
    )

    const stats = new SocoCompletenessStats(this.mode, this.indicator)
    typedCall(() => {
      const column = (j: number) => Float64Array.from({ length: d.n }, (_, s) => values[s * width + j]!)
      stats.addClean(column(0))
      for (let k = 0; k < steps; k++) stats.addValues(k, column(k + 1))
    })
    return { firstSample, samples: d.n, stats: stats.toBytes(), values, ...cost() }
  }

  reduce(shards: readonly CompletenessShard[]): CompletenessResult {
    if (!Array.isArray(shards) || shards.length === 0) throw new XaiEvalError('EMPTY_INPUT', 'shards', 'nothing to reduce')
    const sorted = [...shards].sort((a, b) => a.firstSample - b.firstSample)
    const total = new SocoCompletenessStats(this.mode, this.indicator)
    typedCall(() => {
      for (const s of sorted) total.merge(SocoCompletenessStats.fromBytes(s.stats))
    })
    const curve = typedCall(() => total.curve())
    const width = this.thresholds.length + 1
    const values = new Float64Array(sorted.reduce((a, s) => a + s.values.length, 0))
    let offset = 0
    for (const s of sorted) {
      values.set(s.values, offset)
      offset += s.values.length
    }
    const n = values.length / width
    const scores = Float64Array.from({ length: n }, (_, i) => {
      let drop = 0
      for (let j = 1; j < width; j++) drop += values[i * width]! - values[i * width + j]!
      return drop / (width - 1)
    })
    return finish<CompletenessResult>({
      metric: 'Completeness',
      scores,
      curve: { thresholds: curve.thresholds, clean: curve.clean, indicator: curve.indicator, difference: curve.difference },
      values,
      forwardPasses: sorted.reduce((a, s) => a + s.forwardPasses, 0),
      batches: sorted.reduce((a, s) => a + s.batches, 0),
      params: this.params(),
    })
  }
}
