// The one protocol every data-set metric follows: validated, frozen parameters; a `map` from a
// shard of the data set (its global sample range) to small serialisable statistics; and a
// `reduce` that merges shards into the result — refusing gaps, overlaps and shards made with other
// parameters or another version of the metric. `evaluate` is `reduce([map(all)])`, so batching,
// streaming and sharding across processes can never change a number.
import { getMaxListeners, setMaxListeners } from 'node:events'

import type { Dataset } from '../data.js'
import type { RunOptions } from '../engine.js'
import { throwIfAborted, XaiEvalError } from '../errors.js'
import type { Model, PoolShape } from '../models/model.js'
import { summarize } from '../native.js'
import { closest, describeValue, parseOptions, z } from '../options.js'
import { RowCache } from '../row-cache.js'
import { canonical, decode, encode } from '../serial.js'
import { type Checked, checkDataset } from '../validate.js'

/** What a metric needs besides the model and the inputs. */
export type Need = 'attributions' | 'explainer' | 'masks'

/** What a metric is: the registry, the CLI, the report and distributed workers read it from here. */
export interface MetricMeta {
  /** Stable id, e.g. `'srg'`. */
  readonly id: string
  /** Class name, e.g. `'SymmetricRelevanceGain'`. */
  readonly name: string
  /** Direction of improvement of `scores`. */
  readonly higherIsBetter: boolean
  readonly needs: readonly Need[]
  /** Version of the metric's definition; results and shards carry it, reduce refuses a mix. */
  readonly version: number
  /** Forward passes per sample, in words. */
  readonly cost: string
  /** The paper (and reference code) the default follows. */
  readonly reference: string
}

/** Rows and model calls one evaluation sent (never the model's shared counters). */
export interface Cost {
  forwardPasses: number
  batches: number
  /** Rows per batch at the end of the run: the settled size with `'auto'` (absent when no rows ran); a call may carry several. */
  batchSize?: number
  /** The model's pool shape at the end of the run (the settled one with `'auto'` workers or threads), when it has one. */
  pool?: PoolShape
}

export const newCost = (): Cost => ({ forwardPasses: 0, batches: 0 })

/** One per-sample quantity of a shard: `[samples, width]`, row-major. */
export interface Column {
  width: number
  values: Float64Array
}

/** The output of `map` on samples `[firstSample, firstSample + samples)`: plain, serialisable data. */
export interface Shard {
  metric: string
  version: number
  params: Record<string, unknown>
  firstSample: number
  samples: number
  /** Per-sample statistics, concatenated by the reduce in global sample order. */
  columns: Record<string, Column>
  /** Mergeable per-shard statistics (exact sums), for metrics whose reduce is more than a concatenation. */
  stats?: Record<string, Uint8Array>
  /** What every shard must agree on besides the parameters (e.g. a curve's grid, set by the input shape). */
  common: Record<string, unknown>
  /** Shards of wrapped metrics (e.g. a QGE's evaluations of its metric), reduced by that metric. */
  parts?: Record<string, Shard>
  forwardPasses: number
  batches: number
  batchSize?: number
  pool?: PoolShape
}

const shardSchema = z.looseObject({
  metric: z.string(),
  version: z.int(),
  params: z.record(z.string(), z.unknown()),
  firstSample: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  samples: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  columns: z.record(z.string(), z.strictObject({ width: z.int().min(0), values: z.instanceof(Float64Array) })),
  stats: z.record(z.string(), z.instanceof(Uint8Array)).optional(),
  common: z.record(z.string(), z.unknown()),
  parts: z.record(z.string(), z.unknown()).optional(),
  forwardPasses: z.int().min(0),
  batches: z.int().min(0),
  batchSize: z.int().min(1).optional(),
})

/** Shards merged in global order: every column concatenated, every shard's `stats` kept in order. */
export interface Merged {
  /** The shards' {@link Shard.common} (equal in all of them). */
  common: Record<string, unknown>
  firstSample: number
  samples: number
  columns: Record<string, Column>
  stats: Record<string, Uint8Array>[]
  /** Sample counts of the shards, in order (for per-shard statistics). */
  shardSamples: number[]
  /** Each wrapped metric's shards, in order. */
  parts: Record<string, Shard[]>
  cost: Cost
}

