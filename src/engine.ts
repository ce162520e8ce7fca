// Turns a metric's plan of rows into target-class scores, batch by batch: rows are packed into
// batches of the model's size, each batch is built natively off the JS thread while earlier
// batches run inference, and nothing but the scores is kept.
import type { Checked } from './validate.js'
import { throwIfAborted, XaiEvalError } from './errors.js'
import type { Model } from './models/model.js'
import { computeBaselines, fillRows, rankFeatures, scoreRows, type BaselineSpec, type LayoutSpec } from './native.js'

/** Everything a row needs besides its (sample, count, flags): inputs, feature orders, baselines. */
export interface Source {
  data: Checked
  layout: LayoutSpec
  /** Stable descending feature orders `[N, F]`. */
  order: Uint32Array
  /** Baseline snapshot of every sample, `[N, C, H, W]`. */
  baselines: Float32Array
}

export interface RunOptions {
  signal?: AbortSignal
  /** Called after each batch with rows scored so far and rows planned. */
  onProgress?: (progress: { rows: number; totalRows: number }) => void
}

/** Ranks features and snapshots baselines, both off the JS thread and at the same time. */
export async function prepare(
  data: Checked,
  layout: LayoutSpec,
  baseline: BaselineSpec,
  abs: boolean,
  signal?: AbortSignal,
): Promise<Source> {
  const shape = [data.n, data.channels, data.height, data.width]
  const [order, baselines] = await Promise.all([
    rankFeatures(data.a, data.n, layout, abs, signal),
    computeBaselines(data.x, shape, baseline, 0, signal),
  ])
  return { data, layout, order, baselines }
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
    build(start, end, out, targets, signal) {
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

/** Evaluates every row of `plan` (inputs of `rowShape`) and hands each batch's scores to `sink`, in any order. */
export async function run(
  model: Model,
  rowShape: readonly number[],
  plan: Plan,
  softmax: boolean,
  sink: (batch: Scored) => void,
  options: RunOptions = {},
): Promise<void> {
  const { signal, onProgress } = options
  const rowLen = rowShape.reduce((p, d) => p * d, 1)
  await model.tune?.(rowShape)
  const size = model.maxBatchSize
  const batches = Math.ceil(plan.rows / size)
  let next = 0
  let done = 0
  let failed = false

  const one = async (b: number): Promise<void> => {
    const start = b * size
    const n = Math.min(size, plan.rows - start)
    const targets = new Int32Array(n)
    const x = new Float32Array(n * rowLen)
    await plan.build(start, start + n, x, targets, signal)
    throwIfAborted(signal)
    const out = await model.forward(x, n, rowShape)
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
  // while the model works on the current ones; memory stays at `lanes` batches. On a failure or
  // an abort no lane starts another batch, and we return only once every started one has settled:
  // the caller may close the model right away.
  const lanes = Math.min(batches, model.concurrency + 1)
  const settled = await Promise.allSettled(
    Array.from({ length: lanes }, async () => {
      while (next < batches && !failed) {
        try {
          throwIfAborted(signal)
          await one(next++)
        } catch (e) {
          failed = true
          throw e
        }
      }
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
