import { needsSoftmax } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { slicSegments } from '../native.js'
import { seed, z } from '../options.js'
import type { Checked } from '../validate.js'
import { baselineSchema, baselineSpec } from './baseline.js'
import { type CheckedMapOptions, column, type Merged, Metric, type MetricResult, newCost, type Shard } from './protocol.js'
import { curveRows, type RegionMaps, rankRegions, scoreRegionRows } from './region.js'

const schema = z
  .strictObject({
    /** SLIC: the approximate number of superpixels (default 100, skimage's). */
    nSegments: z.int().min(1).max(1_000_000).default(100),
    /** SLIC: weight of spatial against colour proximity (default 10, skimage's). */
    compactness: z.number().positive().max(1e12).default(10),
    /** SLIC: most k-means rounds (default 10, skimage's). */
    maxIter: z.int().min(1).max(1000).default(10),
    /**
     * What removed superpixels become (default `'mean'`: the sample's mean over all entries,
     * computed once from the unperturbed input). With `compat: 'quantus'` a number is required.
     */
    baseline: z.union([baselineSchema, z.enum(['black', 'white'])]).optional(),
    /** Rank superpixels by the mean of |a| instead of a (default false). */
    abs: z.boolean().default(false),
    /** Seed of a `{ uniform }` baseline (default 0). */
    seed: seed.default(0),
    /**
     * `'quantus'` reproduces quantus.IROF 0.6 given a constant baseline: softmax scores, the curve
     * `f_y(x~_k) / f_y(x)` for k = 1…K without the unperturbed point, score `K − trapz(curve, dx=1)`
     * (not normalised), single-channel inputs only.
     */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.compat && typeof o.baseline !== 'number') {
      ctx.addIssue({
        code: 'custom',
        path: ['baseline'],
        message:
          "Quantus's IROF replaces segments by one scalar of the whole current batch array ('mean' — its default — is that array's mean, drifting with each step; 'black'/'white' its min/max), so its numbers depend on which samples share a batch and cannot be computed per shard; with compat: 'quantus' pass that scalar as a number (e.g. the data set's minimum for 'black' over one batch)",
      })
    } else if (o.baseline === 'black' || o.baseline === 'white') {
      ctx.addIssue({
        code: 'custom',
        path: ['baseline'],
        message: `'${o.baseline}' is Quantus's name for a whole-batch ${o.baseline === 'black' ? 'minimum' : 'maximum'}; say 'min' or 'max' for the sample's, or a number`,
      })
    }
  })
  .transform((o) => ({ ...o, baseline: (o.baseline ?? 'mean') as Exclude<NonNullable<typeof o.baseline>, 'black' | 'white'> }))

export type IrofOptions = z.input<typeof schema>
export type IrofParams = z.output<typeof schema>

export interface IrofResult extends MetricResult {
  /** Superpixels of each sample, K_n. */
  segments: Float64Array
  /**
   * Each sample's curve `f_y(x~_k) / f_y(x)`, k = 0…K_n (k = 1…K_n with compat), concatenated:
   * sample s owns `values[offsets[s] … offsets[s + 1])`; its x is k / K_n (k with compat). Curves
   * differ in length, so they are not `curves` of a `CurveResult`.
   */
  ratios: { values: Float64Array; offsets: Uint32Array }
}

/**
 * IROF, Iterative Removal Of Features (Rieger & Hansen 2020): each image is cut into superpixels
 * (SLIC, or the caller's `data.segments`), superpixels are ranked by their mean attribution and
 * removed cumulatively, most relevant first, every channel replaced by the baseline; the label's
 * score, relative to the unperturbed score, is followed until nothing is left. Per sample the
 * score is the area over that curve, AOC = 1 − ∫ f(x~)/f(x) on x = fraction of superpixels
 * removed ∈ [0, 1], the unperturbed point (1) included. **Higher is better.** A score is NaN when
 * the unperturbed score is 0 (the ratio is undefined); use probabilities (the ratio of logits
 * means nothing when they change sign).
 *
 * SLIC (`xai_eval_core::slic`) follows scikit-image's `slic` with its defaults, as Quantus calls it
 * (`start_label=0`): on single-channel images it gives the same segments (checked against the
 * Quantus fixture). Unlike skimage, 3-channel images are not converted to CIELAB.
 *
 * Deviations from quantus.IROF 0.6 by default:
 * - the baseline is computed once per sample from its unperturbed input (`'mean'`: the sample's
 *   mean), where Quantus takes one scalar over the whole current *batch* array, recomputed at each
 *   step — so its scores change with `batch_size` and with which samples share a batch. That is
 *   not reproducible per shard: compat requires the scalar as a number;
 * - AOC normalised to x ∈ [0, 1] with the unperturbed point, where Quantus returns
 *   `K − trapz(r, dx=1)` over the K points after each removal (the "AOC" accumulation of its
 *   issue #113 fix, unnormalised, so scores scale with K and are not comparable across images);
 * - the model's own output unless compat, which applies softmax; any number of channels (Quantus
 *   asserts on C > 1: compat refuses it).
 * Quantus pads each batch's curves to its largest K and drops the half weight of a sample's last
 * point when its K is smaller; compat uses each sample's own K, i.e. Quantus's number whenever all
 * samples of a Quantus batch have as many segments (as SLIC's regular grid usually gives).
 * Ties between superpixel means go to the lower label.
 */
