// Robustness of explanations to input noise: SensitivityN (autotimm's `sensitivity_n`), and
// MaxSensitivity / AvgSensitivity (Yeh et al. 2019, as Quantus 0.6.0 computes them). Each sample
// gets `draws` noisy copies keyed by (seed, global sample, draw) in the Rust core; all noisy copies
// of all samples are explained in a few large explainer calls (the explainer's batch size), and
// each copy's explanation is compared with the sample's reference explanation, the data set's `a`.
import { XaiEvalError } from '../errors.js'
import {
  type CheckedExplainer,
  checkExplainer,
  type ExplainerLike,
  explainerName,
  explainerOption,
  explainRows,
} from '../explainers/explainer.js'
import type { Model } from '../models/model.js'
import { needsSoftmax, type Plan, run } from '../engine.js'
import { noisyRows } from '../native.js'
import { seed, z } from '../options.js'
import type { Checked } from '../validate.js'
import type { UndefinedScore } from './correlation.js'
import { type CheckedMapOptions, column, type Merged, Metric, type MetricMeta, type MetricResult, newCost, type Shard } from './protocol.js'

/** Noise of one family of draws. */
type NoiseSpec = { kind: 'gaussian'; sigma: number; mean?: number } | { kind: 'uniform'; low: number; high: number }

/**
 * Per-draw statistic of a reference explanation `a`, a noisy one `b` (same length) and the draw's
 * input statistic; `row` is the draw's index in the shard's `[N, draws]` output.
 */
type Compare = (a: Float32Array, b: Float32Array, inputStat: number, row: number) => number

/**
 * Explains every noisy copy of every sample and compares it with the sample's reference:
 * `[N, draws]` values of `compare`. Rows are (sample, draw) in sample-major order; explainer calls
 * take `explainer.batchSize` rows each.
 */
async function noisyComparisons(
  explainer: CheckedExplainer,
  model: Model,
  d: Checked,
  o: CheckedMapOptions,
  seedValue: number,
  draws: number,
  noise: NoiseSpec,
  compare: Compare,
  /** A statistic of each clean row and its noisy copy (e.g. the noise's norm), handed to `compare`. */
  inputStat?: (x: Float32Array, noisy: Float32Array) => number,
): Promise<Float64Array> {
  const per = d.attrChannels * d.height * d.width
  const out = new Float64Array(d.n * draws)
  const [a, b] = noise.kind === 'gaussian' ? [noise.sigma, noise.mean ?? 0] : [noise.low, noise.high]
  const len = d.channels * d.height * d.width
  /** `inputStat` of every row, measured on the float32 rows the explainer gets. */
  const inputStats = new Float64Array(d.n * draws)
  await explainRows(
    explainer,
    model,
    [d.channels, d.height, d.width],
    d.n * draws,
    async (start, end, x, targets) => {
      const rows = new Uint32Array(2 * (end - start))
      for (let r = start; r < end; r++) {
        const s = Math.floor(r / draws)
        rows[2 * (r - start)] = s
        rows[2 * (r - start) + 1] = r % draws
        targets[r - start] = d.y[s]!
      }
      await noisyRows(d.x, d.n, o.firstSample, seedValue, noise.kind, a, b, rows, x, o.signal)
      if (inputStat) {
        for (let r = start; r < end; r++) {
          const s = Math.floor(r / draws)
          inputStats[r] = inputStat(d.x.subarray(s * len, (s + 1) * len), x.subarray((r - start) * len, (r - start + 1) * len))
        }
      }
      return undefined
    },
    (start, { a: explained, channels }) => {
      if (channels !== d.attrChannels) {
        throw new XaiEvalError(
          'SHAPE_MISMATCH',
          `explainer '${explainer.name}'`,
          `returned ${channels}-channel maps, the data set's attributions have ${d.attrChannels} (aShape): compare like with like`,
        )
      }
      const rows = explained.length / per
      for (let i = 0; i < rows; i++) {
        const r = start + i
        const s = Math.floor(r / draws)
        out[r] = compare(d.a.subarray(s * per, (s + 1) * per), explained.subarray(i * per, (i + 1) * per), inputStats[r]!, r)
      }
    },
    o.signal,
  )
  return out
}

const explainerField = explainerOption.transform(explainerName)

/** Keeps the explainer itself next to the params (which hold only its name). */
function explainerOf(options: unknown): CheckedExplainer {
  return checkExplainer((options as { explainer?: unknown } | undefined)?.explainer)
}

/** `compat` and Quantus's `batch_size`, shared by the metrics whose Quantus numbers depend on the batch. */
const compatFields = {
  /** `'quantus'` reproduces quantus 0.6.0 (see the class comment). */
  compat: z.enum(['quantus']).optional(),
  /**
   * Quantus's `batch_size` (default 64 with compat): with `normalise`, Quantus divides the noisy
   * explanations of each batch of consecutive samples (at each draw) by one maximum. Only with
   * `compat: 'quantus'`.
   */
  batchSize: z.int().min(1).max(1_000_000).optional(),
}