/** What every data-set metric returns. */
export interface MetricResult {
  /** The metric's id. */
  metric: string
  version: number
  higherIsBetter: boolean
  /** The validated parameters, defaults included. */
  params: Record<string, unknown>
  /** Global index of the first sample and number of samples covered. */
  firstSample: number
  samples: number
  /** One score per sample (NaN where a score is undefined, e.g. a zero original score). */
  scores: Float64Array
  /** Mean and population std over the finite scores. */
  mean: number
  std: number
  /** Samples whose score is not finite (left out of mean and std). */
  skipped: number
  /** Model rows this evaluation sent (the cost). */
  forwardPasses: number
  /** Model calls this evaluation made. */
  batches: number
  /** Largest rows per batch (the settled size with `maxBatchSize: 'auto'`; a call may carry several batches); absent when no rows ran. */
  batchSize?: number
  /**
   * The model's pool shape (sessions × threads, spinning) when the last shard's rows ended, the
   * measured one with OnnxModel's `workers`/`threads: 'auto'`: pass it back to fix it. Absent for
   * models without a pool.
   */
  pool?: PoolShape
}

/** Options of `map` and `evaluate`. */
export interface MapOptions extends RunOptions {
  /** Global index of the first sample of `data` in the whole data set (default 0): keys all randomness. */
  firstSample?: number
}

const mapOptions = z.strictObject({
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
  onProgress: z.custom<NonNullable<RunOptions['onProgress']>>((v) => typeof v === 'function', 'expected a function').optional(),
  firstSample: z.int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  rows: z.custom<RowCache>((v) => v instanceof RowCache, 'expected a RowCache').optional(),
})

/** Validated options of `map`/`evaluate`. */
export type CheckedMapOptions = z.output<typeof mapOptions>

export function checkMapOptions(options: unknown): CheckedMapOptions {
  return parseOptions(mapOptions, options)
}

/** A model as the engine needs it: a typed error instead of a TypeError deep inside a metric. */
export function checkModel(model: unknown): asserts model is Model {
  const m = model as Partial<Model> | null
  if (
    m === null ||
    typeof m !== 'object' ||
    typeof m.forward !== 'function' ||
    !Number.isInteger(m.maxBatchSize) ||
    !Number.isInteger(m.concurrency) ||
    (m.output !== 'logits' && m.output !== 'probabilities') ||
    (m.rawOutput !== 'logits' && m.rawOutput !== 'probabilities')
  ) {
    throw new XaiEvalError('INVALID_OPTION', 'model', 'expected a Model (an OnnxModel, a FunctionModel, or an object implementing Model)')
  }
}

/** Attaches a non-enumerable `toJSON` that encodes typed arrays and non-finite numbers. */
export function serialisable<T extends object>(value: T): T {
  Object.defineProperty(value, 'toJSON', { value: () => encode(value), enumerable: false, configurable: true })
  return value
}

/** Rebuilds a result or shard from its JSON (a string or the parsed object). */
export function fromJSON<T>(json: unknown): T {
  let parsed = json
  if (typeof json === 'string') {
    try {
      parsed = JSON.parse(json)
    } catch (e) {
      throw new XaiEvalError('INVALID_OPTION', 'json', `not JSON: ${(e as Error).message}`)
    }
  }
  if (parsed === null || typeof parsed !== 'object') throw new XaiEvalError('INVALID_OPTION', 'json', 'expected a JSON object')
  return serialisable(decode(parsed) as object) as T
}

/**
 * Base of every data-set metric. A subclass declares `static meta` and a zod schema of its
 * options, implements `map` (model + shard → {@link Shard}) and `finish` (merged shards → result).
 */
export abstract class Metric<P extends object = Record<string, unknown>, R extends MetricResult = MetricResult> {
  /** The validated, frozen parameters (defaults included). */
  readonly params: Readonly<P>

  constructor(schema: z.ZodType<P>, options: unknown) {
    this.params = Object.freeze(parseOptions(schema, options)) as Readonly<P>
  }

  get meta(): MetricMeta {
    return (this.constructor as unknown as { meta: MetricMeta }).meta
  }

  /** Whether higher scores are better for these parameters (the meta's default direction, unless an option reverses it). */
  get higherIsBetter(): boolean {
    return this.meta.higherIsBetter
  }

  /**
   * The map phase on one shard of a data set: checks the model, the data and the options, then
   * computes the shard's statistics ({@link shardOf}).
   */
  async map(model: Model, data: Dataset, options?: MapOptions): Promise<Shard> {
    checkModel(model)
    const d = checkDataset(data)
    const o = checkMapOptions(options)
    throwIfAborted(o.signal)
    // Every batch in flight and every native task listens to the signal while it runs: more than
    // Node's default of 10 at once is expected, not a leak (each listener goes when its work settles).
    if (o.signal && getMaxListeners(o.signal) < 256) setMaxListeners(256, o.signal)
    return this.shardOf(model, d, o)
  }

  /** The statistics of samples `[o.firstSample, o.firstSample + d.n)`, via `this.shard(…)`. */
  protected abstract shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard>

  /** Builds the result from the merged shards. */
  protected abstract finish(merged: Merged): R

  /** Merges shards (any order) into the result; refuses gaps, overlaps and mismatched parameters. */
  reduce(shards: readonly Shard[]): R {
    return this.finish(this.merge(shards))
  }

