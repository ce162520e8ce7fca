// `ExplanationMetrics`: autotimm's facade over the suite, for several explanation methods at once
// and whole data sets. Each method's explanations of the data set are computed once (and held in
// an explanation cache, so re-explaining the same rows is free) and shared by every metric;
// `compareMethods` answers "which method is best, and is that real?" with a methods × metrics
// table: means, seeded bootstrap intervals, ranks by each metric's direction, and paired tests
// against the best method.
import { XaiEvalError } from './errors.js'
import { DEFAULT_CACHE_BYTES, ExplanationCache } from './explainers/cache.js'
import { checkExplainer, type ExplainerLike, explainRows, isExplainer, type NamedExplainer, precomputed } from './explainers/explainer.js'
import { Deletion, type DeletionInsertionOptions, Insertion } from './metrics/deletion-insertion.js'
import { PointingGame, type PointingGameOptions } from './metrics/localisation.js'
import { checkModel, type MetricResult } from './metrics/protocol.js'
import {
  DataRandomization,
  type DataRandomizationOptions,
  ModelParameterRandomization,
  type ModelParameterRandomizationOptions,
} from './metrics/randomization.js'
import { SensitivityN, type SensitivityNOptions } from './metrics/sensitivity.js'
import type { Model } from './models/model.js'
import { compareMethods as compareScores } from './compare.js'
import { describeValue, parseOptions, seed, z } from './options.js'
import { checkDataset } from './validate.js'

/** Options of a metric: absent or a plain object. */
const isOptions = (o: unknown): o is object | undefined => o === undefined || (o !== null && typeof o === 'object' && !Array.isArray(o))

/** An explanation method: an explainer, or precomputed maps `[N, C|1, H, W]` of the data set it is used with. */
export type Method = ExplainerLike | Float32Array

const constructorSchema = z.strictObject({
  /** Methods by name. */
  explainers: z
    .record(
      z.string().min(1).max(100),
      z.custom<Method>((v) => v instanceof Float32Array || isExplainer(v), 'expected an explainer or precomputed maps (a Float32Array)'),
    )
    .refine((r) => Object.keys(r).length > 0, 'expected at least one method'),
  /** The model's ONNX file, for `modelParameterRandomizationTest` (which rewrites copies of it). */
  onnx: z.string().min(1).optional(),
  /** Options to load the randomized copies with. */
  modelOptions: z.record(z.string(), z.unknown()).optional(),
  /** Seed of every random draw the facade makes (noise, random classes, weights, bootstrap). */
  seed: seed.default(0),
  /** Memory bound of the explanation cache, in bytes (default 256 MiB). */
  cacheBytes: z
    .int()
    .min(0)
    .max(2 ** 40)
    .default(DEFAULT_CACHE_BYTES),
})

export type ExplanationMetricsOptions = z.input<typeof constructorSchema>

/** A data set (or one image: `shape` `[C, H, W]`, `y` a number), with optional object masks or boxes. */
export interface FacadeData {
  x: Float32Array
  shape: readonly number[]
  y: ArrayLike<number> | number
  masks?: Uint8Array
  boxes?: ArrayLike<number>
}

/** The metrics of `evaluateAll` / `compareMethods`, by autotimm's names (camelCase). */
export const FACADE_METRICS = ['deletion', 'insertion', 'sensitivity', 'paramRandomization', 'dataRandomization', 'pointingGame'] as const
export type FacadeMetric = (typeof FACADE_METRICS)[number]

/** A metric a method could not be scored by, and why (e.g. precomputed maps cannot explain noisy inputs). */
export interface Unavailable {
  error: string
}

export type MethodResults<R> = Record<string, R>

const allOptions = z.strictObject({
  /** Which metrics (default: all that apply — pointing game with masks or boxes, parameter randomization with `onnx`). */
  metrics: z.array(z.enum(FACADE_METRICS)).min(1).optional(),
  masks: z.instanceof(Uint8Array).optional(),
  boxes: z
    .custom<ArrayLike<number>>((v) => v !== null && typeof v === 'object' && typeof (v as ArrayLike<number>).length === 'number')
    .optional(),
  /** Options of each metric. */
  deletion: z.record(z.string(), z.unknown()).optional(),
  insertion: z.record(z.string(), z.unknown()).optional(),
  sensitivity: z.record(z.string(), z.unknown()).optional(),
  paramRandomization: z.record(z.string(), z.unknown()).optional(),
  dataRandomization: z.record(z.string(), z.unknown()).optional(),
  pointingGame: z.record(z.string(), z.unknown()).optional(),
  /** Stops the run within a batch (an `ABORTED` error). */
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
  /** Called after each metric has scored every method. */
  onProgress: z.custom<(p: FacadeProgress) => void>((v) => typeof v === 'function', 'expected a function').optional(),
})

