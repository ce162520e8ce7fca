// Localisation metrics: how an attribution map sits on the object it should point at. No forward
// passes: each compares the (channel-summed) map with the data set's object masks (or boxes drawn
// into masks), per sample, in the Rust core. An empty mask is a NaN score with its reason.
import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { localisationStats } from '../native.js'
import { z } from '../options.js'
import type { Checked } from '../validate.js'
import type { UndefinedScore } from './correlation.js'
import { type CheckedMapOptions, column, type Merged, Metric, type MetricResult, newCost, type Shard } from './protocol.js'

const compat = z.enum(['quantus']).optional()

/** Reason codes of the `reason` column (0: defined). */
const REASONS = [
  '',
  'the object mask is empty: localisation undefined',
  'the total relevance is zero: the share inside the mask is undefined',
  'the share inside the mask exceeds 1 (negative relevance outside it): undefined, as in Quantus',
  'the mask covers the whole image: no pixel outside it, ROC AUC undefined',
] as const

export interface LocalisationResult extends MetricResult {
  /** Every sample whose score is NaN, with the reason. */
  undefinedScores: UndefinedScore[]
}

type Kind = 'pointing' | 'mass' | 'rank' | 'topk' | 'auc'

/** The masks of a checked data set, or a typed error naming what is missing. */
function masksOf(d: Checked, id: string): Uint8Array {
  if (!d.masks) {
    throw new XaiEvalError('INVALID_OPTION', 'masks', `'${id}' needs object masks [N, H, W] or boxes [N, 4] in the data set`)
  }
  return d.masks
}

/** Quantus's localisation metrics compare a `[N, 1, H, W]` map with the mask entry by entry. */
function checkQuantusChannels(d: Checked): void {
  if (d.attrChannels !== 1) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      'aShape',
      `compat 'quantus' compares a [N, 1, H, W] attribution with the [N, 1, H, W] mask; got ${d.attrChannels} attribution channels (sum them first)`,
    )
  }
}

async function stats(
  d: Checked,
  id: string,
  kind: Kind,
  transform: 'identity' | 'abs' | 'positive',
  o: CheckedMapOptions,
  extra: { tolerance?: number; anyTie?: boolean; k?: number } = {},
): Promise<{ values: Float64Array; width: number }> {
  const masks = masksOf(d, id)
  const shape = [d.n, d.attrChannels, d.height, d.width]
  const values = await localisationStats(d.a, masks, { kind, shape, transform, ...extra }, o.signal)
  return { values, width: values.length / d.n }
}

/** Base of the localisation metrics: a `score` and a `reason` column, and the result's `undefinedScores`. */
abstract class LocalisationMetric<P extends object, R extends LocalisationResult = LocalisationResult> extends Metric<P, R> {
  protected finishWith<X extends object>(m: Merged, extra: X): R {
    const reasons = column(m, 'reason').values
    const undefinedScores: UndefinedScore[] = []
    reasons.forEach((r, i) => {
      if (r !== 0) undefinedScores.push({ sample: m.firstSample + i, reason: REASONS[r] ?? 'undefined' })
    })
    return this.result(m, column(m, 'score').values, { undefinedScores, ...extra })
  }

  protected finish(m: Merged): R {
    return this.finishWith(m, {})
  }

  protected scoreShard(
    o: CheckedMapOptions,
    n: number,
    score: Float64Array,
    reason: Float64Array,
    more: Record<string, Float64Array> = {},
  ): Shard {
    const columns = Object.fromEntries([
      ['score', { width: 1, values: score }],
      ['reason', { width: 1, values: reason }],
      ...Object.entries(more).map(([k, v]) => [k, { width: v.length / n, values: v }]),
    ])
    return this.shard(o.firstSample, n, columns, newCost())
  }
}

// ---------------------------------------------------------------------------------------------