function checkCompatBatch(o: { batchSize?: number; compat?: string }, ctx: z.RefinementCtx): void {
  if (o.batchSize !== undefined && !o.compat) {
    ctx.addIssue({
      code: 'custom',
      path: ['batchSize'],
      message: "only with compat: 'quantus' (the default normalises each map by itself, so batches do not matter)",
    })
  }
}

function maxAbs(a: Float32Array): number {
  let m = 0
  for (const v of a) if (Math.abs(v) > m) m = Math.abs(v)
  return m
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return s
}

/**
 * Quantus's normalisation by maximum, reproduced across shards. Quantus divides the reference maps
 * by one maximum |value| over the whole data set it is called with, and the noisy explanations of
 * each batch at each draw by one maximum over that batch (an all-zero array is left as it is), so
 * a shard alone cannot normalise. Each shard keeps, per sample, `‖a‖²` and `max |a|`, and per draw
 * `a·ã`, `‖ã‖²` and `max |ã|`; the reduce finds the maxima and rebuilds
 * `‖a/M − ã/m‖² = ‖a‖²/M² − 2 a·ã/(M m) + ‖ã‖²/m²` in float64 (a change below ~1e-7 of the maps'
 * norm is not resolved). Batches are `batchSize` consecutive samples counted from the first sample
 * evaluated, as Quantus's batches of the array it is given.
 */
const batchNormalised = {
  /** The columns of a shard; `compare` returns `a·ã` and records `‖ã‖²` and `max |ã|`. */
  collect(d: Checked, draws: number) {
    const per = d.attrChannels * d.height * d.width
    const aa = new Float64Array(d.n)
    const maxA = new Float64Array(d.n)
    for (let s = 0; s < d.n; s++) {
      const a = d.a.subarray(s * per, (s + 1) * per)
      aa[s] = dot(a, a)
      maxA[s] = maxAbs(a)
    }
    const bb = new Float64Array(d.n * draws)
    const maxB = new Float64Array(d.n * draws)
    const compare: Compare = (a, b, _stat, r) => {
      bb[r] = dot(b, b)
      maxB[r] = maxAbs(b)
      return dot(a, b)
    }
    const columns = (ab: Float64Array) => ({
      aa: { width: 1, values: aa },
      maxA: { width: 1, values: maxA },
      ab: { width: draws, values: ab },
      bb: { width: draws, values: bb },
      maxB: { width: draws, values: maxB },
    })
    return { compare, columns }
  },
  /** `[N, draws]` distances `‖a/M − ã/m‖₂` and `[N]` reference norms `‖a/M‖₂` of the merged data set. */
  distances(merged: Merged, batchSize: number): { distances: Float64Array; referenceNorms: Float64Array } {
    const n = merged.samples
    const aa = column(merged, 'aa').values
    const maxA = column(merged, 'maxA').values
    const { width: k, values: ab } = column(merged, 'ab')
    const bb = column(merged, 'bb').values
    const maxB = column(merged, 'maxB').values
    let big = 0
    for (const v of maxA) if (v > big) big = v
    const M = big === 0 ? 1 : big
    const distances = new Float64Array(n * k)
    for (let b0 = 0; b0 < n; b0 += batchSize) {
      const b1 = Math.min(n, b0 + batchSize)
      for (let t = 0; t < k; t++) {
        let most = 0
        for (let s = b0; s < b1; s++) if (maxB[s * k + t]! > most) most = maxB[s * k + t]!
        const m = most === 0 ? 1 : most
        for (let s = b0; s < b1; s++) {
          const r = s * k + t
          distances[r] = Math.sqrt(Math.max(0, aa[s]! / (M * M) - (2 * ab[r]!) / (M * m) + bb[r]! / (m * m)))
        }
      }
    }
    return { distances, referenceNorms: Float64Array.from(aa, (v) => Math.sqrt(v) / M) }
  },
}

/** NaN-ignoring max and mean (NumPy's `nanmax`/`nanmean`; NaN when every value is NaN). */
function nanMax(values: Float64Array): number {
  let m = Number.NaN
  for (const v of values) if (!Number.isNaN(v) && !(v <= m)) m = v
  return m
}

function nanMean(values: Float64Array): number {
  let s = 0
  let c = 0
  for (const v of values) {
    if (Number.isNaN(v)) continue
    s += v
    c++
  }
  return c === 0 ? Number.NaN : s / c
}

/**
 * Which noisy copies change the model's predicted class (1 = changed), `[N, draws]`: Quantus's
 * `return_nan_when_prediction_changes`. The clean rows and every (sample, draw) noisy row (the
 * same keyed noise the explainer saw) go through the engine in one plan; targets −1 score the argmax.
 */