/** Progress of `evaluateAll` / `compareMethods`: a metric finished for every method. */
export interface FacadeProgress {
  metric: FacadeMetric
  /** Metrics finished so far, and in all. */
  done: number
  total: number
  /** Milliseconds since the call began. */
  ms: number
}

export type EvaluateAllOptions = z.input<typeof allOptions>

const compareOptions = allOptions.extend({
  /** Paired bootstrap resamples (default 2000). */
  resamples: z.int().min(100).max(1_000_000).default(2000),
  /** Level of the tests against the best method; the intervals are at 1 − alpha (default 0.05: 95 %). */
  alpha: z.number().gt(0).lt(1).default(0.05),
})

export type CompareMethodsOptions = z.input<typeof compareOptions>

/** One cell of the comparison table. */
export interface ComparisonCell {
  method: string
  metric: FacadeMetric
  /** Mean over the paired samples (every compared method has a defined score). */
  mean: number
  /** Paired percentile bootstrap interval of the mean at 1 − alpha. */
  ci: [number, number]
  /** Paired samples compared. */
  n: number
  /** 1 = best by the metric's direction (ties share the mean rank); NaN when unavailable. */
  rank: number
  /** Whether this method has the best rank by the metric's direction (every one of tied best methods has). */
  best: boolean
  /** Two-sided paired bootstrap p-value of the difference to the best method (NaN for the best itself). */
  pValue: number
  /** Whether the bootstrap interval of the difference to the best excludes 0 (false for the best itself). */
  significant: boolean
  /** Why this method has no score for this metric. */
  error?: string
}

export interface ComparisonTable {
  methods: string[]
  metrics: { id: FacadeMetric; higherIsBetter: boolean }[]
  /** Each metric's validated parameters, defaults included (the explainer's name left out): what the table was computed with. */
  settings: Partial<Record<FacadeMetric, Record<string, unknown>>>
  cells: ComparisonCell[]
  confidence: number
  alpha: number
  /** Explainer rows answered from the explanation cache vs computed, over the whole comparison. */
  explanations: { computed: number; reused: number }
  /** A text table: `mean [lo, hi] #rank`, `=` where not significantly different from the best. */
  toString(): string
}

/**
 * autotimm's `ExplanationMetrics` for several methods and whole data sets:
 * `new ExplanationMetrics(model, { explainers: { occlusion: occlusion(), ig: igMaps } })`.
 * Every method returns one result per method name; single images are accepted.
 */
export class ExplanationMetrics {
  private readonly options: z.output<typeof constructorSchema>
  private readonly cache: ExplanationCache
  private readonly methods: Map<string, Method>
  private readonly explained = new WeakMap<Float32Array, Map<string, { a: Float32Array; channels: number }>>()

  constructor(
    private readonly model: Model,
    options: ExplanationMetricsOptions,
  ) {
    checkModel(model)
    this.options = parseOptions(constructorSchema, options)
    this.cache = new ExplanationCache(this.options.cacheBytes)
    this.methods = new Map<string, Method>()
    for (const [name, m] of Object.entries(this.options.explainers)) {
      if (m instanceof Float32Array) {
        this.methods.set(name, m)
        continue
      }
      // Named by the method (the checks and cache keys use the function the user gave).
      const e = checkExplainer(m, `explainers.${name}`)
      this.methods.set(name, this.cache.wrap({ name, explain: e.source, batchSize: e.batchSize }))
    }
  }

  /** Method names, in the order given. */
  get methodNames(): string[] {
    return [...this.methods.keys()]
  }

  /** The data set as a checked `[N, C, H, W]` set, without attributions yet. */
  private dataOf(data: FacadeData, masks?: Uint8Array, boxes?: ArrayLike<number>) {
    if (data === null || typeof data !== 'object')
      throw new XaiEvalError('INVALID_OPTION', 'data', 'expected { x, shape, y, masks?, boxes? }')
    const single = Array.isArray(data.shape) && data.shape.length === 3
    const shape = (single ? [1, ...data.shape] : data.shape) as [number, number, number, number]
    const y = typeof data.y === 'number' ? [data.y] : data.y
    const m = masks ?? data.masks
    const b = boxes ?? data.boxes
    const d = {
      x: data.x,
      shape,
      y,
      a: new Float32Array(0),
      aShape: shape,
      ...(m ? { masks: m } : {}),
      ...(b ? { boxes: b } : {}),
    }
    // Check everything but the attributions (not computed yet): the inputs stand in for them, so
    // nothing is allocated before the shape is known to match x.
    checkDataset({ ...d, a: data.x, aShape: shape })
    return d
  }