const pointingSchema = z
  .strictObject({
    /** A maximum within this Euclidean distance (pixels) of a mask pixel is a hit (default 0; Zhang et al. use 15). */
    tolerance: z.number().min(0).max(1e6).default(0),
    /** Use |a| (default false). */
    abs: z.boolean().default(false),
    /** `'quantus'`: any tied maximum inside the mask is a hit, and an empty mask counts as a hit (quantus.PointingGame 0.6). */
    compat,
  })
  .superRefine((o, ctx) => {
    if (o.compat && o.tolerance !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['tolerance'],
        message: "quantus.PointingGame has no tolerance: use tolerance 0 with compat 'quantus'",
      })
    }
  })

export type PointingGameOptions = z.input<typeof pointingSchema>
export type PointingGameParams = z.output<typeof pointingSchema>

export interface PointingGameResult extends LocalisationResult {
  /** 1 where the maximum hits the object, 0 where it misses, NaN for an empty mask (= `scores`). */
  hit: Float64Array
  /** `[N, 2]` (y, x) of each sample's maximum (the first in row-major order among tied maxima). */
  maxLocation: Int32Array
  /** How many pixels share each sample's maximum value (1 = no tie). */
  tiedMaxima: Int32Array
}

/**
 * Pointing game (Zhang et al., "Top-down neural attention by excitation backprop", IJCV 2018): a
 * hit when the most relevant pixel lies on the object, or within `tolerance` pixels of it (the
 * paper uses 15). Higher is better (the mean is the hit rate). A pixel's relevance is the
 * attribution summed over channels.
 *
 * Ties: the maximum is the first maximal pixel in row-major order (`maxLocation`), and only it is
 * judged; `tiedMaxima` reports how many pixels share the maximum so a tie is never silent.
 * An empty mask gives NaN with its reason.
 *
 * `compat: 'quantus'` (quantus.PointingGame 0.6): a hit when *any* tied maximum is inside the
 * mask, no tolerance, and an empty mask counts as a hit (Quantus assigns NaN into a bool array,
 * which becomes True). Quantus's `weighted=True` raises whenever a hit exists and is not offered.
 * Quantus's default normalisation (by the data set's max |a|) cannot move a maximum and is not applied.
 *
 * Cost: no forward passes.
 */
export class PointingGame extends LocalisationMetric<PointingGameParams, PointingGameResult> {
  static readonly meta = {
    id: 'pointing-game',
    name: 'PointingGame',
    higherIsBetter: true,
    needs: ['attributions', 'masks'],
    version: 1,
    cost: 'no forward passes',
    reference: 'Zhang et al., IJCV 2018; quantus.PointingGame 0.6',
  } as const

  constructor(options?: PointingGameOptions) {
    super(pointingSchema, options)
  }

  protected async shardOf(_model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { tolerance, abs, compat } = this.params
    if (compat) checkQuantusChannels(d)
    const { values } = await stats(d, PointingGame.meta.id, 'pointing', abs ? 'abs' : 'identity', o, { tolerance, anyTie: !!compat })
    const score = new Float64Array(d.n)
    const reason = new Float64Array(d.n)
    const location = new Float64Array(2 * d.n)
    const ties = new Float64Array(d.n)
    for (let i = 0; i < d.n; i++) {
      const [hit, at, tied, size] = values.subarray(4 * i, 4 * i + 4)
      const empty = size === 0
      score[i] = empty ? (compat ? 1 : Number.NaN) : hit!
      reason[i] = empty && !compat ? 1 : 0
      location.set([Math.floor(at! / d.width), at! % d.width], 2 * i)
      ties[i] = tied!
    }
    return this.scoreShard(o, d.n, score, reason, { maxLocation: location, tiedMaxima: ties })
  }

  protected override finish(m: Merged): PointingGameResult {
    const scores = column(m, 'score').values
    return this.finishWith(m, {
      hit: scores,
      maxLocation: Int32Array.from(column(m, 'maxLocation').values),
      tiedMaxima: Int32Array.from(column(m, 'tiedMaxima').values),
    })
  }
}

// ---------------------------------------------------------------------------------------------

const massSchema = z.strictObject({
  /** Use |a| (default false, as Quantus). */
  abs: z.boolean().default(false),
  /** `'quantus'`: quantus.RelevanceMassAccuracy 0.6 (the same numbers; only `[N, 1, H, W]` maps). */
  compat,
})