async function predictionChanges(
  model: Model,
  d: Checked,
  o: CheckedMapOptions,
  seedValue: number,
  noise: NoiseSpec,
  draws: number,
  cost: ReturnType<typeof newCost>,
): Promise<Float64Array> {
  const [a, b] = noise.kind === 'gaussian' ? [noise.sigma, noise.mean ?? 0] : [noise.low, noise.high]
  const k = draws
  const len = d.channels * d.height * d.width
  const plan: Plan = {
    rows: d.n * (1 + k),
    async build(start, end, out, targets, signal) {
      targets.fill(-1)
      const noisy: number[] = []
      for (let r = start; r < end; r++) {
        if (r < d.n) out.set(d.x.subarray(r * len, (r + 1) * len), (r - start) * len)
        else noisy.push(r)
      }
      if (noisy.length === 0) return
      const rows = new Uint32Array(2 * noisy.length)
      noisy.forEach((r, i) => {
        rows[2 * i] = Math.floor((r - d.n) / k)
        rows[2 * i + 1] = (r - d.n) % k
      })
      const first = noisy[0]! - start
      await noisyRows(
        d.x,
        d.n,
        o.firstSample,
        seedValue,
        noise.kind,
        a,
        b,
        rows,
        out.subarray(first * len, (first + noisy.length) * len),
        signal,
      )
    },
  }
  const predicted = new Int32Array(plan.rows)
  await run(model, [d.channels, d.height, d.width], plan, needsSoftmax(model), ({ start, argmax }) => predicted.set(argmax, start), o, cost)
  const changed = new Float64Array(d.n * k)
  for (let r = 0; r < d.n * k; r++) changed[r] = predicted[d.n + r] !== predicted[Math.floor(r / k)] ? 1 : 0
  return changed
}

const sensitivityNSchema = z.strictObject({
  /** The explainer that explains each noisy input (required; its name goes into the params). */
  explainer: explainerField,
  /** Noisy copies per sample (autotimm's `n_samples`, default 50). */
  nSamples: z.int().min(1).max(10_000).default(50),
  /** Standard deviation of the Gaussian noise added to every input entry (autotimm's `noise_level`, default 0.15). */
  noiseLevel: z.number().min(0).max(1e6).default(0.15),
  /**
   * Divide the reference and each noisy map by its own maximum |value| first (default false,
   * autotimm's maps as given; all-zero maps stay): changes in units of the map's peak, comparable
   * across methods whose maps have different scales.
   */
  normalise: z.boolean().default(false),
  seed: seed.default(0),
})

export type SensitivityNOptions = z.input<typeof sensitivityNSchema> & { explainer: ExplainerLike }
export type SensitivityNParams = z.output<typeof sensitivityNSchema>

export interface SensitivityNResult extends MetricResult {
  /** Per sample: the mean change (= `scores`; autotimm's `sensitivity`). */
  sensitivity: Float64Array
  /** Per sample: population std of the changes (autotimm's `std` of one image; the result's `std` is over samples). */
  changeStd: Float64Array
  /** Per sample: the largest change (autotimm's `max_change`). */
  maxChange: Float64Array
  /** `[N, nSamples]`: every change (autotimm's `changes`). */
  changes: Float64Array
}

/**
 * Sensitivity-N (autotimm `sensitivity_n`): for each of `nSamples` noisy copies `x + ε`,
 * `ε ~ N(0, noiseLevel²)` i.i.d. per entry, the change is the mean absolute difference between the
 * sample's attribution `a` (the data set's) and the explainer's attribution of the noisy copy, for
 * the sample's label. Score: the mean change (lower = more stable). autotimm documents the fields
 * but not the formula of a change; we use the mean absolute difference of the maps as given (no
 * normalisation), and explain for the label, not the predicted class. Cost: `nSamples` explanations
 * per sample (the explainer's forward passes are on the model's counters, not this result's).
 * Not a Quantus metric, so no `compat`. The change is in the map's own units unless `normalise`
 * divides each map by its peak |value|: compare methods whose maps have different scales with it.
 */
export class SensitivityN extends Metric<SensitivityNParams, SensitivityNResult> {
  static readonly meta: MetricMeta = {
    id: 'sensitivity-n',
    name: 'SensitivityN',
    higherIsBetter: false,
    needs: ['attributions', 'explainer'],
    version: 1,
    cost: 'nSamples explanations of noisy inputs per sample',
    reference: 'autotimm ExplanationMetrics.sensitivity_n (docs); Yeh et al. 2019, On the (In)fidelity and Sensitivity of Explanations',
  }

  private readonly explainer: CheckedExplainer

