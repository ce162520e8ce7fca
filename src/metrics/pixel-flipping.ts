import type { Dataset } from '../data.js'
import { maskedRows, needsSoftmax, prepare, run } from '../engine.js'
import type { Model } from '../models/model.js'
import { areas } from '../native.js'
import { finish, meter } from '../result.js'
import { checkDataset, featureCount, layoutOf, oneOf, rowShape } from '../validate.js'
import { baselineSpec, type Baseline } from './baseline.js'
import { countsByStep, FROM_END, fractions, type CurveResult, type EvaluateOptions } from './curve.js'
import { quantusSetup } from './quantus.js'

export interface PixelFlippingOptions {
  /** Most influential first (default) or least influential first. */
  order?: 'mif' | 'lif'
  /** Features removed per step (default 1). */
  featuresInStep?: number
  /** What removed features become (default 0; `'quantus'` compat: `'black'`, the sample minimum). */
  baseline?: Baseline | 'black' | 'white'
  /** Rank by |a| instead of a (default false). */
  abs?: boolean
  /**
   * `'quantus'` reproduces quantus.PixelFlipping 0.6: softmax scores, the curve without the
   * unperturbed point, AUC = trapz(curve, dx=1) in steps, `(H·W) % featuresInStep == 0`.
   */
  compat?: 'quantus'
}

/**
 * Pixel flipping (Bach et al. 2015): remove features in order of attribution, `featuresInStep`
 * at a time, and follow the model's score of the label. Per sample, the score is the area under
 * that curve on x = fraction removed ∈ [0, 1], the unperturbed input included (MIF: lower is
 * better; LIF: higher is better).
 *
 * An `[N, 1, H, W]` attribution is broadcast over channels as in Quantus, so each input entry
 * is a feature.
 */
export class PixelFlipping {
  readonly order: 'mif' | 'lif'
  readonly featuresInStep: number
  readonly baseline: PixelFlippingOptions['baseline']
  readonly abs: boolean
  readonly compat: 'quantus' | undefined

  constructor(options: PixelFlippingOptions = {}) {
    this.order = oneOf('order', options.order ?? 'mif', ['mif', 'lif'])
    this.featuresInStep = options.featuresInStep ?? 1
    this.compat = options.compat === undefined ? undefined : oneOf('compat', options.compat, ['quantus'])
    this.baseline = options.baseline ?? (this.compat ? 'black' : 0)
    this.abs = options.abs ?? false
  }

  async evaluate(model: Model, data: Dataset, options: EvaluateOptions = {}): Promise<CurveResult> {
    const d = checkDataset(data)
    const layout = layoutOf(d, 'entry')
    const features = featureCount(layout)
    const all = countsByStep(features, this.featuresInStep)
    const baseline = this.compat
      ? quantusSetup(d.height * d.width, this.featuresInStep, this.baseline)
      : baselineSpec('baseline', this.baseline)
    const counts = this.compat ? all.subarray(1) : all
    const flags = this.order === 'lif' ? FROM_END : 0
    const src = await prepare(d, layout, baseline, this.abs, options.signal)
    const plan = maskedRows(
      src,
      Array.from(counts, (c) => [c, flags] as const),
      d.y,
    )
    const cost = meter(model.stats)
    const points = counts.length
    const values = new Float64Array(d.n * points)
    await run(model, rowShape(d), plan, needsSoftmax(model, this.compat ? true : undefined), (b) => values.set(b.scores, b.start), options)

    const x = this.compat ? new Float64Array() : fractions(counts, features)
    return finish<CurveResult>({
      metric: 'PixelFlipping',
      scores: areas(values, x, points),
      curves: { [this.order]: { x: this.compat ? Float64Array.from(counts, (_, k) => k) : x, values, points } },
      ...cost(),
      params: { order: this.order, featuresInStep: this.featuresInStep, baseline: this.baseline, abs: this.abs, compat: this.compat },
    })
  }
}
