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
import { noisyRows } from '../native.js'
import { seed, z } from '../options.js'
import type { Checked } from '../validate.js'
import type { UndefinedScore } from './correlation.js'
import { type CheckedMapOptions, column, type Merged, Metric, type MetricMeta, type MetricResult, newCost, type Shard } from './protocol.js'

/** Noise of one family of draws. */
type NoiseSpec = { kind: 'gaussian'; sigma: number } | { kind: 'uniform'; low: number; high: number }

/** Per-draw statistic of a reference explanation `a` and a noisy one `b` (same length). */
type Compare = (a: Float32Array, b: Float32Array) => number

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
): Promise<Float64Array> {
  const per = d.attrChannels * d.height * d.width
  const out = new Float64Array(d.n * draws)
  const [a, b] = noise.kind === 'gaussian' ? [noise.sigma, 0] : [noise.low, noise.high]
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
        out[r] = compare(d.a.subarray(s * per, (s + 1) * per), explained.subarray(i * per, (i + 1) * per))
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

const sensitivityNSchema = z.strictObject({
  /** The explainer that explains each noisy input (required; its name goes into the params). */
  explainer: explainerField,
  /** Noisy copies per sample (autotimm's `n_samples`, default 50). */
  nSamples: z.int().min(1).max(10_000).default(50),
  /** Standard deviation of the Gaussian noise added to every input entry (autotimm's `noise_level`, default 0.15). */
  noiseLevel: z.number().min(0).max(1e6).default(0.15),
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
        let s = 0
        for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!)
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
    seed: seed.default(0),
  })
  .refine((p) => p.upperBound === undefined || p.upperBound >= p.lowerBound, {
    message: 'expected upperBound ≥ lowerBound',
    path: ['upperBound'],
  })

export type YehSensitivityOptions = z.input<typeof yehSchema> & { explainer: ExplainerLike }
export type YehSensitivityParams = z.output<typeof yehSchema>

export interface YehSensitivityResult extends MetricResult {
  /** `[N, nrSamples]`: `‖a − ã_k‖₂ / ‖a‖₂` of every draw. */
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

  protected abstract aggregate(values: Float64Array): number

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const p = this.params
    const noise: NoiseSpec =
      p.upperBound === undefined
        ? { kind: 'uniform', low: -p.lowerBound, high: p.lowerBound }
        : { kind: 'uniform', low: p.lowerBound, high: p.upperBound }
    const values = await noisyComparisons(this.explainer, model, d, o, p.seed, p.nrSamples, noise, (a, b) => {
      let num = 0
      let den = 0
      for (let i = 0; i < a.length; i++) {
        num += (a[i]! - b[i]!) ** 2
        den += a[i]! ** 2
      }
      return den === 0 ? Number.NaN : Math.sqrt(num) / Math.sqrt(den)
    })
    return this.shard(o.firstSample, d.n, { sensitivities: { width: p.nrSamples, values } }, newCost())
  }

  protected finish(merged: Merged): YehSensitivityResult {
    const { width: k, values } = column(merged, 'sensitivities')
    const scores = new Float64Array(merged.samples)
    const undefinedScores: UndefinedScore[] = []
    for (let s = 0; s < merged.samples; s++) {
      const row = values.subarray(s * k, (s + 1) * k)
      // A zero reference makes every draw NaN (0/0 or x/0): the score is undefined, with its reason.
      scores[s] = Number.isNaN(row[0]!) ? Number.NaN : this.aggregate(row)
      if (Number.isNaN(scores[s]!)) {
        undefinedScores.push({
          sample: merged.firstSample + s,
          reason: 'the reference attribution is all zeros: a relative change is undefined',
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
 * in `undefinedScores` (Quantus divides by zero). The paper takes the maximum over a ball of
 * radius r of the unnormalised `‖Φ(x̃) − Φ(x)‖`; the relative form is Quantus's default.
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
    return Math.max(...values)
  }
}

/** Avg-Sensitivity: the mean of the same relative changes as {@link MaxSensitivity}, same differences from Quantus. */
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
    let s = 0
    for (const v of values) s += v
    return s / values.length
  }
}
