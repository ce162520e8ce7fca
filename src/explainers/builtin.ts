// Built-in gradient-free explainers for any model: occlusion (Zeiler & Fergus 2014), RISE
// (Petsiuk et al. 2018) and permutation-sampling Shapley values over patches (Castro et al. 2009;
// Štrumbelj & Kononenko 2014). Each is "masked rows, then a weighted sum of masks": the masks and
// rows are built in the Rust core, every (sample, mask) row of a call goes through the engine in
// model-sized batches, and the model's score of each row's target class weights the masks.
//
// Gradient methods (saliency, Integrated Gradients, Grad-CAM) are not built in: ONNX Runtime runs
// inference only and has no autograd. Supply them as an explainer callback (e.g. one that calls
// your PyTorch model or a Python service), or export an ONNX graph that outputs the gradient and
// wrap it in an explainer that runs that graph.
import { needsSoftmax, type Plan, run } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import { type Baseline, baselineSchema, baselineSpec } from '../metrics/baseline.js'
import { newCost } from '../metrics/protocol.js'
import type { Model } from '../models/model.js'
import { computeBaselines, fillMaskRows, maskSums, occlusionMasks, patchGrid, riseMasks, shapleyMasks } from '../native.js'
import { parseOptions, seed, z } from '../options.js'
import type { Explainer, NamedExplainer, Shape4 } from './explainer.js'

/** Masks × pixels above this (floats) are refused: the masks alone would take over 256 MiB. */
export const MAX_MASK_VALUES = 1 << 26

const CLEAN = 0xffffffff

/** Baselines an explainer may use: every non-random one (a random baseline would make maps depend on batches). */
const explainerBaseline = baselineSchema.refine((b) => typeof b !== 'object' || !('uniform' in b), {
  message: 'a random baseline is not available to explainers (their calls carry no sample index)',
})

function checkCall(x: Float32Array, shape: Shape4, targets: Int32Array, who: string): void {
  const [n, c, h, w] = shape
  if (x.length !== n * c * h * w || targets.length !== n) {
    throw new XaiEvalError('SHAPE_MISMATCH', who, `got ${x.length} values and ${targets.length} targets for shape [${shape.join(', ')}]`)
  }
  const bad = targets.findIndex((t) => t < 0)
  if (bad >= 0) throw new XaiEvalError('INVALID_OPTION', who, `target ${targets[bad]} of row ${bad} is not a class index`)
}

function checkMasks(count: number, h: number, w: number, who: string): void {
  if (count * h * w > MAX_MASK_VALUES) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      who,
      `${count} masks of ${h}×${w} exceed ${MAX_MASK_VALUES} values (256 MiB): use fewer masks or a larger patch`,
    )
  }
}

/**
 * Scores of every (sample, mask) row — and of each clean input when `clean` — for the rows'
 * targets: `[N, M (+1)]`, the clean score last.
 */
async function maskedScores(
  model: Model,
  x: Float32Array,
  shape: Shape4,
  targets: Int32Array,
  masks: Float32Array,
  keep: boolean,
  baseline: Baseline,
  clean: boolean,
  signal: AbortSignal | undefined,
): Promise<Float64Array> {
  const [n, c, h, w] = shape
  const m = masks.length / (h * w)
  const k = m + (clean ? 1 : 0)
  const baselines = await computeBaselines(x, [n, c, h, w], baselineSpec(baseline, 0), 0, signal)
  const plan: Plan = {
    rows: n * k,
    build(start, end, out, rowTargets, sig) {
      const pairs = new Uint32Array(2 * (end - start))
      for (let r = start; r < end; r++) {
        const s = Math.floor(r / k)
        const j = r % k
        pairs[2 * (r - start)] = s
        pairs[2 * (r - start) + 1] = j === m ? CLEAN : j
        rowTargets[r - start] = targets[s]!
      }
      return fillMaskRows(x, baselines, [n, c, h, w], masks, keep, pairs, out, sig)
    },
  }
  const scores = new Float64Array(n * k)
  await run(
    model,
    [c, h, w],
    plan,
    needsSoftmax(model),
    ({ start, scores: s }) => scores.set(s, start),
    signal ? { signal } : {},
    newCost(),
  )
  return scores
}

const occlusionSchema = z.strictObject({
  /** Side of the square occluding window, in pixels (default 8). */
  patch: z.int().min(1).max(4096).default(8),
  /** Step between windows in pixels (default: the patch, non-overlapping windows). */
  stride: z.int().min(1).max(4096).optional(),
  /** What the window is filled with (default 0). */
  baseline: explainerBaseline.default(0),
  name: z.string().optional(),
})
export type OcclusionOptions = z.input<typeof occlusionSchema>

/**
 * Occlusion: each pixel's attribution is the mean drop of the target score over the windows that
 * cover it, `a[p] = Σ_m (f(x) − f(x_m))·[p ∈ m] / Σ_m [p ∈ m]`. Windows every `stride` pixels, the
 * last flush with the edge. Cost per sample: one row per window plus the clean input.
 */