  constructor(options: SensitivityNOptions) {
    super(sensitivityNSchema, options)
    this.explainer = explainerOf(options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const p = this.params
    const changes = await noisyComparisons(
      this.explainer,
      model,
      d,
      o,
      p.seed,
      p.nSamples,
      { kind: 'gaussian', sigma: p.noiseLevel },
      (a, b) => {
        const ma = p.normalise ? maxAbs(a) || 1 : 1
        const mb = p.normalise ? maxAbs(b) || 1 : 1
        let s = 0
        for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! / ma - b[i]! / mb)
        return s / a.length
      },
    )
    return this.shard(o.firstSample, d.n, { changes: { width: p.nSamples, values: changes } }, newCost())
  }

  protected finish(merged: Merged): SensitivityNResult {
    const { width: k, values } = column(merged, 'changes')
    const n = merged.samples
    const sensitivity = new Float64Array(n)
    const changeStd = new Float64Array(n)
    const maxChange = new Float64Array(n)
    for (let s = 0; s < n; s++) {
      const row = values.subarray(s * k, (s + 1) * k)
      let sum = 0
      let max = Number.NEGATIVE_INFINITY
      for (const v of row) {
        sum += v
        if (v > max) max = v
      }
      const mean = sum / k
      let sq = 0
      for (const v of row) sq += (v - mean) ** 2
      sensitivity[s] = mean
      changeStd[s] = Math.sqrt(sq / k)
      maxChange[s] = max
    }
    return this.result(merged, sensitivity.slice(), { sensitivity, changeStd, maxChange, changes: values })
  }
}

const yehSchema = z
  .strictObject({
    /** The explainer that explains each noisy input (required; its name goes into the params). */
    explainer: explainerField,
    /** Noisy copies per sample (Quantus's `nr_samples`, default 200). */
    nrSamples: z.int().min(1).max(10_000).default(200),
    /** Noise `U(−lowerBound, lowerBound)` per entry, or `U(lowerBound, upperBound)` when `upperBound` is set (Quantus's `uniform_noise`; default 0.2). */
    lowerBound: z.number().min(-1e6).max(1e6).default(0.2),
    upperBound: z.number().min(-1e6).max(1e6).optional(),
    /**
     * Divide the maps by their maximum |value| first (default false, as Quantus): each map by its
     * own; with `compat: 'quantus'` the reference maps by one maximum over the data set and the
     * noisy maps by one per batch and draw, as Quantus.
     */
    normalise: z.boolean().default(false),
    /**
     * A draw whose noisy input changes the model's predicted class makes the sample NaN (Quantus's
     * `return_nan_when_prediction_changes`, default false); costs `1 + nrSamples` model rows per sample.
     */
    nanWhenPredictionChanges: z.boolean().default(false),
    seed: seed.default(0),
    ...compatFields,
  })
  .superRefine((p, ctx) => {
    if (p.upperBound !== undefined && p.upperBound < p.lowerBound) {
      ctx.addIssue({ code: 'custom', path: ['upperBound'], message: 'expected upperBound ≥ lowerBound' })
    }
    checkCompatBatch(p, ctx)
  })
  .transform((p) => (p.compat ? { ...p, batchSize: p.batchSize ?? 64 } : p))

export type YehSensitivityOptions = z.input<typeof yehSchema> & { explainer: ExplainerLike }
export type YehSensitivityParams = z.output<typeof yehSchema>

export interface YehSensitivityResult extends MetricResult {
  /** `[N, nrSamples]`: `‖a − ã_k‖₂ / ‖a‖₂` of every draw (of the normalised maps with `normalise`). */
  sensitivities: Float64Array
  /** Every sample whose score is NaN, with the reason (its reference attribution is all zeros). */
  undefinedScores: UndefinedScore[]
}

/** Shared by Max- and AvgSensitivity: the per-draw relative changes. */
abstract class YehSensitivity extends Metric<YehSensitivityParams, YehSensitivityResult> {
  private readonly explainer: CheckedExplainer

  constructor(options: YehSensitivityOptions) {
    super(yehSchema as unknown as z.ZodType<YehSensitivityParams>, options)
    this.explainer = explainerOf(options)
  }

