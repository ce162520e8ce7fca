// Randomization sanity checks (Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018):
// an explanation should change when the class it explains is random (RandomLogit, Quantus;
// DataRandomization, autotimm) or when the model's weights are (ModelParameterRandomization,
// SmoothMPRT, EfficientMPRT). Each compares the reference explanation — by default the same
// explainer's answer for the label on the trained model (`reference: 'explainer'`), or the data
// set's `a` (`reference: 'attributions'`) — with the explainer's answer after the randomization,
// per sample, in the core. The explainer's forward passes count in each result's cost.
import { readFile, rm, writeFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { throwIfAborted, XaiEvalError } from '../errors.js'
import {
  type CheckedExplainer,
  checkExplainer,
  type Explained,
  type ExplainerLike,
  explainerName,
  explainerOption,
  explainRows,
} from '../explainers/explainer.js'
import type { Model } from '../models/model.js'
import { onnxLayers, randomizeLayers } from '../models/onnx-edit.js'
import { OnnxModel } from '../models/onnx-model.js'
import { compareExplanations, otherClasses, smoothRows } from '../native.js'
import { seed, z } from '../options.js'
import type { Checked } from '../validate.js'
import type { UndefinedScore } from './correlation.js'
import {
  type CheckedMapOptions,
  type Cost,
  column,
  type Merged,
  Metric,
  type MetricMeta,
  type MetricResult,
  newCost,
  type Shard,
} from './protocol.js'

const explainerField = explainerOption.transform(explainerName)
const similarity = z.enum(['spearman', 'pearson', 'ssim'])
export type SimilarityKind = z.infer<typeof similarity>
/** What the core compares: a similarity, or eMPRT's entropy rise. */
type Comparison = SimilarityKind | 'entropy-rise'

function explainerOf(options: unknown): CheckedExplainer {
  return checkExplainer((options as { explainer?: unknown } | undefined)?.explainer)
}

/**
 * What the randomized explanations are compared with: `'explainer'` (default) re-explains every
 * sample for its label on the trained model with the same explainer (so a gradient `a` is never
 * compared with occlusion maps of a randomized model; explanations the explainer already gave,
 * e.g. through an `ExplanationCache`, are reused); `'attributions'` takes the data set's `a`
 * as that explanation (cheaper; right only when `a` came from this explainer).
 */
const reference = z.enum(['explainer', 'attributions'])
export type ReferenceKind = z.infer<typeof reference>

/** `compat: 'quantus'`: reproduce quantus 0.6.0 (see each class for what that changes). */
const compat = z.literal('quantus').optional()

/** Fills in `reference`: Quantus compares the user's `a` where the metric says so (`quantusUsesA`). */
function withReference<T extends { reference?: ReferenceKind | undefined; compat?: 'quantus' | undefined }>(
  o: T,
  quantusUsesA: boolean,
): T & { reference: ReferenceKind } {
  return { ...o, reference: o.reference ?? (o.compat === 'quantus' && quantusUsesA ? 'attributions' : 'explainer') }
}

/** The explainer returned `got`-channel maps where `want` are needed (those they are compared with): a typed error. */
function sameChannels(e: CheckedExplainer, got: number, want: number, what: string): void {
  if (got !== want) {
    throw new XaiEvalError(
      'SHAPE_MISMATCH',
      `explainer '${e.name}'`,
      `returned ${got}-channel maps, ${what} ${want}: compare like with like`,
    )
  }
}

/**
 * The explainer's attributions of the rows `rows` of `d` (global order kept) for `targets` on
 * `model`, `[rows.length, channels·H·W]`; its forward passes are added to `cost`. `own` marks the
 * data set's own question (its inputs, its labels, the trained model): only then are sample
 * indices passed, so precomputed maps answer exactly that and refuse everything else. `channels`,
 * when given, is what the maps must have (those of the explanations they are compared with).
 */
async function explainSamples(
  e: CheckedExplainer,
  model: Model,
  d: Checked,
  o: CheckedMapOptions,
  rows: Int32Array,
  targets: Int32Array,
  own: boolean,
  cost: Cost,
  channels?: number,
): Promise<Explained> {
  const len = d.channels * d.height * d.width
  const pixels = d.height * d.width
  let out: Float32Array | undefined
  let got = channels
  await explainRows(
    e,
    model,
    [d.channels, d.height, d.width],
    rows.length,
    (start, end, x, t) => {
      for (let r = start; r < end; r++) {
        const s = rows[r]!
        x.set(d.x.subarray(s * len, (s + 1) * len), (r - start) * len)
        t[r - start] = targets[r]!
      }
      return own ? Int32Array.from(rows.subarray(start, end), (s) => s + o.firstSample) : undefined
    },
    (start, { a, channels: c }) => {
      if (got === undefined) got = c
      sameChannels(e, c, got, channels === undefined ? 'its earlier maps had' : 'the reference explanations have')
      out ??= new Float32Array(rows.length * got * pixels)
      out.set(a, start * got * pixels)
    },
    o.signal,
    cost,
  )
  return { a: out ?? new Float32Array(0), channels: got ?? d.attrChannels }
}

/** Rows `rows` of per-sample maps `a` (`per` values each). */
function rowsOf(a: Float32Array, per: number, rows: Int32Array): Float32Array {
  if (rows.length * per === a.length) return a
  const out = new Float32Array(rows.length * per)
  rows.forEach((s, r) => {
    out.set(a.subarray(s * per, (s + 1) * per), r * per)
  })
  return out
}

/** The reference explanations of every sample of `d` (see {@link reference}). */
async function referenceOf(
  kind: ReferenceKind,
  e: CheckedExplainer,
  model: Model,
  d: Checked,
  o: CheckedMapOptions,
  cost: Cost,
): Promise<Explained> {
  if (kind === 'attributions') return { a: d.a, channels: d.attrChannels }
  return explainSamples(e, model, d, o, allRows(d.n), d.y, true, cost)
}

const allRows = (n: number) => Int32Array.from({ length: n }, (_, i) => i)

/** The model's class count: `numClasses`, or the width of one forward pass on the first sample. */
async function classCount(model: Model, d: Checked, numClasses: number | undefined, cost: Cost): Promise<number> {
  if (numClasses !== undefined) return numClasses
  const len = d.channels * d.height * d.width
  const out = await model.forward(d.x.slice(0, len), 1, [d.channels, d.height, d.width])
  cost.forwardPasses += 1
  cost.batches += 1
  return out.length
}

const NAN_REASON: Record<Comparison, string> = {
  'entropy-rise': 'the explanation of the trained model is constant (zero histogram entropy): the relative rise is undefined',
  spearman: 'an explanation is constant: Spearman correlation undefined',
  pearson: 'an explanation is constant: Pearson correlation undefined',
  ssim: 'both explanations are the same constant (or shorter than 7 values): SSIM undefined',
}

function undefinedOf(firstSample: number, scores: Float64Array, kind: Comparison): UndefinedScore[] {
  const out: UndefinedScore[] = []
  scores.forEach((v, i) => {
    if (Number.isNaN(v)) out.push({ sample: firstSample + i, reason: NAN_REASON[kind] })
  })
  return out
}

// ---------------------------------------------------------------------------------------------
// A random other class.

const classSchema = (defaultSimilarity: SimilarityKind) =>
  z.strictObject({
    /** The explainer that explains each input for its random class (required; its name goes into the params). */
    explainer: explainerField,
    /** The model's class count (default: read from one forward pass). */
    numClasses: z.int().min(2).max(1_000_000).optional(),
    /** How the two explanations are compared. */
    similarity: similarity.default(defaultSimilarity),
    /** Compare |a| (default false). */
    abs: z.boolean().default(false),
    /** Divide each map by its own max |a| before comparing (default true). */
    normalise: z.boolean().default(true),
    /** What the explanation of the random class is compared with (see {@link reference}). */
    reference: reference.optional(),
    seed: seed.default(0),
  })

export interface ClassRandomizationResult extends MetricResult {
  /** Per sample: the random class that was explained instead of the label. */
  otherClass: Int32Array
  /** Per sample: mean |a − a_random| of the (prepared) maps. */
  change: Float64Array
  /** Samples whose similarity is undefined, with the reason. */
  undefinedScores: UndefinedScore[]
}

abstract class ClassRandomization<
  P extends z.output<ReturnType<typeof classSchema>> & { reference: ReferenceKind },
  R extends ClassRandomizationResult,
> extends Metric<P, R> {
  protected readonly explainer: CheckedExplainer

  constructor(schema: z.ZodType<P>, options: unknown) {
    super(schema, options)
    this.explainer = explainerOf(options)
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const p = this.params
    const cost = newCost()
    const k = await classCount(model, d, p.numClasses, cost)
    const targets = otherClasses(d.y, k, p.seed, o.firstSample)
    const ref = await referenceOf(p.reference, this.explainer, model, d, o, cost)
    const b = await explainSamples(this.explainer, model, d, o, allRows(d.n), targets, false, cost, ref.channels)
    const cmp = await compareExplanations(ref.a, b.a, d.n, p.similarity, p.abs, p.normalise, o.signal)
    const score = new Float64Array(d.n)
    const change = new Float64Array(d.n)
    for (let i = 0; i < d.n; i++) [score[i], change[i]] = [cmp[2 * i]!, cmp[2 * i + 1]!]
    return this.shard(
      o.firstSample,
      d.n,
      {
        score: { width: 1, values: score },
        change: { width: 1, values: change },
        otherClass: { width: 1, values: Float64Array.from(targets) },
      },
      cost,
    )
  }

  protected base(m: Merged): { scores: Float64Array; extra: Omit<ClassRandomizationResult, keyof MetricResult> } {
    const scores = column(m, 'score').values
    return {
      scores,
      extra: {
        otherClass: Int32Array.from(column(m, 'otherClass').values),
        change: column(m, 'change').values,
        undefinedScores: undefinedOf(m.firstSample, scores, this.params.similarity),
      },
    }
  }
}

const randomLogitSchema = classSchema('ssim')
  .extend({
    /**
     * `'quantus'`: reproduce quantus.RandomLogit 0.6.0: the random class's explanation is compared
     * with the data set's `a` (`reference` defaults to `'attributions'`).
     */
    compat,
  })
  .transform((o) => withReference(o, true))
export type RandomLogitOptions = z.input<typeof randomLogitSchema> & { explainer: ExplainerLike }
export type RandomLogitParams = z.output<typeof randomLogitSchema>

/**
 * Random logit (Sixt et al., "When explanations lie", ICML 2020; quantus.RandomLogit 0.6): the
 * similarity between the explanation for the label and the explainer's explanation of the same
 * input for a random other class. Lower is better (an explanation that ignores the class scores
 * 1). The explanation for the label is the explainer's on the trained model (`reference:
 * 'explainer'`, default) or the data set's `a` (`'attributions'`). The other class is uniform over
 * the `numClasses − 1` others: `others[k]`, `k = below(numClasses − 1)` of the keyed stream
 * (seed, global sample, Class, 0).
 *
 * `compat: 'quantus'`: compares with the data set's `a`, as Quantus does. Remaining deviations
 * from Quantus 0.6 (the fixture hands Quantus ours): Quantus re-seeds numpy's global RNG with
 * `seed` at every batch of 64 and draws `randint(0, num_classes − 1)` per position in the batch,
 * so a sample's class depends on its batch position (ours: the same index into the other classes,
 * keyed per sample, shard-independent — Quantus's draw picks uniformly among all other classes
 * too: there is no off-by-one in 0.6.0); its default `num_classes = 1000` silently assumes
 * ImageNet (ours: read from the model); it normalises `a` by the max |a| of the whole data set and
 * each explanation by the max of its batch (ours: each map by its own max, `normalise`; this
 * changes nothing for Spearman/Pearson, and makes SSIM independent of the batch). SSIM is
 * scikit-image's on the flattened maps (window 7, sample covariance, data range = max − min of
 * both), in float64 (Quantus: float32).
 *
 * Cost: two explanations per sample (one with `reference: 'attributions'`), plus one forward pass
 * when `numClasses` is not given; `forwardPasses` counts the explainer's forward passes on the model.
 */
export class RandomLogit extends ClassRandomization<RandomLogitParams, ClassRandomizationResult> {
  static readonly meta: MetricMeta = {
    id: 'random-logit',
    name: 'RandomLogit',
    higherIsBetter: false,
    needs: ['attributions', 'explainer'],
    version: 2,
    cost: '2 explanations per sample (1 with reference: attributions)',
    reference: 'Sixt et al., ICML 2020; quantus.RandomLogit 0.6',
  }

  constructor(options: RandomLogitOptions) {
    super(randomLogitSchema, options)
  }

  protected finish(m: Merged): ClassRandomizationResult {
    const { scores, extra } = this.base(m)
    return this.result(m, scores, extra)
  }
}

const dataRandomizationSchema = classSchema('pearson')
  .extend({
    /** `passes` when the correlation is below this (autotimm: 0.5). */
    threshold: z.number().min(-1).max(1).default(0.5),
  })
  .transform((o) => withReference(o, false))
export type DataRandomizationOptions = z.input<typeof dataRandomizationSchema> & { explainer: ExplainerLike }
export type DataRandomizationParams = z.output<typeof dataRandomizationSchema>

export interface DataRandomizationResult extends ClassRandomizationResult {
  /** Per sample: the correlation with the explanation of the random class (= `scores`). */
  correlation: Float64Array
  /** Per sample: 1 where `correlation < threshold` (a class-sensitive explanation), 0 otherwise (or undefined). */
  passes: Uint8Array
  /** Share of samples that pass (over the samples with a defined correlation). */
  passRate: number
}

/**
 * Data randomization test (autotimm `data_randomization_test`, after Adebayo et al. 2018): the
 * correlation between the explanation for the label and for a random other class, with autotimm's
 * fields `correlation`, `change` (mean absolute difference) and `passes` (correlation below
 * `threshold`, 0.5 as autotimm — an option, not a verdict). Lower is better. autotimm does not
 * document which correlation: Pearson by default, `similarity` to choose. It explains one image at
 * a time for the predicted class; here every sample, batched, for its label. The explanation for
 * the label is the explainer's on the trained model (default) or the data set's `a`
 * (`reference: 'attributions'`).
 *
 * Cost: two explanations per sample (one with `reference: 'attributions'`); `forwardPasses`
 * counts the explainer's forward passes on the model.
 */
export class DataRandomization extends ClassRandomization<DataRandomizationParams, DataRandomizationResult> {
  static readonly meta: MetricMeta = {
    id: 'data-randomization',
    name: 'DataRandomization',
    higherIsBetter: false,
    needs: ['attributions', 'explainer'],
    version: 2,
    cost: '2 explanations per sample (1 with reference: attributions)',
    reference: 'autotimm ExplanationMetrics.data_randomization_test (docs); Adebayo et al., NeurIPS 2018',
  }

  constructor(options: DataRandomizationOptions) {
    super(dataRandomizationSchema, options)
  }

  protected finish(m: Merged): DataRandomizationResult {
    const { scores, extra } = this.base(m)
    const passes = Uint8Array.from(scores, (v) => (v < this.params.threshold ? 1 : 0))
    const defined = scores.filter((v) => !Number.isNaN(v)).length
    const passRate = defined ? passes.reduce((a, v) => a + v, 0) / defined : Number.NaN
    return this.result(m, scores, { ...extra, correlation: scores, passes, passRate })
  }
}

// ---------------------------------------------------------------------------------------------
// Model parameter randomization.

const mprtFields = {
  /** The explainer that explains each input on each randomized model (required; its name goes into the params). */
  explainer: explainerField,
  /** Path of the model's ONNX file (read, never written). */
  onnx: z.string().min(1),
  /** Options to load each randomized copy with (providers, workers, threads, batch size, output). */
  modelOptions: z.record(z.string(), z.unknown()).default({}),
  /**
   * `'top-down'` (default, Quantus): randomize from the output layer towards the input, cumulatively;
   * `'bottom-up'`: from the input, cumulatively; `'independent'`: one layer at a time.
   */
  layerOrder: z.enum(['top-down', 'bottom-up', 'independent']).default('top-down'),
  /** How the explanations are compared (default Spearman, as Quantus). */
  similarity: similarity.default('spearman'),
  /** Compare |a| (default true, as Quantus). */
  abs: z.boolean().default(true),
  /** Divide each map by its own max |a| (default true). */
  normalise: z.boolean().default(true),
  /** `passes` when the last stage's mean similarity is below this (autotimm: 0.5). */
  threshold: z.number().min(-1).max(1).default(0.5),
  /** What the randomized explanations are compared with (see {@link reference}). */
  reference: reference.optional(),
  /**
   * `'quantus'`: reproduce quantus.MPRT 0.6.0: compare with the data set's `a` (`reference`
   * defaults to `'attributions'`) and report `original`, the similarity of `a` to the explainer's
   * answer on the trained model.
   */
  compat,
  seed: seed.default(0),
}
const mprtSchema = z.strictObject(mprtFields).transform((o) => withReference(o, true))

export type ModelParameterRandomizationOptions = z.input<typeof mprtSchema> & { explainer: ExplainerLike }
export type ModelParameterRandomizationParams = z.output<typeof mprtSchema>

/** One stage of the test: the model with this layer (and, cascading, those before it) randomized. */
export interface RandomizedLayer {
  /** The node's name and op type. */
  name: string
  op: string
  /** Mean similarity over the samples with a defined value. */
  correlation: number
  /** Mean of the per-sample mean |a − a_random|. */
  change: number
  /** `correlation < threshold`. */
  passes: boolean
  /** Samples whose randomized model gave NaN/±Inf outputs (no explanation; NaN similarity). */
  nonFinite: number
  /** Why this stage has undefined values, when it has. */
  reason?: string
}

export interface ModelParameterRandomizationResult extends MetricResult {
  /** Stages in randomization order (top-down: the output layer first). */
  layers: RandomizedLayer[]
  /** `[N, layers]` per-sample similarity at each stage. */
  similarity: Float64Array
  /** `[N, layers]` per-sample mean |a − a_random| at each stage. */
  changes: Float64Array
  /** autotimm's fields, of the last stage (the fully randomized model when cascading): mean similarity, mean change, verdict. */
  correlation: number
  change: number
  passes: boolean
  /**
   * With `compat: 'quantus'` and `reference: 'attributions'`: per sample, the similarity of `a`
   * to the explainer's answer on the trained model (Quantus's `"original"` entry).
   */
  original?: Float64Array
  /**
   * Per sample: the mean of `original` (when reported) and every stage's similarity, NaN when any
   * is NaN — Quantus's `return_average_correlation` with `compat: 'quantus'`.
   */
  average: Float64Array
  undefinedScores: UndefinedScore[]
}

const NON_FINITE = 'the randomized model outputs NaN/±Inf for this input (randomized normalisation statistics?): no explanation'

/**
 * Model parameter randomization test (Adebayo et al., NeurIPS 2018; quantus.MPRT 0.6; autotimm's
 * `model_parameter_randomization_test`): the explainer explains every sample again on copies of
 * the model whose weights are randomized layer by layer, and each explanation is compared with
 * the trained model's: by default the same explainer's answer on the trained model (`reference:
 * 'explainer'`), or the data set's `a` (`'attributions'`). Scores: the per-sample similarity at
 * the last stage (lower is better: an explanation that survives randomization does not explain
 * the model); `layers` holds every stage, `correlation` / `change` / `passes` autotimm's fields
 * for the last one.
 *
 * Layers are the graph's nodes that read float weight tensors (initializers or `Constant` nodes),
 * in graph order. The ONNX file is read once, never written: each stage is re-encoded from it with
 * the randomized tensors replaced (onnx-buf on @bufbuild/protobuf), loaded from a temporary file
 * into its own session pool, and released after its explanations. Tensor `t` (in the node's input
 * order) of layer `l` becomes U(−b, b), b = 1/√fan_in (PyTorch's default init range), the uniforms
 * of `Rng::keyed(seed, l, Weights, t)` in row-major order, so a layer's random weights are the
 * same in every order and every shard (and a script can reproduce them: see
 * scripts/make_quantus_randomisation_fixture.py). Randomized normalisation layers can make outputs
 * NaN (negative variances): such samples are reported per stage (`nonFinite`, `reason`) and get
 * NaN, never a crash.
 *
 * `compat: 'quantus'`: compares with the data set's `a` and reports `original`. Remaining
 * deviations from Quantus 0.6 (the fixture hands Quantus ours): Quantus re-initialises torch
 * modules with `reset_parameters()` after `torch.manual_seed(seed + 1)` (BatchNorm back to identity
 * statistics; ours: the keyed uniform weights above, every float tensor, so BatchNorm's failure
 * mode is tested); it normalises `a` by the max |a| of the data set and each explanation by the max
 * of its batch (ours: per map; Spearman and Pearson do not change, SSIM no longer depends on the
 * batch); `return_average_correlation` is the result's `average` (not the scores).
 *
 * Cost: `1 + layers` explanations per sample (`layers` with `reference: 'attributions'`, one
 * more with compat's `original`), plus one forward pass per sample per stage (the NaN check);
 * `forwardPasses` counts the explainer's forward passes; each stage's model is loaded once.
 */
export class ModelParameterRandomization<P extends ModelParameterRandomizationParams = ModelParameterRandomizationParams> extends Metric<
  P,
  ModelParameterRandomizationResult
> {
  static readonly meta: MetricMeta = {
    id: 'model-parameter-randomization',
    name: 'ModelParameterRandomization',
    higherIsBetter: false,
    needs: ['attributions', 'explainer'],
    version: 2,
    cost: '1 + layers explanations per sample, plus 1 forward pass per sample per layer (the NaN check)',
    reference: 'Adebayo et al., NeurIPS 2018; quantus.MPRT 0.6; autotimm model_parameter_randomization_test (docs)',
  }

  protected readonly explainer: CheckedExplainer

  constructor(options: ModelParameterRandomizationOptions, schema: z.ZodType<P> = mprtSchema as unknown as z.ZodType<P>) {
    super(schema, options)
    this.explainer = explainerOf(options)
  }

  /** What the core compares per sample. */
  protected get comparison(): Comparison {
    return this.params.similarity
  }

  /** Stages: the set of randomized layer indices of each, in order. */
  protected stages(count: number): number[][] {
    const order = Array.from({ length: count }, (_, i) => i)
    if (this.params.layerOrder === 'top-down') order.reverse()
    if (this.params.layerOrder === 'independent') return order.map((l) => [l])
    return order.map((_, k) => order.slice(0, k + 1))
  }

  /**
   * The explanations of samples `rows` for their labels on `model` (the trained one when `own`):
   * one explanation per sample here; SmoothMPRT averages noisy copies.
   */
  protected explainOn(model: Model, d: Checked, o: CheckedMapOptions, rows: Int32Array, own: boolean, cost: Cost, channels?: number) {
    const labels = rows.length === d.n ? d.y : Int32Array.from(rows, (i) => d.y[i]!)
    return explainSamples(this.explainer, model, d, o, rows, labels, own, cost, channels)
  }

  protected async shardOf(trained: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const p = this.params
    let bytes: Uint8Array
    try {
      bytes = await readFile(p.onnx)
    } catch (e) {
      throw new XaiEvalError('MODEL_LOAD', 'onnx', `cannot read ${p.onnx}: ${(e as Error).message}`, { cause: e })
    }
    const layers = onnxLayers(bytes)
    if (layers.length === 0) throw new XaiEvalError('INVALID_OPTION', 'onnx', 'the model has no layer with float weights to randomize')
    const stages = this.stages(layers.length)
    const names = stages.map((s) => layers[s[s.length - 1]!]!)
    const width = stages.length
    const sim = new Float64Array(d.n * width).fill(Number.NaN)
    const change = new Float64Array(d.n * width).fill(Number.NaN)
    const bad = new Float64Array(d.n * width)
    const cost = newCost()
    const all = allRows(d.n)
    const ref = p.reference === 'attributions' ? { a: d.a, channels: d.attrChannels } : await this.explainOn(trained, d, o, all, true, cost)
    const per = ref.channels * d.height * d.width
    const columns: Record<string, { width: number; values: Float64Array }> = {}
    if (p.compat === 'quantus' && p.reference === 'attributions') {
      const fresh = await this.explainOn(trained, d, o, all, true, cost, ref.channels)
      const cmp = await compareExplanations(ref.a, fresh.a, d.n, this.comparison, p.abs, p.normalise, o.signal)
      columns.original = { width: 1, values: Float64Array.from({ length: d.n }, (_, i) => cmp[2 * i]!) }
    }
    const dir = await mkdtemp(join(tmpdir(), 'xai-eval-mprt-'))
    const rowShape = [d.channels, d.height, d.width]
    try {
      for (const [k, stage] of stages.entries()) {
        throwIfAborted(o.signal)
        const path = join(dir, `stage-${k}.onnx`)
        await writeFile(path, randomizeLayers(bytes, stage, p.seed))
        const model = await OnnxModel.load(path, p.modelOptions as never)
        try {
          const finite: number[] = []
          const len = d.channels * d.height * d.width
          for (let start = 0; start < d.n; start += model.maxBatchSize) {
            const rows = Math.min(model.maxBatchSize, d.n - start)
            // A copy: the model may transfer its input's buffer to the worker.
            const out = await model.forward(d.x.slice(start * len, (start + rows) * len), rows, rowShape)
            cost.forwardPasses += rows
            cost.batches += 1
            const classes = out.length / rows
            for (let i = 0; i < rows; i++) {
              if (out.subarray(i * classes, (i + 1) * classes).every(Number.isFinite)) finite.push(start + i)
              else bad[(start + i) * width + k] = 1
            }
          }
          if (finite.length === 0) continue
          const rows = Int32Array.from(finite)
          const b = await this.explainOn(model, d, o, rows, false, cost, ref.channels)
          const cmp = await compareExplanations(rowsOf(ref.a, per, rows), b.a, rows.length, this.comparison, p.abs, p.normalise, o.signal)
          rows.forEach((s, r) => {
            sim[s * width + k] = cmp[2 * r]!
            change[s * width + k] = cmp[2 * r + 1]!
          })
        } finally {
          await model.close()
          await rm(path, { force: true })
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    return this.shard(
      o.firstSample,
      d.n,
      { similarity: { width, values: sim }, change: { width, values: change }, nonFinite: { width, values: bad }, ...columns },
      cost,
      { layers: names.map((l) => `${l.op}:${l.name}`) },
    )
  }

  protected finish(m: Merged): ModelParameterRandomizationResult {
    const { width, values: sim } = column(m, 'similarity')
    const change = column(m, 'change').values
    const bad = column(m, 'nonFinite').values
    const n = m.samples
    const names = m.common.layers
    if (!Array.isArray(names) || names.length !== width || !names.every((v) => typeof v === 'string')) {
      throw new XaiEvalError('INVALID_OPTION', 'shards', `common.layers must name the ${width} randomized stages`)
    }
    const mean = (v: Float64Array, k: number) => {
      let [s, c] = [0, 0]
      for (let i = 0; i < n; i++) {
        const x = v[i * width + k]!
        if (!Number.isNaN(x)) [s, c] = [s + x, c + 1]
      }
      return c ? s / c : Number.NaN
    }
    const layers: RandomizedLayer[] = (names as string[]).map((full, k) => {
      const [op, ...rest] = full.split(':')
      let nonFinite = 0
      let undef = 0
      for (let i = 0; i < n; i++) {
        if (bad[i * width + k]) nonFinite++
        else if (Number.isNaN(sim[i * width + k]!)) undef++
      }
      const correlation = mean(sim, k)
      const reason = nonFinite
        ? `${nonFinite} of ${n} samples: ${NON_FINITE}`
        : undef
          ? `${undef} of ${n} samples: ${NAN_REASON[this.comparison]}`
          : undefined
      return {
        name: rest.join(':'),
        op: op!,
        correlation,
        change: mean(change, k),
        passes: correlation < this.params.threshold,
        nonFinite,
        ...(reason ? { reason } : {}),
      }
    })
    const last = width - 1
    const scores = Float64Array.from({ length: n }, (_, i) => sim[i * width + last]!)
    const undefinedScores: UndefinedScore[] = []
    scores.forEach((v, i) => {
      if (Number.isNaN(v)) {
        undefinedScores.push({ sample: m.firstSample + i, reason: bad[i * width + last] ? NON_FINITE : NAN_REASON[this.comparison] })
      }
    })
    const original = m.columns.original?.values
    const average = Float64Array.from({ length: n }, (_, i) => {
      let sum = original ? original[i]! : 0
      for (let k = 0; k < width; k++) sum += sim[i * width + k]!
      return sum / (width + (original ? 1 : 0))
    })
    const final = layers[last]!
    return this.result(m, scores, {
      layers,
      similarity: sim,
      changes: change,
      correlation: final.correlation,
      change: final.change,
      passes: final.passes,
      ...(original ? { original } : {}),
      average,
      undefinedScores,
    })
  }
}

const smoothSchema = z
  .strictObject({
    ...mprtFields,
    /** `'bottom-up'` (default, as Hedström et al. and Quantus), `'top-down'` or `'independent'`. */
    layerOrder: z.enum(['top-down', 'bottom-up', 'independent']).default('bottom-up'),
    /** Explanations averaged per sample and model (Quantus's `nr_samples`, default 50). */
    nrSamples: z.int().min(1).max(10_000).default(50),
    /** Noise σ of sample n = `noiseMagnitude`·(max x_n − min x_n) (default 0.1, as Quantus). */
    noiseMagnitude: z.number().min(0).max(1e3).default(0.1),
    /**
     * `'quantus'`: reproduce quantus.SmoothMPRT 0.6.0: the last of the `nrSamples` copies is the
     * clean input (ε = 0); `original` as in MPRT's compat when `reference: 'attributions'`.
     */
    compat,
  })
  .transform((o) => withReference(o, false))

export type SmoothMPRTOptions = z.input<typeof smoothSchema> & { explainer: ExplainerLike }
export type SmoothMPRTParams = z.output<typeof smoothSchema>

/**
 * Smooth MPRT (sMPRT; Hedström et al., "Sanity checks revisited: an exploration to repair the
 * model parameter randomisation test", TMLR 2024; quantus.SmoothMPRT 0.6): MPRT whose
 * explanations are denoised — every explanation, of the trained model and of each randomized
 * stage, is the mean of the explainer's answers on `nrSamples` noisy copies `x + ε_k`,
 * `ε_k ~ N(0, σ_n²)` per entry, `σ_n = noiseMagnitude·(max x_n − min x_n)` — then compared layer
 * by layer as in {@link ModelParameterRandomization} (same stages, keyed weights, NaN guard).
 * Lower is better. Draw `k` of sample `n` is keyed by (seed, global sample n, Perturbation, k)
 * and is the same on every model (common random numbers: differences between stages come from
 * the weights, not the noise); all copies of all samples go through the explainer in batched
 * calls. Defaults: bottom-up, Spearman, `abs`, reference = the smoothed explanation of the
 * trained model.
 *
 * `compat: 'quantus'`: the last copy is the clean input (Quantus's ε = 0, so that `nrSamples = 1`
 * is MPRT). Remaining deviations from Quantus 0.6 (the fixture hands Quantus ours): Quantus draws
 * the noise from numpy's global, unseeded RNG, fresh for every model (ours: keyed, shared by the
 * models); it explains with `quantus.explain` (captum/zennit methods), ignoring the `explain_func`
 * it is given (ours: the given explainer); it normalises by the root of the average second moment
 * over the whole batch (ours: each map by its max; Spearman and Pearson do not change); it
 * averages in float32 (ours: float64); the randomization is `reset_parameters()` (see MPRT).
 *
 * Cost: `nrSamples·(1 + layers)` explanations per sample plus one forward pass per sample per
 * stage; `forwardPasses` counts the explainer's forward passes. Memory: as MPRT (the shard's
 * reference and one stage's maps, float32) plus one float64 map being averaged.
 */
export class SmoothMPRT extends ModelParameterRandomization<SmoothMPRTParams> {
  static override readonly meta: MetricMeta = {
    id: 'smooth-mprt',
    name: 'SmoothMPRT',
    higherIsBetter: false,
    needs: ['attributions', 'explainer'],
    version: 1,
    cost: 'nrSamples·(1 + layers) explanations per sample, plus 1 forward pass per sample per layer',
    reference: 'Hedström et al., TMLR 2024 (sMPRT); quantus.SmoothMPRT 0.6',
  }

  constructor(options: SmoothMPRTOptions) {
    super(options as never, smoothSchema)
  }

  protected override async explainOn(
    model: Model,
    d: Checked,
    o: CheckedMapOptions,
    rows: Int32Array,
    _own: boolean,
    cost: Cost,
    channels?: number,
  ): Promise<Explained> {
    const p = this.params
    const draws = p.nrSamples
    const pixels = d.height * d.width
    let got = channels
    // Chunks arrive in row order and a sample's draws are contiguous: one float64 accumulator for
    // the sample in progress, each mean written out (float32) after its last draw.
    let out: Float32Array | undefined
    let acc: Float64Array | undefined
    await explainRows(
      this.explainer,
      model,
      [d.channels, d.height, d.width],
      rows.length * draws,
      async (start, end, x, targets) => {
        const pairs = new Uint32Array(2 * (end - start))
        for (let r = start; r < end; r++) {
          const s = rows[Math.floor(r / draws)]!
          pairs[2 * (r - start)] = s
          pairs[2 * (r - start) + 1] = r % draws
          targets[r - start] = d.y[s]!
        }
        const clean = p.compat === 'quantus' ? draws - 1 : -1
        await smoothRows(d.x, d.n, o.firstSample, p.seed, p.noiseMagnitude, clean, pairs, x, o.signal)
        return undefined
      },
      (start, { a, channels: c }) => {
        if (got === undefined) got = c
        sameChannels(this.explainer, c, got, 'the reference explanations have')
        const per = got * pixels
        out ??= new Float32Array(rows.length * per)
        acc ??= new Float64Array(per)
        for (let i = 0; i < a.length / per; i++) {
          for (let j = 0; j < per; j++) acc[j]! += a[i * per + j]!
          const r = start + i
          if (r % draws === draws - 1) {
            const base = Math.floor(r / draws) * per
            for (let j = 0; j < per; j++) out[base + j] = acc[j]! / draws
            acc.fill(0)
          }
        }
      },
      o.signal,
      cost,
    )
    return { a: out ?? new Float32Array(0), channels: got ?? d.attrChannels }
  }
}

const emprtSchema = z
  .strictObject({
    ...mprtFields,
    /** Compare |a| (default false, as Quantus's eMPRT). */
    abs: z.boolean().default(false),
    /** Divide each map by its own max |a| (default false, as Quantus's eMPRT; the entropy of a histogram over the map's own range ignores it). */
    normalise: z.boolean().default(false),
    /** Unused by eMPRT (kept so that the stages are MPRT's). */
    similarity: similarity.default('spearman'),
    /** `'quantus'`: quantus.EfficientMPRT 0.6.0 (the same numbers as the default; accepted for symmetry). */
    compat,
  })
  .omit({ layerOrder: true, threshold: true })
  .transform((o) => ({ ...withReference(o, false), layerOrder: 'bottom-up' as const, threshold: 0 }))

export type EfficientMPRTOptions = z.input<typeof emprtSchema> & { explainer: ExplainerLike }

/**
 * Efficient MPRT (eMPRT; Hedström et al., "Sanity checks revisited", TMLR 2024; quantus.EfficientMPRT
 * 0.6): the relative rise in explanation complexity when every layer of the model is randomized,
 * (H(a_random) − H(a)) / H(a), with H the discrete entropy (natural log) of a 100-bin histogram of
 * the map over its own range (`scipy.stats.entropy(np.histogram(a, 100)[0])`). Higher is better
 * (an explanation of a random model should be noisier). `a` is the explainer's explanation of the
 * trained model (as Quantus: recomputed; `reference: 'attributions'` takes the data set's `a`).
 * One stage: every layer randomized (the end of a bottom-up cascade, Quantus's
 * `skip_layers=True`), loaded, NaN-checked and explained as in {@link ModelParameterRandomization}
 * (same keyed weights). `layers[0].correlation` holds the mean rise; `passes` is not meaningful here.
 *
 * `compat: 'quantus'` gives the same numbers as the default. Deviations from Quantus 0.6: its
 * randomization is torch's `reset_parameters` (ours: keyed uniform weights, every float tensor;
 * the fixture hands Quantus ours); its extra scores (`compute_extra_scores`) are not offered. A
 * constant map of the trained model (H = 0) gives NaN with its reason.
 *
 * Cost: two explanations per sample (one with `reference: 'attributions'`) and one forward pass
 * per sample on the fully randomized model, one model loaded.
 */
export class EfficientMPRT extends ModelParameterRandomization {
  static override readonly meta: MetricMeta = {
    id: 'efficient-mprt',
    name: 'EfficientMPRT',
    higherIsBetter: true,
    needs: ['attributions', 'explainer'],
    version: 2,
    cost: '2 explanations per sample, and 1 forward pass per sample on the fully randomized model',
    reference: 'Hedström et al., TMLR 2024 (eMPRT); quantus.EfficientMPRT 0.6',
  }

  constructor(options: EfficientMPRTOptions) {
    super(options as never, emprtSchema as never)
  }

  protected override get comparison(): Comparison {
    return 'entropy-rise'
  }

  protected override stages(count: number): number[][] {
    return [Array.from({ length: count }, (_, i) => i)]
  }
}