  /** The method's attributions of the data set's own inputs for their labels, computed once. */
  private async attributions(
    name: string,
    d: ReturnType<ExplanationMetrics['dataOf']>,
    signal?: AbortSignal,
  ): Promise<{ a: Float32Array; channels: number }> {
    let byMethod = this.explained.get(d.x)
    if (!byMethod) {
      byMethod = new Map()
      this.explained.set(d.x, byMethod)
    }
    const known = byMethod.get(name)
    if (known) return known
    const method = this.methods.get(name)!
    const [n, c, h, w] = d.shape
    let out: { a: Float32Array; channels: number }
    if (method instanceof Float32Array) {
      const channels = method.length === n * c * h * w ? c : method.length === n * h * w ? 1 : -1
      if (channels < 0) {
        throw new XaiEvalError(
          'SHAPE_MISMATCH',
          `explainers.${name}`,
          `${method.length} values are not maps [${n}, ${c}|1, ${h}, ${w}] of this data set`,
        )
      }
      out = { a: method, channels }
    } else {
      const e = checkExplainer(method)
      const len = c * h * w
      const parts: Float32Array[] = []
      let channels = 1
      const y = Int32Array.from(d.y as ArrayLike<number>)
      await explainRows(
        e,
        this.model,
        [c, h, w],
        n,
        (start, end, x, targets) => {
          x.set(d.x.subarray(start * len, end * len))
          targets.set(y.subarray(start, end))
          return Int32Array.from({ length: end - start }, (_, i) => start + i)
        },
        (_start, r) => {
          parts.push(r.a)
          channels = r.channels
        },
        signal,
      )
      const a = new Float32Array(parts.reduce((s, p) => s + p.length, 0))
      let off = 0
      for (const p of parts) {
        a.set(p, off)
        off += p.length
      }
      out = { a, channels }
    }
    byMethod.set(name, out)
    return out
  }

  /** The explainer the re-explaining metrics use for a method (precomputed maps answer only their own rows). */
  private explainerOf(name: string, n: number, shape: readonly number[]): NamedExplainer {
    const m = this.methods.get(name)!
    if (m instanceof Float32Array) {
      const [, c, h, w] = shape as [number, number, number, number]
      return precomputed(m, [n, m.length === n * c * h * w ? c : 1, h, w], name)
    }
    return m as NamedExplainer
  }

  private async each<R extends MetricResult>(
    data: FacadeData,
    run: (d: Parameters<typeof checkDataset>[0], explainer: NamedExplainer) => Promise<R>,
    how: { masks?: Uint8Array; boxes?: ArrayLike<number>; signal?: AbortSignal } = {},
  ): Promise<MethodResults<R>> {
    const d = this.dataOf(data, how.masks, how.boxes)
    const out: MethodResults<R> = {}
    for (const name of this.methods.keys()) {
      const { a, channels } = await this.attributions(name, d, how.signal)
      const [n, , h, w] = d.shape
      out[name] = await run({ ...d, a, aShape: [n, channels, h, w] }, this.explainerOf(name, n, d.shape))
    }
    return out
  }

  /** Deletion (autotimm `deletion`): one result per method. */
  async deletion(data: FacadeData, options?: DeletionInsertionOptions): Promise<MethodResults<MetricResult>> {
    return this.run('deletion', data, options)
  }

  /** Insertion (autotimm `insertion`). */
  async insertion(data: FacadeData, options?: DeletionInsertionOptions): Promise<MethodResults<MetricResult>> {
    return this.run('insertion', data, options)
  }

  /** Sensitivity-N (autotimm `sensitivity_n`); precomputed maps cannot explain noisy inputs (typed error). */
  async sensitivityN(data: FacadeData, options?: Omit<SensitivityNOptions, 'explainer'>): Promise<MethodResults<MetricResult>> {
    return this.run('sensitivity', data, options)
  }

  /** Model parameter randomization (autotimm `model_parameter_randomization_test`); needs `onnx`. */
  async modelParameterRandomizationTest(
    data: FacadeData,
    options?: Omit<ModelParameterRandomizationOptions, 'explainer' | 'onnx'>,
  ): Promise<MethodResults<MetricResult>> {
    return this.run('paramRandomization', data, options)
  }