  /** The score of one sample's draws (none NaN, except all of them with compat). */
  protected abstract aggregate(values: Float64Array): number

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const p = this.params
    const noise: NoiseSpec =
      p.upperBound === undefined
        ? { kind: 'uniform', low: -p.lowerBound, high: p.lowerBound }
        : { kind: 'uniform', low: p.lowerBound, high: p.upperBound }
    const cost = newCost()
    const changed = await changedColumn(p.nanWhenPredictionChanges, model, d, o, p.seed, noise, p.nrSamples, cost)
    if (p.compat && p.normalise) {
      const sums = batchNormalised.collect(d, p.nrSamples)
      const ab = await noisyComparisons(this.explainer, model, d, o, p.seed, p.nrSamples, noise, sums.compare)
      return this.shard(o.firstSample, d.n, { ...sums.columns(ab), ...changed }, cost)
    }
    const values = await noisyComparisons(this.explainer, model, d, o, p.seed, p.nrSamples, noise, (a, b) => {
      const ma = p.normalise ? maxAbs(a) || 1 : 1
      const mb = p.normalise ? maxAbs(b) || 1 : 1
      let num = 0
      let den = 0
      for (let i = 0; i < a.length; i++) {
        num += (a[i]! / ma - b[i]! / mb) ** 2
        den += (a[i]! / ma) ** 2
      }
      // Quantus divides by the zero norm of an all-zero reference: ∞, or NaN for 0/0.
      return den === 0 && !p.compat ? Number.NaN : Math.sqrt(num) / Math.sqrt(den)
    })
    return this.shard(o.firstSample, d.n, { sensitivities: { width: p.nrSamples, values }, ...changed }, cost)
  }

  protected finish(merged: Merged): YehSensitivityResult {
    const p = this.params
    let values: Float64Array
    let k: number
    if (p.compat && p.normalise) {
      const { distances, referenceNorms } = batchNormalised.distances(merged, p.batchSize!)
      k = p.nrSamples
      values = distances.map((v, r) => v / referenceNorms[Math.floor(r / k)]!)
    } else ({ width: k, values } = column(merged, 'sensitivities'))
    const flagged = p.nanWhenPredictionChanges ? column(merged, 'changed').values : undefined
    values = markChanged(merged, p.nanWhenPredictionChanges, values)
    const scores = new Float64Array(merged.samples)
    const undefinedScores: UndefinedScore[] = []
    for (let s = 0; s < merged.samples; s++) {
      const row = values.subarray(s * k, (s + 1) * k)
      // A zero reference makes every draw NaN (0/0 or x/0): the score is undefined, with its reason.
      // With compat x/0 is ∞ (Quantus's number) and only draws of 0/0 are NaN, left out as by NumPy's
      // nan-aggregates; a changed prediction makes the sample NaN (Quantus's np.max / np.mean then).
      scores[s] = flagged
        ? row.some(Number.isNaN)
          ? Number.NaN
          : this.aggregate(row)
        : p.compat
          ? this.aggregate(row.filter((v) => !Number.isNaN(v)))
          : Number.isNaN(row[0]!)
            ? Number.NaN
            : this.aggregate(row)
      if (Number.isNaN(scores[s]!)) {
        undefinedScores.push({
          sample: merged.firstSample + s,
          reason: flagged?.subarray(s * k, (s + 1) * k).some((v) => v === 1)
            ? CHANGED
            : p.compat
              ? 'the reference attribution and every noisy one are all zeros: every relative change is 0/0'
              : 'the reference attribution is all zeros: a relative change is undefined',
        })
      }
    }
    return this.result(merged, scores, { sensitivities: values, undefinedScores })
  }
}

/**
 * Max-Sensitivity (Yeh et al. 2019) as Quantus 0.6.0 computes it: the largest relative change
 * `‖a − ã_k‖₂ / ‖a‖₂` over `nrSamples` noisy copies `x + U(−0.2, 0.2)` (lower = more robust).
 * Differences from Quantus: the noise is keyed by (seed, global sample, draw) instead of NumPy's
 * global generator (so batches and shards never change numbers; the fixture hands Quantus our
 * draws and agrees to 1e-5); a sample whose reference attribution is all zeros scores NaN, listed
 * in `undefinedScores` (Quantus divides by zero: ∞); `normalise` divides each map by its own
 * maximum |value| (Quantus: the references by one maximum over the data set, the noisy maps by one
 * per batch of `batch_size` samples, so its numbers change with the batch size). The paper takes
 * the maximum over a ball of radius r of the unnormalised `‖Φ(x̃) − Φ(x)‖`; the relative form is
 * Quantus's default.
 *
 * `compat: 'quantus'` reproduces Quantus given the same noise: ∞ for an all-zero reference (NaN
 * only when every noisy map is zero too), NaN draws left out (`np.nanmax`), and with `normalise`
 * its batch normalisation for a stated `batchSize` (default 64), rebuilt across shards from per-draw
 * sums. `nanWhenPredictionChanges` is Quantus's `return_nan_when_prediction_changes` (in either mode).
 * Not reproduced: custom `perturb_func`/`similarity_func`/norms.
 */
export class MaxSensitivity extends YehSensitivity {
  static readonly meta: MetricMeta = {
    id: 'max-sensitivity',
    name: 'MaxSensitivity',
    higherIsBetter: false,
    needs: ['attributions', 'explainer'],
    version: 1,
    cost: 'nrSamples explanations of noisy inputs per sample',
    reference: 'Yeh et al. 2019, On the (In)fidelity and Sensitivity of Explanations; Quantus 0.6.0 MaxSensitivity',
  }

  protected aggregate(values: Float64Array): number {
    return nanMax(values)
  }
}

