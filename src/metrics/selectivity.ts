import { needsSoftmax } from '../engine.js'
import type { Model } from '../models/model.js'
import { areas } from '../native.js'
import { seed, z } from '../options.js'
import type { Checked } from '../validate.js'
import type { CurveResult } from './curve.js'
import { type CheckedMapOptions, column, type Merged, Metric, newCost, type Shard } from './protocol.js'
import { checkQuantusBaseline, curveBaseline, curveBaselineSpec } from './quantus.js'
import { curveRows, MAX_PATCH, patchMaps, rankRegions, scoreRegionRows } from './region.js'

const schema = z
  .strictObject({
    /** Side of the square patches in pixels (default 8). */
    patchSize: z.int().min(1).max(MAX_PATCH).default(8),
    /** What removed patches become (default 0; with `compat: 'quantus'` Quantus's `'black'`, the sample minimum). */
    baseline: curveBaseline.optional(),
    /** Rank patches by the sum of |a| instead of a (default false). */
    abs: z.boolean().default(false),
    /** Seed of a `{ uniform }` baseline (default 0). */
    seed: seed.default(0),
    /**
     * `'quantus'` reproduces quantus.Selectivity 0.6: Quantus's padded patch grid, softmax scores,
     * the curve `f_y(x~_k)` for k = 1…P without the unperturbed point, score = trapz(curve, dx=1).
     */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine(checkQuantusBaseline)
  .transform((o) => ({ ...o, baseline: o.baseline ?? (o.compat ? ('black' as const) : 0) }))

export type SelectivityOptions = z.input<typeof schema>
export type SelectivityParams = z.output<typeof schema>

/**
 * Selectivity (Montavon, Samek & Müller, Digital Signal Processing 2018): remove patches of the
 * image (`patchSize` squares spanning every channel) in order of their summed attribution, most
 * relevant first, until none is left, and follow the label's score. Per sample the score is the
 * area under that curve on x = fraction of patches removed ∈ [0, 1], the unperturbed input
 * included. **Lower is better**: a selective explanation makes the score fall fast.
 *
 * Deviations from quantus.Selectivity 0.6 by default (each reproduced with `compat: 'quantus'`):
 * the grid starts at the top-left pixel with smaller patches at the right and bottom edges
 * (Quantus edge-pads and centres it); the curve starts at the unperturbed input and its area is
 * normalised to x ∈ [0, 1] (Quantus: trapz(dx=1) of the P points after each removal); baseline 0
 * by default, a snapshot of the unperturbed input (Quantus's drifting `'mean'` is refused in
 * compat); the model's own output unless compat, which applies softmax. Ties between patch scores
 * go to the lower patch index.
 */
export class Selectivity extends Metric<SelectivityParams, CurveResult> {
  static readonly meta = {
    id: 'selectivity',
    name: 'Selectivity',
    higherIsBetter: false,
    needs: ['attributions'],
    version: 1,
    cost: '1 + patches rows (patches only with compat)',
    reference: 'Montavon, Samek & Müller 2018, Digital Signal Processing; quantus.Selectivity 0.6',
  } as const

  constructor(options?: SelectivityOptions) {
    super(schema, options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { patchSize, baseline, abs, seed, compat } = this.params
    const maps = patchMaps(d, patchSize, compat === 'quantus')
    const patches = maps.patches
    const ranked = await rankRegions(
      d,
      {
        maps,
        reduce: 'sum',
        order: 'morf',
        abs,
        seed,
        baseline: curveBaselineSpec(baseline, seed),
        firstSample: o.firstSample,
        maxRegions: patches,
      },
      o.signal,
    )
    // Quantus never evaluates the unperturbed input.
    const first = compat ? 1 : 0
    const rows = curveRows(new Uint32Array(d.n).fill(patches), first)
    const cost = newCost()
    const softmax = needsSoftmax(model, compat ? true : undefined)
    const curve = await scoreRegionRows(model, d, maps, ranked, rows, softmax, o, cost)
    const points = patches + 1 - first
    if (compat) for (let i = 0; i < curve.length; i++) curve[i] = Math.fround(curve[i]!)
    const x = Float64Array.from({ length: points }, (_, i) => (compat ? i + 1 : i / patches))
    return this.shard(o.firstSample, d.n, { curve: { width: points, values: curve } }, cost, { x, patches })
  }

  protected finish(m: Merged): CurveResult {
    const { width: points, values } = column(m, 'curve')
    const x = m.common.x as Float64Array
    const scores = areas(values, this.params.compat ? new Float64Array() : x, points)
    return this.result(m, scores, { curves: { morf: { x, values, points } } })
  }
}
