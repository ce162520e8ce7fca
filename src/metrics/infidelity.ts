import { needsSoftmax, type Plan, run } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { computeBaselines, infidelityRows } from '../native.js'
import { count, seed, z } from '../options.js'
import { type Checked, rowShape } from '../validate.js'
import { type Baseline, baselineSchema } from './baseline.js'
import { type CheckedMapOptions, column, type Merged, Metric, type MetricResult, newCost, type Shard } from './protocol.js'
import { curveBaselineSpec } from './quantus.js'

/** Row kinds of `xai_eval_core::infidelity`. */
const CLEAN = 0
const GAUSSIAN = 1
const SQUARE = 2
const PATCHES = 3

const DEFAULTS = { perturbation: 'gaussian', sigma: 0.1, maxSide: 10, draws: 100 } as const

const schema = z
  .strictObject({
    /**
     * The perturbations `I` (default `'gaussian'`): `'gaussian'` is Yeh et al.'s noisy baseline,
     * `I ~ N(0, sigma²)` on every entry; `'square'` is their square removal, one square of random
     * side `1…maxSide` at a random position set to `baseline` (all channels), `I = x − x̃`.
     */
    perturbation: z.enum(['gaussian', 'square']).optional(),
    /** Standard deviation of Gaussian perturbations, in input units (default 0.1). */
    sigma: z.number().positive().max(1e6).optional(),
    /** Largest side of a removed square in pixels (default 10, clamped to min(H, W)). */
    maxSide: z.int().min(1).max(65_536).optional(),
    /**
     * What a removed square becomes (default 0), or, with `compat: 'quantus'`, a removed patch
     * (default Quantus's `'black'`, the sample minimum; also `'white'`, `'min'`, `'max'`, a number).
     */
    baseline: z.union([baselineSchema, z.enum(['black', 'white'])]).optional(),
    /** Perturbations drawn per sample (default 100): the expectation is their mean. */
    draws: count(100_000).optional(),
    /**
     * Scale the attribution by the least-squares factor β = Σ Iᵀa·Δ / Σ (Iᵀa)² before measuring
     * (default false): the "optimal scaling" of Yeh et al.'s experiments (Captum's `normalize`),
     * which makes the score invariant to the attribution's scale.
     */
    normalize: z.boolean().optional(),
    /** Score softmax probabilities instead of the model's logits (default false: logits, as Quantus). */
    softmax: z.boolean().default(false),
    /** Seed of the perturbations (default 0). */
    seed: seed.default(0),
    /** Quantus's `perturb_patch_sizes` (default [4]); only with `compat: 'quantus'`. */
    patchSizes: z.array(z.int().min(1).max(65_536)).min(1).max(64).optional(),
    /**
     * `'quantus'` reproduces quantus.Infidelity 0.6 (`loss_func="mse"`, `normalise=False`,
     * `abs=False` — pass the attributions Quantus would see): a deterministic cumulative
     * patch-replacement curve, not Yeh et al.'s random infidelity (see the class comment).
     */
    compat: z.enum(['quantus']).optional(),
  })
  .superRefine((o, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message })
    const b = o.baseline
    if (o.compat) {
      for (const k of ['perturbation', 'sigma', 'maxSide', 'draws', 'normalize'] as const) {
        if (o[k] !== undefined) issue(k, "is not an option of Quantus's Infidelity (compat: 'quantus')")
      }
      if (b !== undefined && typeof b !== 'number' && !['black', 'white', 'min', 'max'].includes(b as string)) {
        issue(
          'baseline',
          b === 'mean'
            ? "Quantus's 'mean' drifts with each replaced patch and is not reproduced; use 'black', 'white' or a number"
            : "expected 'black', 'white' or a number with compat: 'quantus'",
        )
      }
      return
    }
    if (o.patchSizes !== undefined) issue('patchSizes', "only with compat: 'quantus' (the paper draws perturbations, see `perturbation`)")
    const square = o.perturbation === 'square'
    if (!square && o.maxSide !== undefined) issue('maxSide', "applies to perturbation: 'square' only")
    if (!square && b !== undefined) issue('baseline', "applies to perturbation: 'square' only (Gaussian noise has no baseline)")
    if (square && o.sigma !== undefined) issue('sigma', "applies to perturbation: 'gaussian' only")
    if (b === 'black' || b === 'white') {
      issue(
        'baseline',
        `'${b}' is Quantus's name for the sample ${b === 'black' ? 'minimum' : 'maximum'}: say '${b === 'black' ? 'min' : 'max'}', or set compat: 'quantus'`,
      )
    }
  })
  .transform((o): InfidelityParams => {
    if (o.compat) {
      const { perturbation: _p, sigma: _s, maxSide: _m, draws: _d, normalize: _n, ...rest } = o
      return { ...rest, baseline: o.baseline ?? ('black' as const), patchSizes: o.patchSizes ?? [4] }
    }
    const perturbation = o.perturbation ?? DEFAULTS.perturbation
    const { patchSizes: _ps, sigma, maxSide, baseline, ...rest } = o
    return {
      ...rest,
      perturbation,
      ...(perturbation === 'gaussian'
        ? { sigma: sigma ?? DEFAULTS.sigma }
        : { maxSide: maxSide ?? DEFAULTS.maxSide, baseline: baseline ?? 0 }),
      draws: o.draws ?? DEFAULTS.draws,
      normalize: o.normalize ?? false,
    }
  })

