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
    /** Side of the square patches in pixels (default 8, Quantus's; Samek et al. used 9 × 9). */
    patchSize: z.int().min(1).max(MAX_PATCH).default(8),
    /**
     * Most relevant patches first (`'morf'`, default), least relevant first (`'lerf'`), or a random
     * order per sample (`'random'`, keyed by `seed` and the sample's global index; not with compat).
     */
    order: z.enum(['morf', 'lerf', 'random']).default('morf'),
    /** Patches removed, L (default 100, at most all patches). */
    regions: z.int().min(1).max(1_000_000).default(100),
    /** What removed patches become (default 0; with `compat: 'quantus'` Quantus's `'black'`, the sample minimum). */
    baseline: curveBaseline.optional(),
    /** Rank patches by the sum of |a| instead of a (default false). */
    abs: z.boolean().default(false),
    /** Seed of a `'random'` order and of a `{ uniform }` baseline (default 0). */
    seed: seed.default(0),
    /**
     * `'quantus'` reproduces quantus.RegionPerturbation 0.6: Quantus's padded patch grid, softmax
     * scores, the curve `y0 − f_y(x~_k)` for k = 1…L without the unperturbed point, score =
     * trapz(curve, dx=1).
     */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine(checkQuantusBaseline)
  .superRefine((o, ctx) => {
    if (o.compat && o.order === 'random') {
      ctx.addIssue({
        code: 'custom',
        path: ['order'],
        message:
          "Quantus draws 'random' orders from numpy's global generator, which cannot be reproduced; use 'morf' or 'lerf' with compat: 'quantus'",
      })
    }
  })
  .transform((o) => ({ ...o, baseline: o.baseline ?? (o.compat ? ('black' as const) : 0) }))

export type RegionPerturbationOptions = z.input<typeof schema>
export type RegionPerturbationParams = z.output<typeof schema>

/**
 * Region perturbation (Samek et al., IEEE TNNLS 2016): the image is cut into non-overlapping
 * `patchSize` × `patchSize` patches spanning every channel; patches are ranked by the sum of their
 * attribution and removed cumulatively, most relevant first (MoRF), and the label's score
 * `f(x^(k))` is followed over the first L removals. Per sample the score is the paper's
 * AOPC = 1/(L+1) · Σ_{k=0…L} (f(x^(0)) − f(x^(k))), the unperturbed input included (its term is 0);
 * `curves` holds f(x^(0)) − f(x^(k)) for k = 0…L (x = regions removed).
 * MoRF, and a random order: higher is better (a steep drop); LeRF: lower is better (the result's
 * `higherIsBetter` says which).
 *
 * Samek et al. perturb a 9 × 9 neighbourhood around each pixel location in the heatmap's order, so
 * their regions may overlap; like Quantus, this implementation removes non-overlapping patches
 * ranked by their summed relevance, each once.
 *
 * Deviations from quantus.RegionPerturbation 0.6 by default (each reproduced with `compat: 'quantus'`):
 * - the grid starts at the top-left pixel and a patch at the right or bottom edge is smaller where
 *   `patchSize` does not divide the side (Quantus edge-pads the image and centres the grid, so its
 *   border patches are partial on both sides);
 * - AOPC (mean of the differences, the unperturbed point included) instead of trapz(dx=1) of the
 *   differences without it;
 * - baseline: 0 by default, computed once per sample from the unperturbed input (Samek et al.
 *   perturbed with uniform noise: `{ uniform: [low, high] }`, drawn once per sample and entry);
 *   Quantus's `'mean'` drifts with each step and is refused in compat;
 * - the model's own output (probabilities or logits) unless compat, which applies softmax.
 * Ties between patch scores go to the lower patch index (LeRF is the exact reverse of MoRF);
 * Quantus's numpy quicksort leaves them to chance. Quantus's `normalise` (one positive factor over
 * the batch) never changes an order, so it has no option here.
 */
export class RegionPerturbation extends Metric<RegionPerturbationParams, CurveResult> {
  static readonly meta = {
    id: 'region-perturbation',
    name: 'RegionPerturbation',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: '1 + min(regions, patches) rows',
    reference: 'Samek et al. 2016, IEEE TNNLS; quantus.RegionPerturbation 0.6',
  } as const

  constructor(options?: RegionPerturbationOptions) {
    super(schema, options)
  }

  /** LeRF curves should stay flat: lower is better. */
  override get higherIsBetter(): boolean {
    return this.params.order !== 'lerf'
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { patchSize, order, regions, baseline, abs, seed, compat } = this.params
    const maps = patchMaps(d, patchSize, compat === 'quantus')
    const steps = Math.min(regions, maps.patches)
    const ranked = await rankRegions(
      d,
      {
        maps,
        reduce: 'sum',
        order,
        abs,
        seed,
        baseline: curveBaselineSpec(baseline, seed),
        firstSample: o.firstSample,
        maxRegions: maps.patches,
      },
      o.signal,
    )
    // Rows k = 0…L of every sample: k = 0 is the unperturbed input, y0.
    const rows = curveRows(new Uint32Array(d.n).fill(steps), 0)
    const cost = newCost()
    const softmax = needsSoftmax(model, compat ? true : undefined)
    const scores = await scoreRegionRows(model, d, maps, ranked, rows, softmax, o, cost)
    const first = compat ? 1 : 0
    const points = steps + 1 - first
    const curve = new Float64Array(d.n * points)
    for (let s = 0; s < d.n; s++) {
      const y0 = scores[s * (steps + 1)]!
      for (let k = first; k <= steps; k++) {
        const f = scores[s * (steps + 1) + k]!
        // Quantus subtracts float32 probabilities.
        curve[s * points + k - first] = compat ? Math.fround(Math.fround(y0) - Math.fround(f)) : y0 - f
      }
    }
    const x = Float64Array.from({ length: points }, (_, i) => i + first)
    return this.shard(o.firstSample, d.n, { curve: { width: points, values: curve } }, cost, { x, patches: maps.patches })
  }

  protected finish(m: Merged): CurveResult {
    const { width: points, values } = column(m, 'curve')
    const x = m.common.x as Float64Array
    let scores: Float64Array
    if (this.params.compat) {
      scores = areas(values, new Float64Array(), points)
    } else {
      scores = new Float64Array(m.samples)
      for (let s = 0; s < m.samples; s++) {
        let sum = 0
        for (let k = 0; k < points; k++) sum += values[s * points + k]!
        scores[s] = sum / points
      }
    }
    return this.result(m, scores, { curves: { [this.params.order]: { x, values, points } } })
  }
}