/** Avg-Sensitivity: the mean of the same relative changes as {@link MaxSensitivity}, same differences from Quantus and the same `compat` (`np.nanmean`). */
export class AvgSensitivity extends YehSensitivity {
  static readonly meta: MetricMeta = {
    id: 'avg-sensitivity',
    name: 'AvgSensitivity',
    higherIsBetter: false,
    needs: ['attributions', 'explainer'],
    version: 1,
    cost: 'nrSamples explanations of noisy inputs per sample',
    reference: 'Yeh et al. 2019, On the (In)fidelity and Sensitivity of Explanations; Quantus 0.6.0 AvgSensitivity',
  }

  protected aggregate(values: Float64Array): number {
    return nanMean(values)
  }
}

const lipschitzSchema = z
  .strictObject({
    /** The explainer that explains each noisy input (required; its name goes into the params). */
    explainer: explainerField,
    /** Noisy copies per sample (Quantus's `nr_samples`, default 200). */
    nrSamples: z.int().min(1).max(10_000).default(200),
    /** Gaussian noise `N(perturbMean, perturbStd²)` per entry (Quantus's defaults 0 and 0.1). */
    perturbMean: z.number().min(-1e6).max(1e6).default(0),
    perturbStd: z.number().min(0).max(1e6).default(0.1),
    /** Uniform noise `U(low, high)` per entry instead of the Gaussian. */
    uniform: z.tuple([z.number().min(-1e6).max(1e6), z.number().min(-1e6).max(1e6)]).optional(),
    /**
     * Divide the maps by their maximum |value| first (default true, as Quantus; all-zero maps stay):
     * each map by its own; with `compat: 'quantus'` the reference maps by one maximum over the data
     * set and the noisy maps by one per batch and draw, as Quantus.
     */
    normalise: z.boolean().default(true),
    /**
     * A draw whose noisy input changes the model's predicted class makes the sample NaN (Quantus's
     * `return_nan_when_prediction_changes`, default false); costs `1 + nrSamples` model rows per sample.
     */
    nanWhenPredictionChanges: z.boolean().default(false),
    seed: seed.default(0),
    ...compatFields,
  })
  .superRefine((p, ctx) => {
    if (p.uniform !== undefined && p.uniform[0] > p.uniform[1]) {
      ctx.addIssue({ code: 'custom', path: ['uniform'], message: 'expected uniform: [low, high] with low ≤ high' })
    }
    checkCompatBatch(p, ctx)
  })
  .transform((p) => (p.compat ? { ...p, batchSize: p.batchSize ?? 64 } : p))

export type LocalLipschitzEstimateOptions = z.input<typeof lipschitzSchema> & { explainer: ExplainerLike }
export type LocalLipschitzEstimateParams = z.output<typeof lipschitzSchema>

export interface LocalLipschitzEstimateResult extends MetricResult {
  /** `[N, nrSamples]`: `‖a − ã_k‖₂ / (‖x − x̃_k‖₂ + 1e-10)` of every draw (NaN where the prediction changed, with `nanWhenPredictionChanges`). */
  ratios: Float64Array
  /** Every sample whose score is NaN, with the reason (a noisy copy changed the prediction). */
  undefinedScores: UndefinedScore[]
}

const CHANGED = 'a noisy copy changed the predicted class (nanWhenPredictionChanges)'

/** The shard's `changed` column (with `nanWhenPredictionChanges`), counting the check's rows in `cost`. */
async function changedColumn(
  on: boolean,
  model: Model,
  d: Checked,
  o: CheckedMapOptions,
  seedValue: number,
  noise: NoiseSpec,
  draws: number,
  cost: ReturnType<typeof newCost>,
): Promise<Record<string, { width: number; values: Float64Array }>> {
  if (!on) return {}
  return { changed: { width: draws, values: await predictionChanges(model, d, o, seedValue, noise, draws, cost) } }
}

/** `values` with the draws whose prediction changed set to NaN (a copy), or `values` itself. */
function markChanged(merged: Merged, on: boolean, values: Float64Array): Float64Array {
  if (!on) return values
  const changed = column(merged, 'changed').values
  return values.map((v, r) => (changed[r] ? Number.NaN : v))
}

/**
 * Local Lipschitz Estimate (Alvarez-Melis & Jaakkola 2018) as Quantus 0.6.0 computes it: the
 * largest `‖a − ã_k‖₂ / (‖x − x̃_k‖₂ + 1e-10)` over `nrSamples` noisy copies `x̃_k = x + N(0, 0.1²)`
 * (lower = more robust). Differences from Quantus: noise keyed by (seed, global sample, draw) and
 * added in float32; `normalise` divides each map by its own max |value|, where Quantus divides the
 * reference maps by the max over the whole data set and each noisy batch by the max over that batch
 * (so its scores depend on the batch size and on which samples share a batch).
 *
 * `compat: 'quantus'` reproduces that normalisation for a stated `batchSize` (Quantus's
 * `batch_size`, default 64): batches of consecutive samples from the first one evaluated, rebuilt
 * across shards from per-draw sums (checked against a quantus 0.6.0 fixture at two batch sizes).
 * Quantus's Gaussian draws come from NumPy's global generator; ours are keyed, so the fixture
 * hands Quantus our uniform draws (`uniform`). `nanWhenPredictionChanges` is Quantus's
 * `return_nan_when_prediction_changes` (in either mode). Not reproduced: custom similarity or norm
 * functions.
 */
