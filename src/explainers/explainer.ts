// What an explainer is and how its answers are checked. An explainer turns a batch of inputs and
// their target classes into attributions; metrics that re-explain inputs (robustness, randomization
// checks, the facade) call it through `checkExplainer`, which names it in every error and refuses
// attributions of the wrong length or with NaN/±Inf before any metric reads them.
import { throwIfAborted, XaiEvalError } from '../errors.js'
import { type Cost, checkModel } from '../metrics/protocol.js'
import type { Model } from '../models/model.js'
import { describeValue, z } from '../options.js'

/** Inputs of one explainer call: `[N, C, H, W]`. */
export type Shape4 = readonly [number, number, number, number]

export interface ExplainOptions {
  signal?: AbortSignal
  /**
   * Global sample index of each row, given only when the rows are the data set's own, unperturbed
   * inputs (so precomputed maps can answer by index). Absent for noisy or otherwise new inputs.
   */
  samples?: Int32Array
}

/**
 * Attributions of `x` (`shape = [N, C, H, W]`) for the classes `targets` (one per row), as
 * `[N, C, H, W]` or `[N, 1, H, W]` (one map per pixel, broadcast over channels).
 *
 * Gradient methods are not built in: ONNX Runtime runs inference only and has no autograd. Supply
 * them as an explainer of your own — a function that calls your framework (e.g. a Python service
 * over HTTP), or an ONNX graph you exported to output the gradient.
 */
export type Explainer = (
  model: Model,
  x: Float32Array,
  shape: Shape4,
  targets: Int32Array,
  options: ExplainOptions,
) => Promise<Float32Array>

/** An explainer with a name (for errors, caches and result tables) and an optional batch size. */
export interface NamedExplainer {
  readonly name: string
  readonly explain: Explainer
  /** Most rows per call (default {@link DEFAULT_EXPLAIN_BATCH}): bounds the memory of one call. */
  readonly batchSize?: number
}

/** What metrics and the facade accept: a function (named by its `name`) or a {@link NamedExplainer}. */
export type ExplainerLike = Explainer | NamedExplainer

/** Rows per explainer call when the explainer does not say. */
export const DEFAULT_EXPLAIN_BATCH = 256

/** An explainer after {@link checkExplainer}: named, and its answers validated. */
export interface CheckedExplainer {
  readonly name: string
  readonly batchSize: number
  /** The function the user gave (identity keys the explanation cache). */
  readonly source: Explainer
  /**
   * Calls the explainer on rows `x` and checks its answer: a Float32Array of `N·C·H·W` or `N·H·W`
   * finite values. Returns the attributions and their channel count (C or 1).
   */
  explain(model: Model, x: Float32Array, shape: Shape4, targets: Int32Array, options?: ExplainOptions): Promise<Explained>
}

export interface Explained {
  a: Float32Array
  /** Channels of `a`: the input's C, or 1. */
  channels: number
}

/** Letters, digits, punctuation, symbols and spaces: a name that prints on one line. */
const NAME = /^[\p{L}\p{N}\p{P}\p{S} ]{1,100}$/u

/** Names an explainer function: `named('occlusion-8', fn)`. */
export function named(name: string, explain: Explainer, batchSize?: number): NamedExplainer {
  const checked = checkExplainer({ name, explain, ...(batchSize === undefined ? {} : { batchSize }) })
  return Object.freeze({ name: checked.name, explain, ...(batchSize === undefined ? {} : { batchSize }) })
}

/** Whether `v` looks like an explainer (a function or `{ name, explain }`); for option schemas. */
export function isExplainer(v: unknown): v is ExplainerLike {
  return (
    typeof v === 'function' ||
    (v !== null &&
      typeof v === 'object' &&
      typeof (v as NamedExplainer).explain === 'function' &&
      typeof (v as NamedExplainer).name === 'string')
  )
}

