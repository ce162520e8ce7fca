// Turns a metric's plan of rows into target-class scores, batch by batch: rows are packed into
// batches of the model's size, each batch is built natively off the JS thread while earlier
// batches run inference, and nothing but the scores is kept.
import type { Checked } from './validate.js'
import { abortedBy, throwIfAborted, unlessAborted, XaiEvalError } from './errors.js'
import type { Cost } from './metrics/protocol.js'
import type { Model } from './models/model.js'
import type { RowCache } from './row-cache.js'
import { computeBaselines, fillRows, rankFeatures, scoreRows, type BaselineSpec, type LayoutSpec } from './native.js'

/** Everything a row needs besides its (sample, count, flags): inputs, feature orders, baselines. */
export interface Source {
  data: Checked
  layout: LayoutSpec
  /** Stable descending feature orders `[N, F]`: valid for samples `[0, end)` once `ready(end)` resolved. */
  order: Uint32Array
  /** Baseline snapshot of every sample, `[N, C, H, W]`, valid as `order` is. */
  baselines: Float32Array
  /** Resolves once the first `end` samples are ranked and their baselines taken. */
  ready(end: number): Promise<void>
}

export interface RunOptions {
  signal?: AbortSignal
  /** Called after each batch with rows scored so far and rows planned. */
  onProgress?: (progress: { rows: number; totalRows: number }) => void
  /** Rows already evaluated (by content) are taken from here instead of the model; new ones are added. */
  rows?: RowCache
}

/**
 * Ranks features and snapshots baselines, both off the JS thread and at the same time: first for
 * the leading eighth of the samples, then, while the first batches already run, for the rest (a
 * session idles while nothing is ranked; on the small CNN that was a tenth of a PixelFlipping run).
 * Each sample's order and baseline depend on that sample alone (random baselines are keyed by its
 * global index), so the split changes nothing.
 */
export async function prepare(
  data: Checked,
  layout: LayoutSpec,
  baseline: BaselineSpec,
  abs: boolean,
  /** Global index of the first sample: keys random baselines. */
  firstSample: number,
  signal?: AbortSignal,
): Promise<Source> {
  const { n, channels, height, width } = data
  const aLen = data.a.length / n
  const xLen = channels * height * width
  let order: Uint32Array | undefined
  const baselines = new Float32Array(n * xLen)
  const part = async (from: number, to: number): Promise<void> => {
    const [o, b] = await Promise.all([
      rankFeatures(data.a.subarray(from * aLen, to * aLen), to - from, layout, abs, signal),
      computeBaselines(data.x.subarray(from * xLen, to * xLen), [to - from, channels, height, width], baseline, firstSample + from, signal),
    ])
    order ??= new Uint32Array((o.length / (to - from)) * n)
    order.set(o, (from * o.length) / (to - from))
    baselines.set(b, from * xLen)
  }
  const head = Math.ceil(n / 8)
  await part(0, head)
  const rest = head < n ? part(head, n) : Promise.resolve()
  // Awaited by the rows that need it; a failure nobody waits for (the run already failed) is dropped here.
  rest.catch(() => {})
  return { data, layout, order: order!, baselines, ready: (end) => (end <= head ? Promise.resolve() : rest) }
}

/** A metric's rows: how many, and how to build rows `[start, end)` with their target classes. */
export interface Plan {
  rows: number
  build(start: number, end: number, out: Float32Array, targets: Int32Array, signal?: AbortSignal): Promise<void>
}

/**
 * The rows of perturbation curves: every sample gets the rows `perSample[j] = [count, flags]`
 * (that many ranked features swapped, see `xai_eval_core::mask`), filled natively from `src`.
 * A sample's rows are contiguous and in curve order, so the core builds each from the previous one.
 */
