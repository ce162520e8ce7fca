import { needsSoftmax, run } from '../engine.js'
import type { Model } from '../models/model.js'
import { SocoSoundnessStats, socoSoundnessMasks, socoSoundnessRatios, typedCall } from '../native.js'
import { type Checked, rowShape } from '../validate.js'
import { type CheckedMapOptions, column, type Merged, type MetricMeta, type MetricResult, newCost, type Shard } from './protocol.js'
import { StepwiseImputationMetric, stepRows } from './stepwise.js'

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
 * A map over samples plus an exact reduce: {@link map} evaluates one shard (one forward pass per
 * sample and step) and returns each sample's values with the shard's mergeable counts; the reduce
 * merges the counts of all shards, decides every step's flag on the whole data set, then applies it
 * to each sample — exactly the single-pass result. Attributions must be non-negative (paper) or are
 * quantised to uint8 per map (`compat: 'soco'`).
 */
export class Soundness extends StepwiseImputationMetric<SoundnessResult> {
  static readonly meta: MetricMeta = {
    id: 'soundness',
    name: 'Soundness',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '1 row (and 1 imputation) per mask ratio: 99 (paper)',
    reference: 'Li, Zhang et al., TMLR 2024, Algorithm 3',
  }

  /** Mask ratios (fraction of pixels imputed) of the steps. */
  get ratios(): Float64Array {
    return socoSoundnessRatios(this.mode)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { indicator, imputation, noise, seed } = this.params
    const firstSample = o.firstSample
    const pixels = d.height * d.width
    const maps = this.maps(d, false)
    const steps = this.ratios.length
    const values = new Float64Array(d.n * steps)
    const newAttribution = new Float64Array(d.n * steps)
    const masks = async (step: number, s0: number, s1: number, signal?: AbortSignal) => {
      const m = await socoSoundnessMasks(maps.subarray(s0 * pixels, s1 * pixels), pixels, firstSample + s0, step, this.mode, seed, signal)
      for (let i = 0; i < s1 - s0; i++) newAttribution[(s0 + i) * steps + step] = m.newAttr[i]!
      return m.masks
    }
    const plan = stepRows(d, steps, masks, { fill: imputation, noise, seed, firstSample }, (step) => step)
    const cost = newCost()
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
          values[s * steps + Math.floor(r / d.n)] = indicator === 'score' ? scores[i]! : Number(argmax[i] === d.y[s])
        }
      },
      o,
      cost,
    )

    const stats = typedCall(() => {
      const st = new SocoSoundnessStats(this.mode, indicator)
      for (let k = 0; k < steps; k++)
        st.addValues(
          k,
          Float64Array.from({ length: d.n }, (_, s) => values[s * steps + k]!),
        )
      return st.toBytes()
    })
    return this.shard(
      firstSample,
      d.n,
      { values: { width: steps, values }, newAttribution: { width: steps, values: newAttribution } },
      cost,
      {},
      { soundness: stats },
    )
  }

  /** Merges the shards' counts, decides every step's flag, applies it to each shard's samples. */
  protected finish(m: Merged): SoundnessResult {
    const values = column(m, 'values').values
    const newAttribution = column(m, 'newAttribution').values
    const steps = this.ratios.length
    return typedCall(() => {
      const bytes = m.stats.map((s) => s.soundness!)
      const counts = new SocoSoundnessStats(this.mode, this.params.indicator)
      for (const b of bytes) counts.merge(SocoSoundnessStats.fromBytes(b))
      const { flags } = counts.decisions()
      const total = new SocoSoundnessStats(this.mode, this.params.indicator)
      const ratios = new Float64Array(m.samples * steps)
      const falseAttribution = new Float64Array(m.samples)
      let offset = 0
      bytes.forEach((b, i) => {
        const n = m.shardSamples[i]!
        const shard = SocoSoundnessStats.fromBytes(b)
        const range = [offset * steps, (offset + n) * steps] as const
        const applied = shard.apply(flags, values.subarray(...range), newAttribution.subarray(...range))
        ratios.set(applied.ratios, offset * steps)
        falseAttribution.set(applied.falseAttr, offset)
        total.merge(shard)
        offset += n
      })
      const curve = total.curve()
      const scores = Float64Array.from({ length: m.samples }, (_, i) => ratios[i * steps + steps - 1]!)
      return this.result(m, scores, {
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
      })
    })
  }
}