/** The zod schema of an `explainer` option: keeps the explainer itself (see {@link explainerName} for params). */
export const explainerOption = z.custom<ExplainerLike>(
  isExplainer,
  'expected an explainer: a function (model, x, shape, targets, { signal }) => Promise<Float32Array>, or { name, explain }',
)

/** The name of an explainer (a function's own name, or `'explainer'` for an anonymous one). */
export function explainerName(e: ExplainerLike): string {
  return typeof e === 'function' ? e.name || 'explainer' : e.name
}

const checkedCache = new WeakMap<object, CheckedExplainer>()

/** Checks an explainer given as an option (`arg` names it in errors) and wraps its calls with validation. */
export function checkExplainer(e: unknown, arg = 'explainer'): CheckedExplainer {
  if (!isExplainer(e)) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      arg,
      `expected an explainer (a function (model, x, shape, targets, { signal }) => Promise<Float32Array>, or { name, explain }), got ${describeValue(e)}`,
    )
  }
  const known = checkedCache.get(e)
  if (known) return known
  const name = explainerName(e)
  if (!NAME.test(name)) {
    throw new XaiEvalError('INVALID_OPTION', `${arg}.name`, `expected 1–100 printable characters, got ${describeValue(name)}`)
  }
  const batchSize = typeof e === 'function' ? DEFAULT_EXPLAIN_BATCH : (e.batchSize ?? DEFAULT_EXPLAIN_BATCH)
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 1_000_000) {
    throw new XaiEvalError('INVALID_OPTION', `${arg}.batchSize`, `expected an integer in [1, 1000000], got ${describeValue(batchSize)}`)
  }
  const source = typeof e === 'function' ? e : e.explain
  const who = `explainer '${name}'`
  const checked: CheckedExplainer = Object.freeze({
    name,
    batchSize,
    source,
    async explain(model: Model, x: Float32Array, shape: Shape4, targets: Int32Array, options: ExplainOptions = {}): Promise<Explained> {
      checkCall(model, x, shape, targets, options)
      throwIfAborted(options.signal)
      const [n, c, h, w] = shape
      let out: unknown
      try {
        out = await source(model, x, shape, targets, options)
      } catch (err) {
        if (err instanceof XaiEvalError) throw err
        throw new XaiEvalError('EXPLAINER', who, `failed: ${(err as Error)?.message ?? describeValue(err)}`, { cause: err })
      }
      throwIfAborted(options.signal)
      const a = asFloat32(out)
      if (!a) throw new XaiEvalError('EXPLAINER', who, `returned ${describeValue(out)}, expected a Float32Array of attributions`)
      const channels = a.length === n * c * h * w ? c : a.length === n * h * w ? 1 : -1
      if (channels < 0) {
        throw new XaiEvalError(
          'SHAPE_MISMATCH',
          who,
          `returned ${a.length} values for ${n} inputs of [${c}, ${h}, ${w}]: expected ${n * c * h * w} ([N, C, H, W]) or ${n * h * w} ([N, 1, H, W])`,
        )
      }
      const bad = firstNonFinite(a)
      if (bad >= 0) {
        const per = channels * h * w
        throw new XaiEvalError('NON_FINITE', who, `returned ${a[bad]} at value ${bad} (row ${Math.floor(bad / per)})`)
      }
      return { a, channels }
    },
  })
  checkedCache.set(e, checked)
  return checked
}

