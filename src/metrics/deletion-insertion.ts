// Deletion and Insertion (Petsiuk et al., RISE, 2018) with autotimm's fields: the same curve read
// in the two directions, pixels in order of attribution summed over channels.
import type { Dataset } from '../data.js'
import { maskedRows, needsSoftmax, phase, prepare, run, type Source } from '../engine.js'
import type { Model } from '../models/model.js'
import { areas } from '../native.js'
import { finish, meter } from '../result.js'
import { checkDataset, featureCount, layoutOf, oneOf, rowShape, type Checked } from '../validate.js'
import { baselineSpec, type Baseline } from './baseline.js'
import { countsOfSteps, INSERT, type CurveResult, type EvaluateOptions, type Target } from './curve.js'

export interface DeletionInsertionOptions {
  /** Points after the first (default 50): step k covers round(k·P/steps) of the P pixels. */
  steps?: number
  /**
   * The substrate: `'black'` zeros, `'blur'` a Gaussian blur of the sample (σ = `blurSigma`),
   * `'mean'` each channel's mean, or any {@link Baseline}. Default `'blur'`, as autotimm recommends.
   */
  baseline?: 'black' | 'blur' | 'mean' | Baseline
  /** σ in pixels of the `'blur'` substrate (default 5, RISE's). */
  blurSigma?: number
  /** Follow the model's predicted class (default) or the label `y`. */
  target?: Target
}

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

abstract class PixelGame {
  readonly steps: number
  readonly baseline: NonNullable<DeletionInsertionOptions['baseline']>
  readonly blurSigma: number
  readonly target: Target

  constructor(options: DeletionInsertionOptions = {}) {
    this.steps = options.steps ?? 50
    this.baseline = options.baseline ?? 'blur'
    this.blurSigma = options.blurSigma ?? 5
    this.target = oneOf('target', options.target ?? 'predicted', ['label', 'predicted'])
  }

  protected abstract readonly flags: number

  protected params(): Record<string, unknown> {
    return { steps: this.steps, baseline: this.baseline, blurSigma: this.blurSigma, target: this.target }
  }

  /**
   * Scores the curve points k = 0…steps of every sample, `[N, steps + 1]`. With a predicted target,
   * the clean input's row goes first (it picks the class) and is not evaluated again.
   */
  protected async curve(model: Model, data: Dataset, options: EvaluateOptions) {
    const d = checkDataset(data)
    const layout = layoutOf(d, 'pixel')
    const pixels = featureCount(layout)
    const counts = countsOfSteps(pixels, this.steps)
    const substrate =
      this.baseline === 'black'
        ? 0
        : this.baseline === 'blur'
          ? { blur: this.blurSigma }
          : this.baseline === 'mean'
            ? ('channelMean' as const)
            : this.baseline
    const src = await prepare(d, layout, baselineSpec('baseline', substrate), false, options.signal)
    const cost = meter(model.stats)
    const softmax = needsSoftmax(model)
    const points = counts.length
    const values = new Float64Array(d.n * points)
    // Deletion's clean input is its first point; Insertion's is its last (everything inserted).
    const clean = this.flags & INSERT ? points - 1 : 0
    const point = (k: number) => [counts[k]!, this.flags] as const
    const others = Array.from({ length: points }, (_, k) => k).filter((k) => this.target === 'label' || k !== clean)

    let target = d.y
    if (this.target === 'predicted') {
      // Target −1 scores each row's own argmax: the clean pass yields the class and its score at once.
      const predicted = new Int32Array(d.n)
      await this.score(
        model,
        src,
        d,
        [point(clean)],
        new Int32Array(d.n).fill(-1),
        softmax,
        phase(options, 0, d.n * points),
        (s, _, score, argmax) => {
          predicted[s] = argmax
          values[s * points + clean] = score
        },
      )
      target = predicted
    }
    const progress = phase(options, d.n * (points - others.length), d.n * points)
    await this.score(model, src, d, others.map(point), target, softmax, progress, (s, j, score) => {
      values[s * points + others[j]!] = score
    })
    return { d, x: Float64Array.from(counts, (c) => c / pixels), values, points, cost }
  }

  private async score(
    model: Model,
    src: Source,
    d: Checked,
    perSample: readonly (readonly [number, number])[],
    target: Int32Array,
    softmax: boolean,
    options: EvaluateOptions,
    each: (sample: number, j: number, score: number, argmax: number) => void,
  ): Promise<void> {
    const k = perSample.length
    await run(
      model,
      rowShape(d),
      maskedRows(src, perSample, target),
      softmax,
      ({ start, scores, argmax }) => {
        for (let i = 0; i < scores.length; i++) {
          const r = start + i
          each(Math.floor(r / k), r % k, scores[i]!, argmax[i]!)
        }
      },
      options,
    )
  }
}

/** Per-sample AUC and the curve's clean and substrate ends, with the relative change between them. */
function summarise(values: Float64Array, x: Float64Array, points: number, n: number, cleanAt: number) {
  const substrateAt = points - 1 - cleanAt
  const originalScore = new Float64Array(n)
  const baselineScore = new Float64Array(n)
  const change = new Float64Array(n)
  for (let s = 0; s < n; s++) {
    originalScore[s] = values[s * points + cleanAt]!
    baselineScore[s] = values[s * points + substrateAt]!
    change[s] = (originalScore[s]! - baselineScore[s]!) / originalScore[s]!
  }
  return { auc: areas(values, x, points), originalScore, baselineScore, change }
}

/**
 * Deletion: replace the most important pixels with the substrate, `steps` times, and follow the
 * target score. A faithful attribution makes it fall fast: lower AUC is better.
 */
export class Deletion extends PixelGame {
  protected readonly flags = 0

  async evaluate(model: Model, data: Dataset, options: EvaluateOptions = {}): Promise<DeletionResult> {
    const { d, x, values, points, cost } = await this.curve(model, data, options)
    const { auc, originalScore, baselineScore, change: finalDrop } = summarise(values, x, points, d.n, 0)
    return finish<DeletionResult>({
      metric: 'Deletion',
      scores: auc,
      auc,
      originalScore,
      baselineScore,
      finalDrop,
      curves: { scores: { x, values, points } },
      ...cost(),
      params: this.params(),
    })
  }
}

/**
 * Insertion: start from the substrate and put the most important pixels back, `steps` times. A
 * faithful attribution recovers the score fast: higher AUC is better.
 */
export class Insertion extends PixelGame {
  protected readonly flags = INSERT

  async evaluate(model: Model, data: Dataset, options: EvaluateOptions = {}): Promise<InsertionResult> {
    const { d, x, values, points, cost } = await this.curve(model, data, options)
    // Insertion's curve runs from the substrate (first point) to the clean input (last).
    const { auc, originalScore, baselineScore, change: finalRise } = summarise(values, x, points, d.n, points - 1)
    return finish<InsertionResult>({
      metric: 'Insertion',
      scores: auc,
      auc,
      originalScore,
      baselineScore,
      finalRise,
      curves: { scores: { x, values, points } },
      ...cost(),
      params: this.params(),
    })
  }
}