export class LocalLipschitzEstimate extends Metric<LocalLipschitzEstimateParams, LocalLipschitzEstimateResult> {
  static readonly meta: MetricMeta = {
    id: 'local-lipschitz-estimate',
    name: 'LocalLipschitzEstimate',
    higherIsBetter: false,
    needs: ['attributions', 'explainer'],
    version: 1,
    cost: 'nrSamples explanations of noisy inputs per sample',
    reference: 'Alvarez-Melis & Jaakkola 2018, On the Robustness of Interpretability Methods; Quantus 0.6.0 LocalLipschitzEstimate',
  }

  private readonly explainer: CheckedExplainer

  constructor(options: LocalLipschitzEstimateOptions) {
    super(lipschitzSchema as unknown as z.ZodType<LocalLipschitzEstimateParams>, options)
    this.explainer = explainerOf(options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const p = this.params
    const noise: NoiseSpec = p.uniform
      ? { kind: 'uniform', low: p.uniform[0], high: p.uniform[1] }
      : { kind: 'gaussian', sigma: p.perturbStd, mean: p.perturbMean }
    const noiseNorm = (clean: Float32Array, noisy: Float32Array) => {
      let q = 0
      for (let i = 0; i < clean.length; i++) q += (noisy[i]! - clean[i]!) ** 2
      return Math.sqrt(q)
    }
    const cost = newCost()
    const changed = await changedColumn(p.nanWhenPredictionChanges, model, d, o, p.seed, noise, p.nrSamples, cost)
    if (p.compat && p.normalise) {
      const sums = batchNormalised.collect(d, p.nrSamples)
      const norms = new Float64Array(d.n * p.nrSamples)
      const ab = await noisyComparisons(
        this.explainer,
        model,
        d,
        o,
        p.seed,
        p.nrSamples,
        noise,
        (a, b, stat, r) => {
          norms[r] = stat
          return sums.compare(a, b, stat, r)
        },
        noiseNorm,
      )
      return this.shard(o.firstSample, d.n, { ...sums.columns(ab), noise: { width: p.nrSamples, values: norms }, ...changed }, cost)
    }
    const values = await noisyComparisons(
      this.explainer,
      model,
      d,
      o,
      p.seed,
      p.nrSamples,
      noise,
      (a, b, noiseNorm) => {
        const ma = p.normalise ? maxAbs(a) || 1 : 1
        const mb = p.normalise ? maxAbs(b) || 1 : 1
        let q = 0
        for (let i = 0; i < a.length; i++) q += (a[i]! / ma - b[i]! / mb) ** 2
        return Math.sqrt(q) / (noiseNorm + 1e-10)
      },
      noiseNorm,
    )
    return this.shard(o.firstSample, d.n, { ratios: { width: p.nrSamples, values }, ...changed }, cost)
  }

  protected finish(merged: Merged): LocalLipschitzEstimateResult {
    const p = this.params
    let values: Float64Array
    let k: number
    if (p.compat && p.normalise) {
      const { distances } = batchNormalised.distances(merged, p.batchSize!)
      const norms = column(merged, 'noise').values
      k = p.nrSamples
      values = distances.map((v, r) => v / (norms[r]! + 1e-10))
    } else ({ width: k, values } = column(merged, 'ratios'))
    values = markChanged(merged, p.nanWhenPredictionChanges, values)
    const scores = new Float64Array(merged.samples)
    const undefinedScores: UndefinedScore[] = []
    for (let s = 0; s < merged.samples; s++) {
      const row = values.subarray(s * k, (s + 1) * k)
      // Quantus's np.nanmax, or np.max (NaN-propagating) when a changed prediction makes a draw NaN.
      scores[s] = row.some(Number.isNaN) ? Number.NaN : nanMax(row)
      if (Number.isNaN(scores[s]!)) undefinedScores.push({ sample: merged.firstSample + s, reason: CHANGED })
    }
    return this.result(merged, scores, { ratios: values, undefinedScores })
  }
}

const risSchema = z
  .strictObject({
    /** The explainer that explains each noisy input (required; its name goes into the params). */
    explainer: explainerField,
    /** Noisy copies per sample (Quantus's `nr_samples`, default 200). */
    nrSamples: z.int().min(1).max(10_000).default(200),
    /** Noise `U(lowerBound, upperBound)` per entry (Quantus's defaults 0.02 and 0.2: positive noise only). */
    lowerBound: z.number().min(-1e6).max(1e6).default(0.02),
    upperBound: z.number().min(-1e6).max(1e6).default(0.2),
    /** Replaces zeros in the divisions (Quantus's `eps_min`, default 1e-6). */
    epsMin: z.number().gt(0).max(1).default(1e-6),
    /** A draw whose noisy input changes the model's predicted class makes the sample NaN (Quantus's default true). */
    nanWhenPredictionChanges: z.boolean().default(true),
    seed: seed.default(0),
  })
  .refine((p) => p.upperBound > p.lowerBound, { message: 'expected upperBound > lowerBound', path: ['upperBound'] })

export type RelativeInputStabilityOptions = z.input<typeof risSchema> & { explainer: ExplainerLike }
export type RelativeInputStabilityParams = z.output<typeof risSchema>

export interface RelativeInputStabilityResult extends MetricResult {
  /** `[N, nrSamples]`: the RIS objective of every draw (NaN where the prediction changed). */
  objectives: Float64Array
  /** Every sample whose score is NaN, with the reason (a noisy copy changed the prediction). */
  undefinedScores: UndefinedScore[]
}

/** `‖(u − v) / (u + [u = 0]·eps)‖₂` over all entries. */
function relativeNorm(u: Float32Array, v: Float32Array, eps: number): number {
  let q = 0
  for (let i = 0; i < u.length; i++) {
    const den = u[i]! === 0 ? eps : u[i]!
    q += ((u[i]! - v[i]!) / den) ** 2
  }
  return Math.sqrt(q)
}

/**
 * Relative Input Stability (Agarwal et al. 2022) as Quantus 0.6.0 computes it: over `nrSamples`
 * noisy copies `x̃ = x + U(0.02, 0.2)` (Quantus's default noise, positive only), the largest
 * `‖(e − ẽ)/e‖₂ / max(‖(x − x̃)/x‖₂, eps)` (zeros in `e` and `x` replaced by `epsMin`); with
 * `nanWhenPredictionChanges` (default, as Quantus) a draw that changes the model's predicted class
 * makes the sample NaN. Lower = more stable. Differences from Quantus: noise keyed by (seed, global
 * sample, draw) and added in float32; computed in float64 (Quantus divides the float32 maps in
 * float32). Cost: `nrSamples` explanations plus `1 + nrSamples` model rows per sample for the
 * prediction check. No `compat` flag: Quantus's RelativeInputStability does not normalise by
 * default, so given the same noise its numbers are these (the fixture agrees to 1e-5 relative; the
 * float32 division is what differs).
 */
export class RelativeInputStability extends Metric<RelativeInputStabilityParams, RelativeInputStabilityResult> {
  static readonly meta: MetricMeta = {
    id: 'relative-input-stability',
    name: 'RelativeInputStability',
    higherIsBetter: false,
    needs: ['attributions', 'explainer'],
    version: 1,
    cost: 'nrSamples explanations of noisy inputs per sample, and 1 + nrSamples rows for the prediction check',
    reference: 'Agarwal et al. 2022, Rethinking Stability for Attribution-based Explanations; Quantus 0.6.0 RelativeInputStability',
  }