/** The arguments of an explainer call: a model, `x` of `shape` and one class index per row. */
function checkCall(model: unknown, x: unknown, shape: unknown, targets: unknown, options: unknown): void {
  checkModel(model)
  if (!(x instanceof Float32Array)) throw new XaiEvalError('INVALID_OPTION', 'x', `expected a Float32Array, got ${describeValue(x)}`)
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'shape', `expected [N, C, H, W] of positive integers, got ${describeValue(shape)}`)
  }
  const [n, c, h, w] = shape as number[]
  if (x.length !== n! * c! * h! * w!)
    throw new XaiEvalError('SHAPE_MISMATCH', 'x', `length ${x.length} does not match shape [${shape.join(', ')}]`)
  if (!(targets instanceof Int32Array)) {
    throw new XaiEvalError('INVALID_OPTION', 'targets', `expected an Int32Array of ${n} class indices, got ${describeValue(targets)}`)
  }
  if (targets.length !== n)
    throw new XaiEvalError('SHAPE_MISMATCH', 'targets', `expected ${n} class indices (one per row), got ${targets.length}`)
  if (targets.some((t) => t < 0)) throw new XaiEvalError('INVALID_OPTION', 'targets', 'a target is negative')
  if (options === null || typeof options !== 'object')
    throw new XaiEvalError('INVALID_OPTION', 'options', `expected { signal?, samples? }, got ${describeValue(options)}`)
  const { signal, samples } = options as ExplainOptions
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new XaiEvalError('INVALID_OPTION', 'signal', 'expected an AbortSignal')
  if (samples !== undefined && (!(samples instanceof Int32Array) || samples.length !== n)) {
    throw new XaiEvalError('INVALID_OPTION', 'samples', `expected an Int32Array of ${n} sample indices`)
  }
}

function asFloat32(v: unknown): Float32Array | undefined {
  if (v instanceof Float32Array) return v
  if (v instanceof Float64Array || (Array.isArray(v) && v.every((x) => typeof x === 'number')))
    return Float32Array.from(v as ArrayLike<number>)
  return undefined
}

function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i
  return -1
}

/**
 * Precomputed maps as an explainer: answers the data set's own inputs by global sample index
 * (`options.samples`), and refuses new inputs (noisy copies, other classes) with a typed error —
 * maps computed once cannot explain an input they were not computed for.
 */
export function precomputed(maps: Float32Array, aShape: readonly number[], name = 'precomputed'): NamedExplainer {
  if (!(maps instanceof Float32Array))
    throw new XaiEvalError('INVALID_OPTION', 'maps', `expected a Float32Array, got ${describeValue(maps)}`)
  if (!Array.isArray(aShape) || aShape.length !== 4 || !aShape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'aShape', `expected [N, C|1, H, W] of positive integers, got ${describeValue(aShape)}`)
  }
  if (typeof name !== 'string' || !NAME.test(name))
    throw new XaiEvalError('INVALID_OPTION', 'name', `expected 1–100 printable characters, got ${describeValue(name)}`)
  const [count, channels, height, width] = aShape as [number, number, number, number]
  const per = channels * height * width
  if (maps.length !== count * per) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'maps', `length ${maps.length} does not match aShape [${aShape.join(', ')}]`)
  }
  const who = `explainer '${name}'`
  const explain: Explainer = async (_model, x, shape, targets, options) => {
    const [n, , h, w] = shape
    const samples = options.samples
    if (!samples) {
      throw new XaiEvalError(
        'EXPLAINER',
        who,
        'precomputed maps explain only the data set’s own inputs, by sample index; this metric needs an explainer that runs on new inputs',
      )
    }
    if (h !== height || w !== width) throw new XaiEvalError('SHAPE_MISMATCH', who, `maps are ${height}×${width}, inputs ${h}×${w}`)
    if (samples.length !== n || targets.length !== n || x.length === 0)
      throw new XaiEvalError('INTERNAL', who, 'sample indices do not match the rows')
    const out = new Float32Array(n * per)
    for (let r = 0; r < n; r++) {
      const s = samples[r]!
      if (s < 0 || s >= count) throw new XaiEvalError('SHAPE_MISMATCH', who, `has ${count} maps, sample ${s} asked for`)
      out.set(maps.subarray(s * per, (s + 1) * per), r * per)
    }
    return out
  }
  return Object.freeze({ name, explain })
}

/**
 * An explainer whose every answer is transformed by `f` (the hook a wrapping metric uses, e.g. QGE
 * inverting each recomputed explanation). `f` gets the checked attributions and their channels.
 */