  async evaluate(model: Model, data: Dataset, options?: MapOptions): Promise<R> {
    return this.reduce([await this.map(model, data, options)])
  }

  /** `{ id, version, params }`: enough for the registry to rebuild this metric. */
  toJSON(): { id: string; version: number; params: unknown } {
    return { id: this.meta.id, version: this.meta.version, params: encode(this.params) }
  }

  /** A shard of this metric. */
  protected shard(
    firstSample: number,
    samples: number,
    columns: Record<string, Column>,
    cost: Cost,
    common: Record<string, unknown> = {},
    stats?: Record<string, Uint8Array>,
    parts?: Record<string, Shard>,
  ): Shard {
    for (const [name, c] of Object.entries(columns)) {
      if (c.values.length !== samples * c.width) {
        throw new XaiEvalError('INTERNAL', name, `column has ${c.values.length} values for ${samples} samples × ${c.width}`)
      }
    }
    return serialisable({
      metric: this.meta.id,
      version: this.meta.version,
      params: encode(this.params) as Record<string, unknown>,
      firstSample,
      samples,
      columns,
      ...(stats ? { stats } : {}),
      ...(parts ? { parts } : {}),
      common,
      ...cost,
    })
  }

  /** The result: scores summarised, provenance and cost attached. */
  protected result<X extends object>(merged: Merged, scores: Float64Array, extra: X): R {
    const { mean, std, skipped } = summarize(scores)
    return serialisable({
      metric: this.meta.id,
      version: this.meta.version,
      higherIsBetter: this.higherIsBetter,
      params: { ...this.params },
      firstSample: merged.firstSample,
      samples: merged.samples,
      scores,
      mean,
      std,
      skipped,
      ...merged.cost,
      ...extra,
    }) as unknown as R
  }

  private merge(shards: readonly Shard[]): Merged {
    if (!Array.isArray(shards) || shards.length === 0) {
      throw new XaiEvalError('EMPTY_INPUT', 'shards', 'expected a non-empty array of shards')
    }
    const params = canonical(encode(this.params))
    shards.forEach((s, i) => {
      parseOptions(shardSchema, s, `shards[${i}]`)
      for (const [name, p] of Object.entries((s.parts ?? {}) as Record<string, Shard>)) {
        if (p?.firstSample !== s.firstSample || p?.samples !== s.samples) {
          throw new XaiEvalError('INVALID_OPTION', `shards[${i}].parts.${name}`, 'does not cover the samples of its shard')
        }
      }
      for (const [name, c] of Object.entries(s.columns as Record<string, Column>)) {
        if (c.values.length !== s.samples * c.width) {
          throw new XaiEvalError(
            'INVALID_OPTION',
            `shards[${i}].columns.${name}`,
            `holds ${c.values.length} values, not ${s.samples} samples × ${c.width}`,
          )
        }
      }
      if (s.metric !== this.meta.id) {
        throw new XaiEvalError('INVALID_OPTION', `shards[${i}]`, `is a shard of '${s.metric}', not of '${this.meta.id}'`)
      }
      if (s.version !== this.meta.version) {
        throw new XaiEvalError(
          'INVALID_OPTION',
          `shards[${i}]`,
          `was made by version ${s.version} of '${s.metric}', this is version ${this.meta.version}`,
        )
      }
      if (canonical(s.params) !== params) {
        throw new XaiEvalError(
          'INVALID_OPTION',
          `shards[${i}]`,
          `was made with other parameters: ${canonical(s.params)}, expected ${params}`,
        )
      }
    })
    const common = canonical(shards[0]!.common ?? {})
    shards.forEach((s, i) => {
      if (canonical(s.common ?? {}) !== common) {
        throw new XaiEvalError(
          'INVALID_OPTION',
          `shards[${i}]`,
          `does not match shards[0] (${canonical(s.common)} vs ${common}): inputs of another shape?`,
        )
      }
    })
    const sorted = [...shards].sort((a, b) => a.firstSample - b.firstSample)
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!
      const end = prev.firstSample + prev.samples
      const next = sorted[i]!.firstSample
      if (next < end) {
        throw new XaiEvalError(
          'INVALID_OPTION',
          'shards',
          `shards overlap: samples ${next}…${Math.min(end, next + sorted[i]!.samples) - 1} are in two shards`,
        )
      }
      if (next > end) throw new XaiEvalError('INVALID_OPTION', 'shards', `samples ${end}…${next - 1} are in no shard (a gap)`)
    }
    const samples = sorted.reduce((a, s) => a + s.samples, 0)
    const names = Object.keys(sorted[0]!.columns)
    const columns: Record<string, Column> = {}
    for (const name of names) {
      const width = sorted[0]!.columns[name]!.width
      const values = new Float64Array(samples * width)
      let offset = 0
      for (const s of sorted) {
        const c = s.columns[name]
        if (!c || c.width !== width || c.values.length !== s.samples * width) {
          throw new XaiEvalError('INVALID_OPTION', 'shards', `shard at sample ${s.firstSample} has no column '${name}' of width ${width}`)
        }
        values.set(c.values, offset)
        offset += c.values.length
      }
      columns[name] = { width, values }
    }
    return {
      common: shards[0]!.common ?? {},
      firstSample: sorted[0]!.firstSample,
      samples,
      columns,
      stats: sorted.map((s) => s.stats ?? {}),
      shardSamples: sorted.map((s) => s.samples),
      parts: Object.fromEntries(
        Object.keys(sorted[0]!.parts ?? {}).map((k) => [k, sorted.map((s) => (s.parts as Record<string, Shard>)[k]!)]),
      ),
      cost: {
        forwardPasses: sorted.reduce((a, s) => a + s.forwardPasses, 0),
        batches: sorted.reduce((a, s) => a + s.batches, 0),
        ...batchSizeOf(sorted),
        ...poolOf(sorted),
      },
    }
  }
}