export function occlusion(options?: OcclusionOptions): NamedExplainer {
  const o = parseOptions(occlusionSchema, options)
  const stride = o.stride ?? o.patch
  const name = o.name ?? `occlusion(patch=${o.patch},stride=${stride})`
  const explain: Explainer = async (model, x, shape, targets, { signal }) => {
    checkCall(x, shape, targets, name)
    const [n, , h, w] = shape
    if (o.patch > Math.min(h, w)) throw new XaiEvalError('INVALID_OPTION', 'patch', `${o.patch} exceeds the ${h}×${w} input`)
    const masks = occlusionMasks(h, w, o.patch, stride)
    const m = masks.length / (h * w)
    checkMasks(m, h, w, name)
    const scores = await maskedScores(model, x, shape, targets, masks, false, o.baseline, true, signal)
    const coef = new Float64Array(n * m)
    for (let s = 0; s < n; s++) {
      const f0 = scores[s * (m + 1) + m]!
      for (let j = 0; j < m; j++) coef[s * m + j] = f0 - scores[s * (m + 1) + j]!
    }
    const sums = maskSums(coef, n, masks, h * w)
    const cover = maskSums(new Float64Array(m).fill(1), 1, masks, h * w)
    const out = new Float32Array(n * h * w)
    for (let i = 0; i < out.length; i++) out[i] = sums[i]! / cover[i % (h * w)]!
    return out
  }
  return Object.freeze({ name, explain })
}

const riseSchema = z.strictObject({
  /** Number of random masks (default 1000; the paper uses 4000–8000 on ImageNet). */
  masks: z.int().min(1).max(100_000).default(1000),
  /** Grid cells per side before upsampling (the paper's s, default 7). */
  cell: z.int().min(1).max(1024).default(7),
  /** Probability that a cell is kept (default 0.5). */
  p: z.number().gt(0).max(1).default(0.5),
  seed: seed.default(0),
  /** What masked-out pixels become (default 0). */
  baseline: explainerBaseline.default(0),
  name: z.string().optional(),
})
export type RiseOptions = z.input<typeof riseSchema>

/**
 * RISE: `a[p] = Σ_m f(x ⊙ M_m)·M_m[p] / (masks·p)` with soft masks upsampled from random
 * `cell × cell` grids. The masks are shared by every sample and keyed by `(seed, mask index)`
 * (`Purpose::Mask`): the same maps whatever the batch or shard. Cost: `masks` rows per sample.
 */
export function rise(options?: RiseOptions): NamedExplainer {
  const o = parseOptions(riseSchema, options)
  const name = o.name ?? `rise(masks=${o.masks},cell=${o.cell},p=${o.p},seed=${o.seed})`
  let cached: { key: string; masks: Float32Array } | undefined
  const explain: Explainer = async (model, x, shape, targets, { signal }) => {
    checkCall(x, shape, targets, name)
    const [n, , h, w] = shape
    if (o.cell > Math.min(h, w)) throw new XaiEvalError('INVALID_OPTION', 'cell', `${o.cell} cells per side exceed the ${h}×${w} input`)
    checkMasks(o.masks, h, w, name)
    const key = `${h}x${w}`
    if (cached?.key !== key) cached = { key, masks: riseMasks(o.seed, o.masks, o.cell, o.p, h, w) }
    const { masks } = cached
    const scores = await maskedScores(model, x, shape, targets, masks, true, o.baseline, false, signal)
    const norm = 1 / (o.masks * o.p)
    const sums = maskSums(
      scores.map((v) => v * norm),
      n,
      masks,
      h * w,
    )
    return Float32Array.from(sums)
  }
  return Object.freeze({ name, explain })
}

const shapleySchema = z.strictObject({
  /** Side of the square patches that are the players (default 4). */
  patch: z.int().min(1).max(4096).default(4),
  /** Sampled permutations of the patches (default 16). */
  permutations: z.int().min(1).max(10_000).default(16),
  seed: seed.default(0),
  /** What absent patches become (default 0). */
  baseline: explainerBaseline.default(0),
  name: z.string().optional(),
})
export type ShapleyOptions = z.input<typeof shapleySchema>

/**
 * Shapley values of square patches by permutation sampling (Castro et al. 2009): for each sampled
 * permutation the patches are added to the baseline one at a time and each patch gets its marginal
 * change of the target score; `φ_g` is the mean over permutations, spread evenly over the patch's
 * pixels, so the map sums to `f(x) − f(baseline)` (efficiency). Permutations are shared by every
 * sample and keyed by `(seed, permutation index)`. Cost: `permutations·(patches + 1)` rows per sample.
 */
export function shapley(options?: ShapleyOptions): NamedExplainer {
  const o = parseOptions(shapleySchema, options)
  const name = o.name ?? `shapley(patch=${o.patch},permutations=${o.permutations},seed=${o.seed})`
  const explain: Explainer = async (model, x, shape, targets, { signal }) => {
    checkCall(x, shape, targets, name)
    const [n, , h, w] = shape
    const grid = patchGrid(h, w, o.patch, false)
    const groups = grid.rows * grid.cols
    checkMasks(o.permutations * (groups + 1), h, w, name)
    const { masks, orders } = shapleyMasks(o.seed, o.permutations, grid.labels, groups)
    const k = o.permutations * (groups + 1)
    const scores = await maskedScores(model, x, shape, targets, masks, true, o.baseline, false, signal)
    const area = new Float64Array(groups)
    for (const l of grid.labels) area[l]!++
    const out = new Float32Array(n * h * w)
    const phi = new Float64Array(groups)
    for (let s = 0; s < n; s++) {
      phi.fill(0)
      for (let j = 0; j < o.permutations; j++) {
        const row = s * k + j * (groups + 1)
        for (let g = 0; g < groups; g++) phi[orders[j * groups + g]!]! += scores[row + g + 1]! - scores[row + g]!
      }
      for (let p = 0; p < h * w; p++) {
        const g = grid.labels[p]!
        out[s * h * w + p] = phi[g]! / (o.permutations * area[g]!)
      }
    }
    return out
  }
  return Object.freeze({ name, explain })
}