export class Irof extends Metric<IrofParams, IrofResult> {
  static readonly meta = {
    id: 'irof',
    name: 'IROF',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '1 + K_n rows per sample (K_n superpixels)',
    reference: 'Rieger & Hansen 2020, arXiv:1909.10337 (IROF); quantus.IROF 0.6',
  } as const

  constructor(options?: IrofOptions) {
    super(schema, options)
  }

  private async segments(d: Checked, signal?: AbortSignal): Promise<RegionMaps> {
    if (d.segments) return { labels: d.segments, shared: false }
    const { nSegments, compactness, maxIter } = this.params
    const r = await slicSegments(d.x, [d.n, d.channels, d.height, d.width], nSegments, compactness, maxIter, 0.5, 3, signal)
    return { labels: r.labels, shared: false }
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { baseline, abs, seed, compat } = this.params
    if (compat && d.channels !== 1) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'compat',
        `Quantus's IROF supports single-channel inputs only (got C = ${d.channels}): its segment mask is [N, 1, H, W] and it asserts the input's shape`,
      )
    }
    const maps = await this.segments(d, o.signal)
    const ranked = await rankRegions(
      d,
      {
        maps,
        reduce: 'mean',
        order: 'morf',
        abs,
        seed,
        baseline: baselineSpec(baseline, seed),
        firstSample: o.firstSample,
        maxRegions: d.height * d.width,
      },
      o.signal,
    )
    const rows = curveRows(ranked.counts, 0)
    const cost = newCost()
    const softmax = needsSoftmax(model, compat ? true : undefined)
    const scores = await scoreRegionRows(model, d, maps, ranked, rows, softmax, o, cost)
    const first = compat ? 1 : 0
    const curves = new Float64Array(scores.length - first * d.n)
    let row = 0
    let at = 0
    for (let s = 0; s < d.n; s++) {
      const k = ranked.counts[s]!
      const y0 = scores[row]!
      for (let j = first; j <= k; j++) {
        const f = scores[row + j]!
        curves[at++] = compat ? Math.fround(Math.fround(f) / Math.fround(y0)) : f / y0
      }
      row += k + 1
    }
    return this.shard(
      o.firstSample,
      d.n,
      { segments: { width: 1, values: Float64Array.from(ranked.counts) } },
      cost,
      {},
      { curves: new Uint8Array(curves.buffer) },
    )
  }

  protected finish(m: Merged): IrofResult {
    const segments = column(m, 'segments').values
    const parts = m.stats.map((s) => {
      const bytes = s.curves
      if (!bytes) throw new XaiEvalError('INVALID_OPTION', 'shards', 'a shard has no IROF curves')
      return new Float64Array(bytes.slice().buffer)
    })
    const values = new Float64Array(parts.reduce((a, p) => a + p.length, 0))
    let at = 0
    for (const p of parts) {
      values.set(p, at)
      at += p.length
    }
    const first = this.params.compat ? 1 : 0
    const offsets = new Uint32Array(m.samples + 1)
    for (let s = 0; s < m.samples; s++) offsets[s + 1] = offsets[s]! + segments[s]! + 1 - first
    if (offsets[m.samples] !== values.length) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'shards',
        `IROF curves hold ${values.length} points, the segment counts ${offsets[m.samples]}`,
      )
    }
    const scores = new Float64Array(m.samples)
    for (let s = 0; s < m.samples; s++) {
      const r = values.subarray(offsets[s]!, offsets[s + 1]!)
      const k = segments[s]!
      let area = 0
      if (this.params.compat) {
        // np.trapz(r, dx=1) = Σ r − (r_first + r_last) / 2; AOC = K − that.
        for (const v of r) area += v
        if (r.length > 0) area -= (r[0]! + r[r.length - 1]!) / 2
        scores[s] = k - area
      } else {
        for (let j = 0; j + 1 < r.length; j++) area += (r[j]! + r[j + 1]!) / 2 / k
        // A zero unperturbed score makes the curve (and the area) non-finite: NaN, as documented.
        scores[s] = Number.isFinite(area) ? 1 - area : Number.NaN
      }
    }
    return this.result(m, scores, { segments, ratios: { values, offsets } })
  }
}