export type RelevanceMassAccuracyOptions = z.input<typeof massSchema>
export type RelevanceMassAccuracyParams = z.output<typeof massSchema>

/**
 * Relevance mass accuracy (Arras et al., "CLEVR-XAI", Information Fusion 2022): the share of the
 * total relevance that falls inside the object mask, R_in / R_tot. Higher is better.
 * NaN with its reason for an empty mask or a zero total. Quantus's normalisation by the data set's
 * max |a| cancels in the ratio and is not applied.
 *
 * Cost: no forward passes.
 */
export class RelevanceMassAccuracy extends LocalisationMetric<RelevanceMassAccuracyParams> {
  static readonly meta = {
    id: 'relevance-mass-accuracy',
    name: 'RelevanceMassAccuracy',
    higherIsBetter: true,
    needs: ['attributions', 'masks'],
    version: 1,
    cost: 'no forward passes',
    reference: 'Arras et al., Information Fusion 2022; quantus.RelevanceMassAccuracy 0.6',
  } as const

  constructor(options?: RelevanceMassAccuracyOptions) {
    super(massSchema, options)
  }

  protected async shardOf(_model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    if (this.params.compat) checkQuantusChannels(d)
    const { values } = await stats(d, RelevanceMassAccuracy.meta.id, 'mass', this.params.abs ? 'abs' : 'identity', o)
    const score = new Float64Array(d.n)
    const reason = new Float64Array(d.n)
    for (let i = 0; i < d.n; i++) {
      const [inside, total, size] = values.subarray(3 * i, 3 * i + 3) as unknown as [number, number, number]
      reason[i] = size === 0 ? 1 : total === 0 ? 2 : 0
      score[i] = reason[i] ? Number.NaN : inside / total
    }
    return this.scoreShard(o, d.n, score, reason)
  }
}

// ---------------------------------------------------------------------------------------------

const rankSchema = massSchema

export type RelevanceRankAccuracyOptions = z.input<typeof rankSchema>
export type RelevanceRankAccuracyParams = z.output<typeof rankSchema>

/**
 * Relevance rank accuracy (Arras et al., Information Fusion 2022): with K the mask's pixel count,
 * the share of the K most relevant pixels that lie inside the mask. Higher is better. Ties in the
 * ranking go to the lower pixel index (Quantus: numpy's unstable argsort, which differs only when
 * the K-th value is tied). NaN with its reason for an empty mask.
 *
 * Cost: no forward passes; one sort of H·W values per sample.
 */
export class RelevanceRankAccuracy extends LocalisationMetric<RelevanceRankAccuracyParams> {
  static readonly meta = {
    id: 'relevance-rank-accuracy',
    name: 'RelevanceRankAccuracy',
    higherIsBetter: true,
    needs: ['attributions', 'masks'],
    version: 1,
    cost: 'no forward passes',
    reference: 'Arras et al., Information Fusion 2022; quantus.RelevanceRankAccuracy 0.6',
  } as const

  constructor(options?: RelevanceRankAccuracyOptions) {
    super(rankSchema, options)
  }

  protected async shardOf(_model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    if (this.params.compat) checkQuantusChannels(d)
    const { values } = await stats(d, RelevanceRankAccuracy.meta.id, 'rank', this.params.abs ? 'abs' : 'identity', o)
    const score = new Float64Array(d.n)
    const reason = new Float64Array(d.n)
    for (let i = 0; i < d.n; i++) {
      const [hits, size] = values.subarray(2 * i, 2 * i + 2) as unknown as [number, number]
      reason[i] = size === 0 ? 1 : 0
      score[i] = size === 0 ? Number.NaN : hits / size
    }
    return this.scoreShard(o, d.n, score, reason)
  }
}

// ---------------------------------------------------------------------------------------------