export function mapAttributions(e: ExplainerLike, f: (a: Float32Array, channels: number) => Float32Array, name?: string): NamedExplainer {
  const inner = checkExplainer(e)
  const explain: Explainer = async (model, x, shape, targets, options) => {
    const { a, channels } = await inner.explain(model, x, shape, targets, options)
    return f(a, channels)
  }
  return Object.freeze({ name: name ?? inner.name, explain, batchSize: inner.batchSize })
}

const UNDERLYING = Symbol('xai-eval.counted-model')

/**
 * `model` with every forward call it serves added to `cost` (rows and calls): what a metric hands
 * its explainer, so that the forward passes the explainer makes count in the metric's own cost —
 * re-explaining is what these metrics cost. Calls the explainer makes outside the model (a remote
 * service) are not seen. Closing it does not close `model`.
 */
export function countingModel(model: Model, cost: Cost): Model {
  checkModel(model)
  const c = cost as Partial<Cost> | null
  if (c === null || typeof c !== 'object' || !Number.isSafeInteger(c.forwardPasses) || !Number.isSafeInteger(c.batches)) {
    throw new XaiEvalError('INVALID_OPTION', 'cost', `expected { forwardPasses, batches } (integers), got ${describeValue(cost)}`)
  }
  const counted: Model & { [UNDERLYING]: Model } = {
    [UNDERLYING]: underlyingModel(model),
    get output() {
      return model.output
    },
    get rawOutput() {
      return model.rawOutput
    },
    get maxBatchSize() {
      return model.maxBatchSize
    },
    get concurrency() {
      return model.concurrency
    },
    get maxConcurrency() {
      return model.maxConcurrency
    },
    get pool() {
      return model.pool
    },
    get stats() {
      return model.stats
    },
    forward(x, rows, rowShape) {
      cost.forwardPasses += rows
      cost.batches++
      return model.forward(x, rows, rowShape)
    },
    ...(model.batchSize ? { batchSize: (rowShape: readonly number[]) => model.batchSize!(rowShape) } : {}),
    ...(model.rowsPerCall ? { rowsPerCall: (rowShape: readonly number[]) => model.rowsPerCall!(rowShape) } : {}),
    ...(model.buffer ? { buffer: (length: number) => model.buffer!(length) } : {}),
    close: async () => {},
  }
  return counted
}

/** The model a {@link countingModel} counts for (the model itself otherwise): what caches key by. */
export function underlyingModel(model: Model): Model {
  if (model === null || typeof model !== 'object') return model
  return (model as Partial<{ [UNDERLYING]: Model }>)[UNDERLYING] ?? model
}

/**
 * Explains `rows` inputs built by `build` in calls of at most `e.batchSize` rows and hands each
 * chunk's attributions to `sink`: metrics explain all their inputs (every sample, every noise draw)
 * through this, so a user explainer sees few, large calls and memory stays bounded.
 */
export async function explainRows(
  e: CheckedExplainer,
  model: Model,
  rowShape: readonly [number, number, number],
  rows: number,
  build: (start: number, end: number, out: Float32Array, targets: Int32Array) => Int32Array | undefined | Promise<Int32Array | undefined>,
  sink: (start: number, a: Explained) => void,
  signal?: AbortSignal,
  /** When given, the explainer's forward passes on `model` are added here (see {@link countingModel}). */
  cost?: Cost,
): Promise<void> {
  const len = rowShape[0] * rowShape[1] * rowShape[2]
  const m = cost ? countingModel(model, cost) : model
  for (let start = 0; start < rows; start += e.batchSize) {
    throwIfAborted(signal)
    const n = Math.min(e.batchSize, rows - start)
    const x = new Float32Array(n * len)
    const targets = new Int32Array(n)
    const samples = await build(start, start + n, x, targets)
    const shape: Shape4 = [n, rowShape[0], rowShape[1], rowShape[2]]
    sink(start, await e.explain(m, x, shape, targets, { ...(signal ? { signal } : {}), ...(samples ? { samples } : {}) }))
  }
}