  /** Data randomization (autotimm `data_randomization_test`). */
  async dataRandomizationTest(
    data: FacadeData,
    options?: Omit<DataRandomizationOptions, 'explainer'>,
  ): Promise<MethodResults<MetricResult>> {
    return this.run('dataRandomization', data, options)
  }

  /** Pointing game (autotimm `pointing_game`): masks or boxes in the data (or given here). */
  async pointingGame(
    data: FacadeData,
    options?: PointingGameOptions & { masks?: Uint8Array; boxes?: ArrayLike<number> },
  ): Promise<MethodResults<MetricResult>> {
    if (!isOptions(options)) return this.run('pointingGame', data, options) // a typed error
    const { masks, boxes, ...rest } = options ?? {}
    return this.run('pointingGame', data, rest, { masks, boxes })
  }

  /**
   * One facade metric for every method. `safe`: a method's explainer error (precomputed maps asked
   * to explain a new input) becomes `{ error }` for that method instead of failing the call.
   */
  private run(
    metric: FacadeMetric,
    data: FacadeData,
    options: object | undefined,
    how: { masks?: Uint8Array; boxes?: ArrayLike<number>; signal?: AbortSignal; safe?: boolean } = {},
  ): Promise<MethodResults<MetricResult>> {
    // Spreading a number or a boolean into the metric's options would silently give its defaults.
    if (!isOptions(options)) {
      throw new XaiEvalError('INVALID_OPTION', 'options', `expected the ${metric} options as an object, got ${describeValue(options)}`)
    }
    const seed = this.options.seed
    const { signal } = how
    const evaluate = (m: { evaluate(model: Model, d: never, o?: object): Promise<MetricResult> }, d: unknown) =>
      m.evaluate(this.model, d as never, signal ? { signal } : {})
    let score: (d: Parameters<typeof checkDataset>[0], explainer: NamedExplainer) => Promise<MetricResult>
    switch (metric) {
      case 'deletion': {
        const m = new Deletion(options as DeletionInsertionOptions)
        score = (d) => evaluate(m, d)
        break
      }
      case 'insertion': {
        const m = new Insertion(options as DeletionInsertionOptions)
        score = (d) => evaluate(m, d)
        break
      }
      case 'pointingGame': {
        const m = new PointingGame(options as PointingGameOptions)
        score = (d) => evaluate(m, d)
        break
      }
      case 'sensitivity':
        score = (d, explainer) => evaluate(new SensitivityN({ seed, ...options, explainer }), d)
        break
      case 'dataRandomization':
        score = (d, explainer) => evaluate(new DataRandomization({ seed, ...options, explainer }), d)
        break
      case 'paramRandomization': {
        const onnx = this.options.onnx
        if (!onnx) {
          throw new XaiEvalError(
            'INVALID_OPTION',
            'onnx',
            'the parameter randomization test needs the model’s ONNX file: new ExplanationMetrics(model, { onnx })',
          )
        }
        const modelOptions = this.options.modelOptions ?? {}
        score = (d, explainer) => evaluate(new ModelParameterRandomization({ seed, modelOptions, ...options, explainer, onnx }), d)
        // The cache keys explanations by model too: the trained model's maps (MPRT's reference)
        // come from it, each randomized copy's are its own.
        break
      }
    }
    const guarded = how.safe
      ? async (d: Parameters<typeof checkDataset>[0], e: NamedExplainer) => {
          try {
            return await score(d, e)
          } catch (err) {
            if (err instanceof XaiEvalError && err.code === 'EXPLAINER') return { error: err.message } as unknown as MetricResult
            throw err
          }
        }
      : score
    return this.each(data, guarded, { masks: how.masks, boxes: how.boxes, signal })
  }

  /**
   * Every applicable metric for every method (autotimm `evaluate_all`): explanations computed once
   * per method and shared. A metric a method cannot be scored by (precomputed maps asked to explain
   * a noisy input) is `{ error }`, not a failure of the whole run. `signal` stops the run within a
   * batch (an `ABORTED` error).
   */
  async evaluateAll(
    data: FacadeData,
    options?: EvaluateAllOptions,
  ): Promise<MethodResults<Partial<Record<FacadeMetric, MetricResult | Unavailable>>>> {
    const o = parseOptions(allOptions, options)
    const hasRegions = !!(o.masks ?? o.boxes ?? data?.masks ?? data?.boxes)
    const metrics =
      o.metrics ??
      FACADE_METRICS.filter((m) => (m === 'pointingGame' ? hasRegions : m === 'paramRandomization' ? !!this.options.onnx : true))
    const out: MethodResults<Partial<Record<FacadeMetric, MetricResult | Unavailable>>> = Object.fromEntries(
      this.methodNames.map((n) => [n, {}]),
    )
    const t0 = performance.now()
    for (const [i, m] of metrics.entries()) {
      const r = await this.run(m, data, o[m], {
        ...(m === 'pointingGame' ? { masks: o.masks, boxes: o.boxes } : {}),
        signal: o.signal,
        safe: m === 'sensitivity' || m === 'paramRandomization' || m === 'dataRandomization',
      })
      for (const [name, v] of Object.entries(r)) out[name]![m] = v
      o.onProgress?.({ metric: m, done: i + 1, total: metrics.length, ms: performance.now() - t0 })
    }
    return out
  }