const topKSchema = z.strictObject({
  /** How many of the most relevant pixels (default 1000, as Quantus). */
  k: z
    .int()
    .min(1)
    .max(2 ** 31)
    .default(1000),
  /** Multiply by H·W / |mask| (Quantus's `concept_influence`, default false). */
  conceptInfluence: z.boolean().default(false),
  /** Use |a| (default false). */
  abs: z.boolean().default(false),
  /** `'quantus'`: quantus.TopKIntersection 0.6 (which also refuses k ≥ H·W). */
  compat,
})

export type TopKIntersectionOptions = z.input<typeof topKSchema>
export type TopKIntersectionParams = z.output<typeof topKSchema>

/**
 * Top-k intersection (Theiner et al., "Interpretable semantic photo geolocation", WACV 2022): the
 * share of the `k` most relevant pixels that lie inside the mask; with `conceptInfluence` divided
 * by the mask's share of the image. Higher is better. Ties go to the lower pixel index (Quantus:
 * numpy's unstable argsort). A `k` larger than H·W is a typed error (Quantus refuses k ≥ H·W; so
 * does `compat: 'quantus'`).
 * NaN with its reason for an empty mask.
 *
 * Cost: no forward passes; one sort of H·W values per sample.
 */
export class TopKIntersection extends LocalisationMetric<TopKIntersectionParams> {
  static readonly meta = {
    id: 'top-k-intersection',
    name: 'TopKIntersection',
    higherIsBetter: true,
    needs: ['attributions', 'masks'],
    version: 1,
    cost: 'no forward passes',
    reference: 'Theiner et al., WACV 2022; quantus.TopKIntersection 0.6',
  } as const

  constructor(options?: TopKIntersectionOptions) {
    super(topKSchema, options)
  }

  protected async shardOf(_model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { k, conceptInfluence, abs, compat } = this.params
    const pixels = d.height * d.width
    if (compat) checkQuantusChannels(d)
    if (compat ? k >= pixels : k > pixels) {
      const limit = compat ? `quantus.TopKIntersection needs k < ${pixels}` : `at most ${pixels}`
      throw new XaiEvalError('INVALID_OPTION', 'k', `k = ${k} exceeds the pixels of a ${d.height}×${d.width} map (${limit})`)
    }
    const { values } = await stats(d, TopKIntersection.meta.id, 'topk', abs ? 'abs' : 'identity', o, { k })
    const score = new Float64Array(d.n)
    const reason = new Float64Array(d.n)
    for (let i = 0; i < d.n; i++) {
      const [hits, kept, size] = values.subarray(3 * i, 3 * i + 3) as unknown as [number, number, number]
      reason[i] = size === 0 ? 1 : 0
      score[i] = size === 0 ? Number.NaN : (hits / kept) * (conceptInfluence ? pixels / size : 1)
    }
    return this.scoreShard(o, d.n, score, reason)
  }
}

// ---------------------------------------------------------------------------------------------

const attributionLocalisationSchema = z
  .strictObject({
    /** Multiply by the inverse of the mask's share of the image, H·W / |mask| (default false). */
    weighted: z.boolean().default(false),
    /** Keep only positive relevance, max(a, 0) (default false; ignored when `abs`). */
    positiveAttributions: z.boolean().default(false),
    /** Use |a| (default true, as Quantus). */
    abs: z.boolean().default(true),
    /** `'quantus'`: quantus.AttributionLocalisation 0.6 — R_in / (R_tot + 1e-9). */
    compat,
  })
  .superRefine((o, ctx) => {
    if (o.compat && o.weighted) {
      ctx.addIssue({
        code: 'custom',
        path: ['weighted'],
        message:
          "quantus.AttributionLocalisation's weighting divides by the size of x_batch[2:] (its batch minus two samples), which depends on the batch split; not reproduced",
      })
    }
  })

export type AttributionLocalisationOptions = z.input<typeof attributionLocalisationSchema>
export type AttributionLocalisationParams = z.output<typeof attributionLocalisationSchema>