export function maskedRows(src: Source, perSample: readonly (readonly [number, number])[], target: Int32Array): Plan {
  const k = perSample.length
  const { data } = src
  return {
    rows: data.n * k,
    async build(start, end, out, targets, signal) {
      await src.ready(Math.floor((end - 1) / k) + 1)
      const triples = new Uint32Array(3 * (end - start))
      for (let r = start; r < end; r++) {
        const s = Math.floor(r / k)
        const [count, flags] = perSample[r % k]!
        const i = r - start
        triples[3 * i] = s
        triples[3 * i + 1] = count
        triples[3 * i + 2] = flags
        targets[i] = target[s]!
      }
      return fillRows(data.x, src.baselines, src.order, data.n, src.layout, triples, out, signal)
    },
  }
}

export interface Scored {
  /** First row of the batch. */
  start: number
  /** Target-class score of each row (after softmax when the model's scores are probabilities). */
  scores: Float64Array
  /** Predicted class of each row. */
  argmax: Int32Array
}

/** Whether scoring must apply softmax: the metric wants probabilities and the model returns logits. */
export function needsSoftmax(model: Model, wantProbabilities = model.output === 'probabilities'): boolean {
  return wantProbabilities && model.rawOutput === 'logits'
}

/** Input bytes under which a batch is small enough for twice the lanes (see {@link run}). */
const SMALL_BATCH = 1 << 20