/** The largest batch size of the shards that ran rows, as `{ batchSize }`, or nothing. */
function batchSizeOf(shards: readonly Shard[]): { batchSize?: number } {
  const sizes = shards.map((s) => (s as { batchSize?: unknown }).batchSize).filter((b): b is number => typeof b === 'number')
  return sizes.length > 0 ? { batchSize: Math.max(...sizes) } : {}
}

/** The pool shape of the last shard that reports one, as `{ pool }`, or nothing. */
function poolOf(shards: readonly Shard[]): { pool?: PoolShape } {
  const pool = [...shards].reverse().find((s) => s.pool !== undefined)?.pool
  return pool ? { pool: { ...pool } } : {}
}

/** A metric class: constructible from its options, with its meta. */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds classes of every option type.
export type MetricClass = (new (options?: any) => Metric<any, MetricResult>) & { readonly meta: MetricMeta }

/** id → class; filled by `registry.ts` (and `register` for user metrics). */
export const registry = new Map<string, MetricClass>()

/** The class registered under `id`, or a typed error suggesting the closest id. */
export function metricClass(id: unknown): MetricClass {
  const cls = typeof id === 'string' ? registry.get(id) : undefined
  if (!cls) {
    const ids = [...registry.keys()]
    const hint = typeof id === 'string' ? closest(id, ids) : undefined
    throw new XaiEvalError(
      'INVALID_OPTION',
      'id',
      `unknown metric ${describeValue(id)}${hint ? ` (did you mean '${hint}'?)` : ''}; one of ${ids.join(', ')}`,
    )
  }
  return cls
}

/** Builds a metric from `{ id, params }` (what `metric.toJSON()` gives; a version, if given, must match). */
export function createMetric(spec: { id: string; params?: unknown; version?: number } | string): Metric<object, MetricResult> {
  let s: unknown = spec
  if (typeof spec === 'string') {
    try {
      s = JSON.parse(spec)
    } catch (e) {
      throw new XaiEvalError('INVALID_OPTION', 'spec', `expected { id, params } or its JSON: ${(e as Error).message}`)
    }
  }
  if (s === null || typeof s !== 'object') throw new XaiEvalError('INVALID_OPTION', 'spec', 'expected { id, params }')
  const { id, params, version } = s as { id: unknown; params?: unknown; version?: unknown }
  const cls = metricClass(id)
  if (version !== undefined && version !== cls.meta.version) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      'version',
      `'${cls.meta.id}' is at version ${cls.meta.version}, the spec asks for ${String(version)}`,
    )
  }
  return new cls(decode(params))
}

/** Whether `v` is a metric (by shape, so that two copies of the package still recognise each other's). */
export function isMetric(v: unknown): v is Metric<object, MetricResult> {
  const m = v as Partial<Metric<object, MetricResult>> | null
  return (
    v instanceof Metric ||
    (m !== null && typeof m === 'object' && typeof m.map === 'function' && typeof m.reduce === 'function' && typeof m.meta?.id === 'string')
  )
}

/** An option holding a metric: an instance, or its `{ id, params }` built through the registry. */
export const metricOption = z.union([
  z.custom<Metric<object, MetricResult>>(isMetric, 'expected a metric (e.g. new PixelFlipping()) or { id, params }'),
  z
    .strictObject({ id: z.string(), params: z.unknown().optional(), version: z.number().optional() })
    .transform((spec) => createMetric(spec)),
])

/** The per-sample values of a column as `[samples, width]` rows. */
export function column(merged: Merged, name: string): Column {
  const c = merged.columns[name]
  if (!c) throw new XaiEvalError('INTERNAL', name, 'missing column')
  return c
}
