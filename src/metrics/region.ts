// The rows of the region-perturbation metrics (RegionPerturbation, Selectivity, IROF): pixels
// grouped into regions (square patches or superpixels), regions ranked per sample, and row
// (sample, count) = the sample with the first `count` regions of its order replaced, in every
// channel, by its baseline snapshot. Orders differ per sample, so this is not `scoreCurves`'s
// ranked-feature plan: the core builds these rows (`xai_eval_core::region`), batched across samples
// and steps, and the baselines are snapshotted once per sample, keyed by its global index.
import { type Plan, run, type RunOptions } from '../engine.js'
import type { Model } from '../models/model.js'
import { type BaselineSpec, computeBaselines, fillRegionRows, patchGrid, regionOrders } from '../native.js'
import { type Checked, layoutOf } from '../validate.js'
import type { Cost } from './protocol.js'

/** Region maps: `[H·W]` shared by every sample (a patch grid) or `[N, H·W]` (superpixels). */
export interface RegionMaps {
  labels: Uint32Array
  shared: boolean
}

export interface RegionSetup {
  maps: RegionMaps
  /** How a region's attribution is summarised: the sum (patches) or the mean (superpixels) of its entries. */
  reduce: 'sum' | 'mean'
  order: 'morf' | 'lerf' | 'random'
  abs: boolean
  seed: number
  baseline: BaselineSpec
  /** Global index of the shard's first sample: keys random orders and random baselines. */
  firstSample: number
  /** Most regions a sample may have (a bound on memory). */
  maxRegions: number
}

/** Ranked regions of a shard. */
export interface Ranked {
  /** `[N, width]` region ids, padded past each sample's count. */
  orders: Uint32Array
  /** Regions of each sample. */
  counts: Uint32Array
  width: number
  baselines: Float32Array
}

export async function rankRegions(d: Checked, s: RegionSetup, signal?: AbortSignal): Promise<Ranked> {
  const shape = [d.n, d.channels, d.height, d.width]
  const [r, baselines] = await Promise.all([
    regionOrders(
      d.a,
      d.n,
      layoutOf(d, 'entry'),
      s.maps.labels,
      s.maps.shared,
      s.reduce,
      s.abs,
      s.order,
      s.seed,
      s.firstSample,
      s.maxRegions,
      signal,
    ),
    computeBaselines(d.x, shape, s.baseline, s.firstSample, signal),
  ])
  return { ...r, baselines }
}

/**
 * The rows of every sample's curve, sample-major: sample s owns rows `offsets[s] … offsets[s + 1])`,
 * its row j removing `first + j` regions (j = 0 … `counts[s] − first`). Only `N + 1` offsets are
 * stored, whatever the number of rows.
 */
export interface CurveRows {
  offsets: Float64Array
  first: number
  rows: number
}

export function curveRows(counts: ArrayLike<number>, first: number): CurveRows {
  const offsets = new Float64Array(counts.length + 1)
  for (let s = 0; s < counts.length; s++) offsets[s + 1] = offsets[s]! + Math.max(0, counts[s]! - first + 1)
  return { offsets, first, rows: offsets[counts.length]! }
}

/** The sample owning row `r`: the last s with `offsets[s] ≤ r`. */
function sampleOf(offsets: Float64Array, r: number): number {
  let lo = 0
  let hi = offsets.length - 2
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (offsets[mid]! <= r) lo = mid
    else hi = mid - 1
  }
  return lo
}

/**
 * Scores the rows of `rows` (a sample's rows contiguous and in curve order, so the core builds each
 * from the previous one) for the label of the row's sample; returns one score per row.
 */
export async function scoreRegionRows(
  model: Model,
  d: Checked,
  maps: RegionMaps,
  ranked: Ranked,
  rows: CurveRows,
  softmax: boolean,
  options: RunOptions,
  cost: Cost,
): Promise<Float64Array> {
  const shape = [d.n, d.channels, d.height, d.width]
  const { offsets, first } = rows
  const plan: Plan = {
    rows: rows.rows,
    build(start, end, out, targets, signal) {
      const pairs = new Uint32Array(2 * (end - start))
      let s = sampleOf(offsets, start)
      for (let r = start; r < end; r++) {
        while (r >= offsets[s + 1]!) s++
        const i = r - start
        pairs[2 * i] = s
        pairs[2 * i + 1] = first + r - offsets[s]!
        targets[i] = d.y[s]!
      }
      return fillRegionRows(d.x, ranked.baselines, shape, maps.labels, maps.shared, ranked.orders, ranked.width, pairs, out, signal)
    },
  }
  const scores = new Float64Array(plan.rows)
  await run(
    model,
    [d.channels, d.height, d.width],
    plan,
    softmax,
    ({ start, scores: s }) => {
      scores.set(s, start)
    },
    options,
    cost,
  )
  return scores
}

/** Largest patch side accepted (a bound on the options, not on the images). */
export const MAX_PATCH = 4096

/**
 * The patch grid of a data set: the paper's (blocks from the top-left pixel, smaller patches at the
 * right and bottom edges where `patchSize` does not divide the side) or, with `quantus`, Quantus's
 * (blocks on the image padded by `t = (ps − side % ps) % ps`, ⌊t/2⌋ before and ⌈t/2⌉ after; a
 * patch is the block's part inside the image).
 */
export function patchMaps(d: Checked, patchSize: number, quantus: boolean): RegionMaps & { patches: number } {
  const g = patchGrid(d.height, d.width, patchSize, quantus)
  return { labels: g.labels, shared: true, patches: g.rows * g.cols }
}