/** Evaluates every row of `plan` (inputs of `rowShape`) and hands each batch's scores to `sink`, in any order. */
export async function run(
  model: Model,
  rowShape: readonly number[],
  plan: Plan,
  softmax: boolean,
  sink: (batch: Scored) => void,
  options: RunOptions,
  /** Rows and calls sent are added here: the evaluation's own cost, whoever else shares the model. */
  cost: Cost,
): Promise<void> {
  const { signal, onProgress } = options
  const rowLen = rowShape.reduce((p, d) => p * d, 1)
  let next = 0
  let done = 0
  let failed = false

  /** The model's outputs for `n` rows of `x`: only rows the cache does not know reach the model. */
  const forward = async (x: Float32Array, n: number): Promise<Float32Array> => {
    const cache = options.rows
    if (!cache) {
      cost.forwardPasses += n
      cost.batches++
      return model.forward(x, n, rowShape)
    }
    const keys = cache.keys(x, n)
    const known = keys.map((k) => cache.get(k))
    const missing = known.flatMap((o, i) => (o ? [] : [i]))
    let fresh: Float32Array = new Float32Array()
    if (missing.length > 0) {
      // All new (the usual first pass): the batch goes as it was built, in the model's own buffer.
      const rows = missing.length === n ? x : (model.buffer?.(missing.length * rowLen) ?? new Float32Array(missing.length * rowLen))
      if (rows !== x) {
        missing.forEach((i, j) => {
          rows.set(x.subarray(i * rowLen, (i + 1) * rowLen), j * rowLen)
        })
      }
      cost.forwardPasses += missing.length
      cost.batches++
      fresh = await model.forward(rows, missing.length, rowShape)
    }
    cache.hits += n - missing.length
    const classes = missing.length > 0 ? fresh.length / missing.length : known.find((o) => o)!.length
    if (!Number.isInteger(classes) || classes < 1) {
      throw new XaiEvalError('MODEL_OUTPUT', 'model.output', `expected [${missing.length}, classes] outputs, got ${fresh.length} values`)
    }
    missing.forEach((i, j) => {
      const o = fresh.slice(j * classes, (j + 1) * classes)
      known[i] = o
      cache.set(keys[i]!, o)
    })
    const out = new Float32Array(n * classes)
    known.forEach((o, i) => {
      if (o!.length !== classes)
        throw new XaiEvalError('MODEL_OUTPUT', 'model.output', 'the model returned another number of classes for a cached row')
      out.set(o!, i * classes)
    })
    return out
  }

  /** Builds, runs and scores rows `[start, start + n)`. */
  const one = async (start: number, n: number): Promise<void> => {
    const targets = new Int32Array(n)
    const x = model.buffer?.(n * rowLen) ?? new Float32Array(n * rowLen)
    await plan.build(start, start + n, x, targets, signal)
    firstBuilt()
    throwIfAborted(signal)
    // A model call that never settles is abandoned when the signal fires (its late result is
    // dropped), so an abort is honoured within one batch's time whatever the backend does.
    const out = await unlessAborted(forward(x, n), signal, () => abortedBy(signal))
    const classes = out.length / n
    if (!Number.isInteger(classes) || classes < 1) {
      throw new XaiEvalError('MODEL_OUTPUT', 'model.output', `expected [${n}, classes] outputs, got ${out.length} values for ${n} rows`)
    }
    const { scores, argmax } = scoreRows(out, classes, targets, softmax)
    sink({ start, scores, argmax })
    done += n
    onProgress?.({ rows: done, totalRows: plan.rows })
  }

  // One more lane than the model can run at once, so the next batch is being filled natively
  // while the model works on the current ones; memory stays at `lanes` batches. Small batches
  // (under SMALL_BATCH bytes) get as many lanes again: their forward pass is as short as the
  // hand-off between threads, which more batches in flight hide. Batch sizes and the model's
  // concurrency are asked for batch by batch (an 'auto' model measures them on these very rows):
  // lanes beyond what the model runs now wait for the next batch to finish. On a failure or an
  // abort no lane starts another batch, and we return only once every started one has settled:
  // the caller may close the model right away.
  // The sessions idle until the first call arrives, so its rows are built alone: built beside the
  // other lanes' first calls, it waited for them (1–3 ms of a 20 ms PixelFlipping on the small CNN).
  let firstBuilt = (): void => {}
  const first = new Promise<void>((r) => (firstBuilt = r))
  let wake = (): void => {}
  let finished = new Promise<void>((r) => (wake = r))
  const batchDone = (): void => {
    const w = wake
    finished = new Promise<void>((r) => (wake = r))
    w()
  }
  const lane = async (index: number): Promise<void> => {
    while (next < plan.rows && !failed) {
      try {
        throwIfAborted(signal)
        const batch = model.batchSize?.(rowShape) ?? model.maxBatchSize
        const size = model.rowsPerCall?.(rowShape) ?? batch
        const lanes = model.concurrency + 1
        if (index >= (size * rowLen * 4 > SMALL_BATCH ? lanes : 2 * lanes)) {
          await finished
          continue
        }
        const start = next
        // The first call carries one batch, so a session starts as soon as the first rows exist
        // (a call's rows may need samples the metric is still ranking); the last calls share what
        // is left evenly (whole batches) among the sessions, so none idles while another finishes.
        const left = plan.rows - start
        const n = Math.min(start === 0 ? batch : size, left, batch * Math.ceil(left / model.concurrency / batch))
        next += n
        cost.batchSize = batch
        try {
          await one(start, n)
        } finally {
          batchDone()
        }
        if (model.pool) cost.pool = model.pool
      } catch (e) {
        failed = true
        batchDone()
        throw e
      }
    }
  }
  const settled = await Promise.allSettled(
    Array.from({ length: 2 * (Math.max(model.concurrency, model.maxConcurrency ?? 0) + 1) }, async (_, index) => {
      if (index > 0) return first.then(() => lane(index))
      // However lane 0 ends (its first call failed, or there were no rows), the others go.
      return lane(0).finally(firstBuilt)
    }),
  )
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failure) throw failure.reason
}

/**
 * Progress options of one phase of a metric that runs several plans: rows are reported against
 * the metric's total, continuing from `offset`.
 */
export function phase(options: RunOptions, offset: number, totalRows: number): RunOptions {
  const { onProgress } = options
  return onProgress ? { ...options, onProgress: (p) => onProgress({ rows: offset + p.rows, totalRows }) } : options
}