export type InfidelityOptions = z.input<typeof schema>

/** The validated options: only those that apply to the chosen mode and perturbation are present. */
export interface InfidelityParams {
  perturbation?: 'gaussian' | 'square'
  sigma?: number
  maxSide?: number
  baseline?: Baseline | 'black' | 'white'
  draws?: number
  normalize?: boolean
  softmax: boolean
  seed: number
  patchSizes?: number[]
  compat?: 'quantus'
}

export interface InfidelityResult extends MetricResult {}

/**
 * Infidelity (Yeh, Hsieh, Suggala, Inouye & Ravikumar, NeurIPS 2019, Definition 2.1): how badly
 * the attribution's linear prediction `Iᵀa` matches the change of the model's output under a
 * perturbation `I`,
 *
 *   INFD(a, f, x) = E_I[(Iᵀa − (f(x) − f(x − I)))²],
 *
 * estimated per sample by the mean over `draws` perturbations (lower is better). `f` is the
 * label's logit (or its probability with `softmax: true`). Perturbations are Gaussian noise
 * (`sigma`) or random squares set to `baseline` (`perturbation: 'square'`), drawn from
 * `Rng::keyed(seed, global sample, Perturbation, draw)`, so a sample's score does not depend on how
 * the data set is batched or sharded. `I` is the difference the model actually sees, `x − x̃`
 * after rounding `x̃` to float32. An `[N, 1, H, W]` attribution is broadcast over channels.
 * With `normalize: true` each sample's attribution is first rescaled by the least-squares β (Yeh
 * et al.'s experiments; Captum's `normalize`); when every `Iᵀa` is 0 there is nothing to scale and
 * the score is the mean of `Δ²`.
 *
 * `compat: 'quantus'` computes what quantus.Infidelity 0.6 computes, which is not the paper's
 * random infidelity (quantus-semantics §1.7): for every patch size `ps`, the `ps × ps` patches of
 * the row-major grid (all channels) are replaced **cumulatively** by the baseline, `δ_j = f(x) −
 * f(x̃_j)` and `s_j = Σ a·(x − x̃_j)` after patch j, loss(ps) = mean_j (δ_j − s_j)², and the score
 * is the mean over `patchSizes` (duplicates counted). Quantus repeats this `n_perturb_samples`
 * times; with its deterministic baselines every repetition is identical, so each distinct row is
 * evaluated once and the option does not exist here. H and W must be multiples of every patch size
 * (Quantus perturbs the unpadded array with indices of a padded grid otherwise: typed error).
 * Differences: sums in float64 (Quantus: float32); `'mean'` (which drifts) and `'uniform'` are
 * refused.
 *
 * Cost: `1 + draws` rows per sample; compat `1 + Σ (H/ps)·(W/ps)` over distinct patch sizes.
 */
export class Infidelity extends Metric<InfidelityParams, InfidelityResult> {
  static readonly meta = {
    id: 'infidelity',
    name: 'Infidelity',
    higherIsBetter: false,
    needs: ['attributions'],
    version: 1,
    cost: '1 + draws rows (compat: 1 + Σ (H/ps)·(W/ps))',
    reference: 'Yeh et al., NeurIPS 2019; quantus.Infidelity 0.6',
  } as const