  /**
   * The methods × metrics table, with the statistics of the CLI and the report
   * (`compareMethods` of `compare.ts`): per cell the mean over the samples every method scored,
   * its paired percentile bootstrap interval (seeded), the rank by the metric's direction
   * (`higherIsBetter` of its result), and whether the difference to the best method is
   * significant. No correction for multiple comparisons is applied: read `pValue` with the number
   * of cells in mind.
   */
  async compareMethods(data: FacadeData, options?: CompareMethodsOptions): Promise<ComparisonTable> {
    const o = parseOptions(compareOptions, options)
    const { resamples, alpha, ...rest } = o
    const before = { hits: this.cache.hits, misses: this.cache.misses }
    const all = await this.evaluateAll(data, rest)
    const methods = this.methodNames
    const metricIds = FACADE_METRICS.filter((m) => methods.some((n) => all[n]![m] !== undefined))
    const metrics: ComparisonTable['metrics'] = []
    const cells: ComparisonCell[] = []
    const settings: ComparisonTable['settings'] = {}
    for (const id of metricIds) {
      const results = methods.map((n) => all[n]![id] as MetricResult | Unavailable | undefined)
      const scored = methods.flatMap((n, i) => {
        const r = results[i]
        return r && !('error' in r) ? [[n, r] as const] : []
      })
      const higher = scored[0]?.[1].higherIsBetter ?? true
      metrics.push({ id, higherIsBetter: higher })
      if (scored[0]) {
        const { explainer: _, ...params } = scored[0][1].params
        settings[id] = params
      }
      // The statistics of the CLI and the report, on the methods that have scores.
      const comparison =
        scored.length > 0
          ? compareScores(id, higher, Object.fromEntries(scored.map(([n, r]) => [n, r.scores])), {
              reps: resamples,
              seed: this.options.seed,
              alpha,
            })
          : undefined
      methods.forEach((method, i) => {
        const r = results[i]
        const c = comparison?.methods.find((m) => m.method === method)
        if (!r || 'error' in r || !c) {
          cells.push({
            method,
            metric: id,
            mean: Number.NaN,
            ci: [Number.NaN, Number.NaN],
            n: 0,
            rank: Number.NaN,
            best: false,
            pValue: Number.NaN,
            significant: false,
            error: r && 'error' in r ? r.error : 'not evaluated',
          })
          return
        }
        cells.push({
          method,
          metric: id,
          mean: c.mean,
          ci: c.ci,
          n: comparison!.pairedSamples,
          rank: c.rank,
          best: c.best,
          pValue: c.best ? Number.NaN : c.p,
          significant: c.significant,
        })
      })
    }
    const explanations = { computed: this.cache.misses - before.misses, reused: this.cache.hits - before.hits }
    return {
      methods,
      metrics,
      settings,
      cells,
      confidence: 1 - alpha,
      alpha,
      explanations,
      toString: () => formatTable(methods, metrics, cells),
    }
  }
}

const fmt = (v: number) => (Number.isNaN(v) ? 'NaN' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3))

function formatTable(methods: string[], metrics: ComparisonTable['metrics'], cells: ComparisonCell[]): string {
  const head = ['method', ...metrics.map((m) => `${m.id} ${m.higherIsBetter ? '↑' : '↓'}`)]
  const rows = methods.map((method) => [
    method,
    ...metrics.map((m) => {
      const c = cells.find((x) => x.method === method && x.metric === m.id)!
      if (c.error) return 'n/a'
      return `${fmt(c.mean)} [${fmt(c.ci[0])}, ${fmt(c.ci[1])}] #${c.rank}${c.best || c.significant ? ' ' : '='}`
    }),
  ])
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)))
  const line = (r: string[]) => r.map((v, j) => (j === 0 ? v.padEnd(widths[j]!) : v.padStart(widths[j]!))).join('  ')
  return [line(head), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}