/** One perturbation curve: `counts[k]` ranked features swapped at point k, with the row `flags`. */
export interface CurveSpec {
  name: string
  counts: ArrayLike<number>
  /** `FROM_END` (least relevant first) and/or `INSERT` (start from the baseline), see `xai_eval_core::mask`. */
  flags: number
}

export interface CurveSetup {
  layout: LayoutSpec
  baseline: BaselineSpec
  /** Rank by |a|. */
  abs: boolean
  /** Follow the label, or the model's prediction on the clean input. */
  target: 'label' | 'predicted'
  /** Apply softmax to logits before scoring. */
  softmax: boolean
  firstSample: number
}

const FROM_END = 1
const INSERT = 2

/**
 * Scores every point of `curves` for every sample, `[N, points]` per curve, evaluating each
 * distinct row once: inserting the top k features into the baseline is deleting the bottom F − k,
 * swapping nothing is the clean input and swapping everything the baseline, whatever the order —
 * so curves that share a point (SRG's endpoints, Deletion's and Insertion's ends) share its row.
 * With a predicted target the clean rows run first: they pick each sample's class.
 */
export async function scoreCurves(
  model: Model,
  d: Checked,
  setup: CurveSetup,
  curves: readonly CurveSpec[],
  options: RunOptions,
  cost: Cost,
): Promise<{ values: Record<string, Float64Array>; target: Int32Array }> {
  const features = setup.layout.unit === 'pixel' ? setup.layout.pixels : setup.layout.pixels * setup.layout.channels
  const unique: [number, number][] = []
  const index = new Map<string, number>()
  const slot = (count: number, flags: number): number => {
    let c = count
    let f = flags & FROM_END
    if (flags & INSERT) [c, f] = [features - count, f ^ FROM_END]
    if (c === 0 || c === features) f = 0
    const key = `${c}:${f}`
    let i = index.get(key)
    if (i === undefined) {
      i = unique.length
      index.set(key, i)
      unique.push([c, f])
    }
    return i
  }
  const clean = setup.target === 'predicted' ? slot(0, 0) : -1
  const at = curves.map((c) => Array.from(c.counts, (k) => slot(k, c.flags)))
  const rows = unique.length
  const scored = new Float64Array(d.n * rows)
  const src = await prepare(d, setup.layout, setup.baseline, setup.abs, setup.firstSample, options.signal)
  const rowShape = [d.channels, d.height, d.width]
  const total = d.n * rows
  let target = d.y
  let first = 0
  if (clean >= 0) {
    // Target −1 scores each row's own argmax: the clean pass yields the class and its score at once.
    const predicted = new Int32Array(d.n)
    await run(
      model,
      rowShape,
      maskedRows(src, [unique[clean]!], new Int32Array(d.n).fill(-1)),
      setup.softmax,
      ({ start, scores, argmax }) => {
        for (let i = 0; i < scores.length; i++) {
          scored[(start + i) * rows + clean] = scores[i]!
          predicted[start + i] = argmax[i]!
        }
      },
      phase(options, 0, total),
      cost,
    )
    target = predicted
    first = 1
  }
  const rest = unique.filter((_, i) => i !== clean)
  const restAt = Array.from(unique.keys()).filter((i) => i !== clean)
  if (rest.length > 0) {
    const k = rest.length
    await run(
      model,
      rowShape,
      maskedRows(src, rest, target),
      setup.softmax,
      ({ start, scores }) => {
        for (let i = 0; i < scores.length; i++) {
          const r = start + i
          scored[Math.floor(r / k) * rows + restAt[r % k]!] = scores[i]!
        }
      },
      phase(options, first * d.n, total),
      cost,
    )
  }
  const values: Record<string, Float64Array> = {}
  curves.forEach((c, j) => {
    const idx = at[j]!
    const points = idx.length
    const v = new Float64Array(d.n * points)
    for (let s = 0; s < d.n; s++) for (let p = 0; p < points; p++) v[s * points + p] = scored[s * rows + idx[p]!]!
    values[c.name] = v
  })
  return { values, target }
}
