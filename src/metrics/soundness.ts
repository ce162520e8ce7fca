import type { Dataset } from '../data.js'
import { needsSoftmax, run } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { SocoSoundnessStats, socoSoundnessMasks, socoSoundnessRatios, typedCall } from '../native.js'
import { finish, meter, type MetricResult } from '../result.js'
import { checkDataset, rowShape } from '../validate.js'
import type { EvaluateOptions } from './curve.js'
import { firstSampleOf, stepRows, StepwiseImputationMetric, type ShardOptions } from './stepwise.js'

/**
 * The map output of one shard: mergeable counts plus each sample's value and newly included
 * attribution per step — everything the reduce needs, nothing that depends on batching.
 */
export interface SoundnessShard {
  firstSample: number
  samples: number
  /** `SocoSoundnessStats` bytes (counts per step). */
  stats: Uint8Array
  /** `[samples, steps]`: correct (0/1) or true-class probability. */
  values: Float64Array
  /** `[samples, steps]`: attribution of the pixels that enter the kept set at each step. */
  newAttribution: Float64Array
  forwardPasses: number
  batches: number
}

export interface SoundnessResult extends MetricResult {
  /** The paper's plot: soundness against the indicator (accuracy), one point per mask ratio. */
  curve: {
    ratios: Float64Array
    indicator: Float64Array
    soundness: Float64Array
    /** Per step: 0 no update, 1 every sample's new features are false, 2 each by its own gain. */
    flags: Uint8Array
    /** Per step: samples whose new features were flagged as false attribution. */
    flagged: Float64Array
    /** Per step: samples whose ratio is undefined (nothing kept yet). */
    undefined: Float64Array
  }
  /** `[N, steps]`: each sample's soundness ratio after each step (NaN where undefined). */
  ratios: Float64Array
  /** Per sample: attribution in the false-attribution set at the end. */
  falseAttribution: Float64Array
}

/**
 * Soundness (Li, Zhang et al., TMLR 2024, Algorithm 3): keep the most attributed pixels, impute
 * the rest (noisy linear imputation, LeRF by area), and grow the kept set step by step. Features
 * whose inclusion does not raise the indicator by ε = 0.01 are "false attribution"; soundness is
 * the share of the kept attribution that is not false. `scores` holds each sample's final ratio.
 *
 * A map over samples plus a reduce: {@link map} evaluates one shard (one forward pass per sample
 * and step, nothing depends on other shards), {@link reduce} merges any number of shards into
 * exactly the single-pass result. Attributions must be non-negative (paper) or are quantised to
 * uint8 per map (`compat: 'soco'`).
 */
export class Soundness extends StepwiseImputationMetric {
  /** Mask ratios (fraction of pixels imputed) of the steps. */
  get ratios(): Float64Array {
    return socoSoundnessRatios(this.mode)
  }

  async evaluate(model: Model, data: Dataset, options: EvaluateOptions = {}): Promise<SoundnessResult> {
    return this.reduce([await this.map(model, data, options)])
  }

  /** The map phase on one shard of a data set. */
  async map(model: Model, data: Dataset, options: ShardOptions = {}): Promise<SoundnessShard> {
    const d = checkDataset(data)
    const firstSample = firstSampleOf(options)
    const pixels = d.height * d.width
    const maps = this.maps(d, false)
    const steps = this.ratios.length
    const values = new Float64Array(d.n * steps)
    const newAttribution = new Float64Array(d.n * steps)
    const masks = async (step: number, s0: number, s1: number, signal?: AbortSignal) => {
      const m = await socoSoundnessMasks(
        maps.subarray(s0 * pixels, s1 * pixels),
        pixels,
        firstSample + s0,
        step,
        this.mode,
        this.seed,
        signal,
      )
      for (let i = 0; i < s1 - s0; i++) newAttribution[(s0 + i) * steps + step] = m.newAttr[i]!
      return m.masks
    }
    const plan = stepRows(d, steps, masks, { fill: this.imputation, noise: this.noise, seed: this.seed, firstSample }, (step) => step)
    const cost = meter(model.stats)
    // The score indicator is the raw true-class output, as the authors' PredScore (spec §2 fact 8).
    await run(
      model,
      rowShape(d),
      plan,
      needsSoftmax(model, false),
      ({ start, scores, argmax }) => {
        for (let i = 0; i < scores.length; i++) {
          const r = start + i
          const s = r % d.n
          values[s * steps + Math.floor(r / d.n)] = this.indicator === 'score' ? scores[i]! : Number(argmax[i] === d.y[s])
        }
      },
      options,
    )

    const stats = new SocoSoundnessStats(this.mode, this.indicator)
    typedCall(() => {
      for (let k = 0; k < steps; k++)
        stats.addValues(
          k,
          Float64Array.from({ length: d.n }, (_, s) => values[s * steps + k]!),
        )
    })
    return { firstSample, samples: d.n, stats: stats.toBytes(), values, newAttribution, ...cost() }
  }

  /** The reduce: merges the shards' counts, decides every step's flag, applies it to each shard's samples. */
  reduce(shards: readonly SoundnessShard[]): SoundnessResult {
    if (!Array.isArray(shards) || shards.length === 0) throw new XaiEvalError('EMPTY_INPUT', 'shards', 'nothing to reduce')
    const sorted = [...shards].sort((a, b) => a.firstSample - b.firstSample)
    return typedCall(() => {
      const counts = new SocoSoundnessStats(this.mode, this.indicator)
      for (const s of sorted) counts.merge(SocoSoundnessStats.fromBytes(s.stats))
      const { flags } = counts.decisions()
      const total = new SocoSoundnessStats(this.mode, this.indicator)
      const n = sorted.reduce((a, s) => a + s.samples, 0)
      const steps = this.ratios.length
      const ratios = new Float64Array(n * steps)
      const falseAttribution = new Float64Array(n)
      let offset = 0
      for (const s of sorted) {
        const shard = SocoSoundnessStats.fromBytes(s.stats)
        const applied = shard.apply(flags, s.values, s.newAttribution)
        ratios.set(applied.ratios, offset * steps)
        falseAttribution.set(applied.falseAttr, offset)
        total.merge(shard)
        offset += s.samples
      }
      const curve = total.curve()
      const scores = Float64Array.from({ length: n }, (_, i) => ratios[i * steps + steps - 1]!)
      return finish<SoundnessResult>({
        metric: 'Soundness',
        scores,
        curve: {
          ratios: curve.ratios,
          indicator: curve.indicator,
          soundness: curve.soundness,
          flags: curve.flags,
          flagged: curve.flagged,
          undefined: curve.undefined,
        },
        ratios,
        falseAttribution,
        forwardPasses: sorted.reduce((a, s) => a + s.forwardPasses, 0),
        batches: sorted.reduce((a, s) => a + s.batches, 0),
        params: this.params(),
      })
    })
  }
}