/**
 * Attribution localisation (Kohlbrenner et al., "Towards best practice in explaining neural
 * network decisions with LRP", IJCNN 2020): the inside-relevance ratio μ = R_in / R_tot; with
 * `weighted`, μ · H·W / |mask| (the paper's μ_w: a uniform map scores 1). Higher is better.
 * NaN with its reason for an empty mask, a zero total, or μ > 1 (negative relevance outside).
 *
 * Deviations from quantus.AttributionLocalisation 0.6: Quantus divides by R_tot + 1e-9
 * (reproduced by `compat: 'quantus'`); its `weighted` multiplies by |mask| / size(x_batch[2:]) —
 * the inverse of the paper's factor, over a batch-dependent size — and is refused in compat mode;
 * its `max_size` only warns and is not offered. Its normalisation by the data set's max |a| is not
 * applied (it cancels, up to the 1e-9 guard).
 *
 * Cost: no forward passes.
 */
export class AttributionLocalisation extends LocalisationMetric<AttributionLocalisationParams> {
  static readonly meta = {
    id: 'attribution-localisation',
    name: 'AttributionLocalisation',
    higherIsBetter: true,
    needs: ['attributions', 'masks'],
    version: 1,
    cost: 'no forward passes',
    reference: 'Kohlbrenner et al., IJCNN 2020; quantus.AttributionLocalisation 0.6',
  } as const

  constructor(options?: AttributionLocalisationOptions) {
    super(attributionLocalisationSchema, options)
  }

  protected async shardOf(_model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { weighted, positiveAttributions, abs, compat } = this.params
    if (compat) checkQuantusChannels(d)
    const transform = abs ? 'abs' : positiveAttributions ? 'positive' : 'identity'
    const { values } = await stats(d, AttributionLocalisation.meta.id, 'mass', transform, o)
    const pixels = d.height * d.width
    const score = new Float64Array(d.n)
    const reason = new Float64Array(d.n)
    for (let i = 0; i < d.n; i++) {
      const [inside, total, size] = values.subarray(3 * i, 3 * i + 3) as unknown as [number, number, number]
      const ratio = compat ? inside / (total + 1e-9) : inside / total
      reason[i] = size === 0 ? 1 : !compat && total === 0 ? 2 : ratio > 1 ? 3 : 0
      score[i] = reason[i] ? Number.NaN : weighted ? (ratio * pixels) / size : ratio
    }
    return this.scoreShard(o, d.n, score, reason)
  }
}

// ---------------------------------------------------------------------------------------------

const aucSchema = massSchema

export type AUCOptions = z.input<typeof aucSchema>
export type AUCParams = z.output<typeof aucSchema>

/**
 * Localisation AUC (Fawcett, "An introduction to ROC analysis", 2006, as quantus.AUC): the area
 * under the ROC curve of the pixel relevance as a classifier of "inside the mask", i.e. the
 * probability that a random object pixel outranks a random background pixel (ties count ½,
 * exactly `sklearn.metrics.roc_curve` + `auc`). Higher is better; 0.5 is chance. NaN with its
 * reason for an empty mask or a mask covering the whole image.
 *
 * Cost: no forward passes; one sort of H·W values per sample.
 */
export class AUC extends LocalisationMetric<AUCParams> {
  static readonly meta = {
    id: 'localisation-auc',
    name: 'AUC',
    higherIsBetter: true,
    needs: ['attributions', 'masks'],
    version: 1,
    cost: 'no forward passes',
    reference: 'Fawcett 2006; quantus.AUC 0.6',
  } as const

  constructor(options?: AUCOptions) {
    super(aucSchema, options)
  }

  protected async shardOf(_model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    if (this.params.compat) checkQuantusChannels(d)
    const { values } = await stats(d, AUC.meta.id, 'auc', this.params.abs ? 'abs' : 'identity', o)
    const score = new Float64Array(d.n)
    const reason = new Float64Array(d.n)
    for (let i = 0; i < d.n; i++) {
      const [auc, size] = values.subarray(2 * i, 2 * i + 2) as unknown as [number, number]
      reason[i] = size === 0 ? 1 : size === d.height * d.width ? 4 : 0
      score[i] = reason[i] ? Number.NaN : auc
    }
    return this.scoreShard(o, d.n, score, reason)
  }
}
