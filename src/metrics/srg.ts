import type { Dataset } from '../data.js'
import { maskedRows, needsSoftmax, prepare, run } from '../engine.js'
import type { Model } from '../models/model.js'
import { areas } from '../native.js'
import { finish, meter } from '../result.js'
import { checkDataset, featureCount, layoutOf, oneOf, rowShape } from '../validate.js'
import { baselineSpec, type Baseline } from './baseline.js'
import { countsByStep, FROM_END, fractions, type CurveResult, type EvaluateOptions } from './curve.js'
import { quantusSetup } from './quantus.js'

export interface SymmetricRelevanceGainOptions {
  /** Features removed per step (default 1). */
  featuresInStep?: number
  /**
   * What removed features become (default 0: for inputs normalised to zero channel mean this is the
   * paper's channel-wise data-set mean imputer; pass `'channelMean'` or a constant otherwise).
   */
  baseline?: Baseline | 'black' | 'white'
  /**
   * Rank by |a| (default false). Keep `false` where the sign of the attribution is evidence for or
   * against the class (LRP, Shapley values, integrated gradients); use `true` for sensitivity maps
   * whose sign is a direction in colour space (raw gradients). Rankings are sensitive to this choice,
   * unlike to the baseline and step size.
   */
  abs?: boolean
  /** `'quantus'` reproduces the Quantus PR #374 numbers: softmax, no unperturbed point, mean of LIF − MIF. */
  compat?: 'quantus'
}

/**
 * Symmetric Relevance Gain (Blücher et al., TMLR 2024): the area between the pixel-flipping curves
 * of the least (LIF) and most (MIF) influential features first, SRG = AUC(LIF) − AUC(MIF) on
 * x ∈ [0, 1]. Higher is better; a random ranking scores about 0, whatever the occlusion strategy.
 *
 * One stable ordering serves both curves (LIF is its exact reverse) and one baseline snapshot both
 * imputations. The curves share their first point (the unperturbed input) and their last (everything
 * imputed): each is evaluated once. The MIF and LIF rows of a step sit next to each other, so they
 * go through the model in the same batch. Cost per sample: 2K rows for K steps.
 */
export class SymmetricRelevanceGain {
  readonly featuresInStep: number
  readonly baseline: SymmetricRelevanceGainOptions['baseline']
  readonly abs: boolean
  readonly compat: 'quantus' | undefined

  constructor(options: SymmetricRelevanceGainOptions = {}) {
    this.featuresInStep = options.featuresInStep ?? 1
    this.baseline = options.baseline ?? 0
    this.abs = options.abs ?? false
    this.compat = options.compat === undefined ? undefined : oneOf('compat', options.compat, ['quantus'])
  }

  async evaluate(model: Model, data: Dataset, options: EvaluateOptions = {}): Promise<CurveResult> {
    const d = checkDataset(data)
    const layout = layoutOf(d, 'entry')
    const features = featureCount(layout)
    const counts = countsByStep(features, this.featuresInStep)
    const baseline = this.compat
      ? quantusSetup(d.height * d.width, this.featuresInStep, this.baseline)
      : baselineSpec('baseline', this.baseline)
    const steps = counts.length - 1

    // Row j of a sample: the MIF and LIF points of steps 1…K−1 in pairs, then the shared endpoints.
    const rows: [number, number][] = []
    for (let k = 1; k < steps; k++) rows.push([counts[k]!, 0], [counts[k]!, FROM_END])
    rows.push([features, 0])
    if (!this.compat) rows.push([0, 0])
    const perSample = rows.length

    const src = await prepare(d, layout, baseline, this.abs, options.signal)
    const cost = meter(model.stats)
    const scored = new Float64Array(d.n * perSample)
    await run(
      model,
      rowShape(d),
      maskedRows(src, rows, d.y),
      needsSoftmax(model, this.compat ? true : undefined),
      (b) => scored.set(b.scores, b.start),
      options,
    )

    // Unpack into curves of K+1 points (K without the unperturbed one in compat mode).
    const first = this.compat ? 1 : 0
    const points = steps + 1 - first
    const mif = new Float64Array(d.n * points)
    const lif = new Float64Array(d.n * points)
    for (let s = 0; s < d.n; s++) {
      const r = s * perSample
      const c = s * points
      if (!this.compat) mif[c] = lif[c] = scored[r + perSample - 1]!
      for (let k = 1; k < steps; k++) {
        mif[c + k - first] = scored[r + 2 * (k - 1)]!
        lif[c + k - first] = scored[r + 2 * (k - 1) + 1]!
      }
      mif[c + points - 1] = lif[c + points - 1] = scored[r + 2 * (steps - 1)]!
    }

    let scores: Float64Array
    let x: Float64Array
    if (this.compat) {
      x = Float64Array.from({ length: points }, (_, k) => k + 1)
      scores = new Float64Array(d.n)
      for (let s = 0; s < d.n; s++) {
        let sum = 0
        for (let k = 0; k < points; k++) sum += lif[s * points + k]! - mif[s * points + k]!
        scores[s] = sum / points
      }
    } else {
      x = fractions(counts, features)
      const a = areas(lif, x, points)
      const b = areas(mif, x, points)
      scores = a.map((v, i) => v - b[i]!)
    }
    return finish<CurveResult>({
      metric: 'SymmetricRelevanceGain',
      scores,
      curves: { mif: { x, values: mif, points }, lif: { x, values: lif, points } },
      ...cost(),
      params: { featuresInStep: this.featuresInStep, baseline: this.baseline, abs: this.abs, compat: this.compat },
    })
  }
}