  private readonly explainer: CheckedExplainer

  constructor(options: RelativeInputStabilityOptions) {
    super(risSchema as unknown as z.ZodType<RelativeInputStabilityParams>, options)
    this.explainer = explainerOf(options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const p = this.params
    const noise: NoiseSpec = { kind: 'uniform', low: p.lowerBound, high: p.upperBound }
    const objectives = await noisyComparisons(
      this.explainer,
      model,
      d,
      o,
      p.seed,
      p.nrSamples,
      noise,
      (a, b, inputChange) => relativeNorm(a, b, p.epsMin) / (inputChange === 0 ? p.epsMin : inputChange),
      (clean, noisy) => relativeNorm(clean, noisy, p.epsMin),
    )
    const cost = newCost()
    if (p.nanWhenPredictionChanges) {
      const changed = await predictionChanges(model, d, o, p.seed, noise, p.nrSamples, cost)
      for (let r = 0; r < changed.length; r++) if (changed[r]) objectives[r] = Number.NaN
    }
    return this.shard(o.firstSample, d.n, { objectives: { width: p.nrSamples, values: objectives } }, cost)
  }

  protected finish(merged: Merged): RelativeInputStabilityResult {
    const { width: k, values } = column(merged, 'objectives')
    const scores = new Float64Array(merged.samples)
    const undefinedScores: UndefinedScore[] = []
    for (let s = 0; s < merged.samples; s++) {
      const row = values.subarray(s * k, (s + 1) * k)
      // NaN-propagating max, as Quantus's np.max: one changed prediction makes the sample undefined.
      scores[s] = row.some(Number.isNaN) ? Number.NaN : Math.max(...row)
      if (Number.isNaN(scores[s]!)) {
        undefinedScores.push({
          sample: merged.firstSample + s,
          reason: 'a noisy copy changed the predicted class (nanWhenPredictionChanges)',
        })
      }
    }
    return this.result(merged, scores, { objectives: values, undefinedScores })
  }
}