  constructor(options?: InfidelityOptions) {
    super(schema, options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const p = this.params
    const shape = [d.n, d.channels, d.height, d.width]
    // Each sample's rows, `[kind, a, b]`: the clean row first.
    const perSample: [number, number, number][] = [[CLEAN, 0, 0]]
    let sizes: number[] = []
    const patchSizes = p.patchSizes ?? []
    if (p.compat) {
      for (const ps of patchSizes) {
        if (d.height % ps !== 0 || d.width % ps !== 0) {
          throw new XaiEvalError(
            'INVALID_OPTION',
            'patchSizes',
            `Quantus's Infidelity needs H (${d.height}) and W (${d.width}) to be multiples of every patch size (got ${ps}): it perturbs the unpadded input with indices of the padded grid`,
          )
        }
      }
      sizes = [...new Set(patchSizes)]
      for (const ps of sizes) {
        const patches = (d.height / ps) * (d.width / ps)
        for (let j = 1; j <= patches; j++) perSample.push([PATCHES, ps, j])
      }
    } else {
      const kind = p.perturbation === 'square' ? SQUARE : GAUSSIAN
      for (let draw = 0; draw < (p.draws ?? 0); draw++) perSample.push([kind, draw, 0])
    }
    const k = perSample.length
    const needsBaseline = p.compat || p.perturbation === 'square'
    const baselines =
      needsBaseline && p.baseline !== undefined
        ? await computeBaselines(d.x, shape, curveBaselineSpec(p.baseline, p.seed), o.firstSample, o.signal)
        : new Float32Array()
    const spec = {
      shape,
      attrChannels: d.attrChannels,
      firstSample: o.firstSample,
      seed: p.seed,
      sigma: p.sigma ?? 0,
      maxSide: p.maxSide ?? 1,
    }
    const dots = new Float64Array(d.n * k)
    const values = new Float64Array(d.n * k)
    const plan: Plan = {
      rows: d.n * k,
      build: async (start, end, out, targets, signal) => {
        const quads = new Uint32Array(4 * (end - start))
        for (let r = start; r < end; r++) {
          const i = r - start
          const s = Math.floor(r / k)
          const [kind, a, b] = perSample[r % k]!
          quads.set([s, kind, a, b], 4 * i)
          targets[i] = d.y[s]!
        }
        dots.set(await infidelityRows(d.x, d.a, baselines, quads, spec, out, signal), start)
      },
    }
    const cost = newCost()
    await run(model, rowShape(d), plan, needsSoftmax(model, p.softmax), ({ start, scores }) => values.set(scores, start), o, cost)

    const score = new Float64Array(d.n)
    for (let s = 0; s < d.n; s++) {
      const y0 = values[s * k]!
      const delta = (j: number) => y0 - values[s * k + j]!
      const dot = (j: number) => dots[s * k + j]!
      if (p.compat) {
        // Rows 1… hold the patch sizes' curves one after another, in `sizes` order.
        const loss = new Map<number, number>()
        let j = 1
        for (const ps of sizes) {
          const patches = (d.height / ps) * (d.width / ps)
          let sum = 0
          for (let q = 0; q < patches; q++, j++) sum += (delta(j) - dot(j)) ** 2
          loss.set(ps, sum / patches)
        }
        score[s] = patchSizes.reduce((acc, ps) => acc + loss.get(ps)!, 0) / patchSizes.length
      } else {
        let beta = 1
        if (p.normalize) {
          let num = 0
          let den = 0
          for (let j = 1; j < k; j++) {
            num += dot(j) * delta(j)
            den += dot(j) ** 2
          }
          if (den > 0) beta = num / den
        }
        let sum = 0
        for (let j = 1; j < k; j++) sum += (beta * dot(j) - delta(j)) ** 2
        score[s] = sum / (k - 1)
      }
    }
    return this.shard(o.firstSample, d.n, { score: { width: 1, values: score } }, cost)
  }

  protected finish(m: Merged): InfidelityResult {
    return this.result(m, column(m, 'score').values, {})
  }
}
