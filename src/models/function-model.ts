import { XaiEvalError } from '../errors.js'
import { oneOf, positiveInt } from '../validate.js'
import type { Model, ModelStats, OutputKind } from './model.js'

export interface FunctionModelOptions {
  /** What `fn` returns (default `'logits'`). */
  returns?: OutputKind
  /** What the metrics score (default `'probabilities'`). */
  output?: OutputKind
  /** Rows per call (default 64). */
  maxBatchSize?: number
  /** Calls the metrics may have in flight at once (default 1). */
  concurrency?: number
}

/** Any backend as an async function from a `[rows, ...rowShape]` batch to `[rows, classes]` outputs. */
export class FunctionModel implements Model {
  readonly output: OutputKind
  readonly rawOutput: OutputKind
  readonly maxBatchSize: number
  readonly concurrency: number
  readonly stats: ModelStats = { forwardPasses: 0, rows: 0 }

  constructor(
    private readonly fn: (x: Float32Array, shape: number[]) => Promise<Float32Array> | Float32Array,
    options: FunctionModelOptions = {},
  ) {
    if (typeof fn !== 'function') throw new XaiEvalError('INVALID_OPTION', 'fn', 'expected a function')
    this.rawOutput = oneOf('returns', options.returns ?? 'logits', ['logits', 'probabilities'])
    this.output = oneOf('output', options.output ?? 'probabilities', ['logits', 'probabilities'])
    this.maxBatchSize = positiveInt('maxBatchSize', options.maxBatchSize ?? 64)
    this.concurrency = positiveInt('concurrency', options.concurrency ?? 1)
  }

  async forward(x: Float32Array, rows: number, rowShape: readonly number[]): Promise<Float32Array> {
    this.stats.forwardPasses++
    this.stats.rows += rows
    let out: unknown
    try {
      out = await this.fn(x, [rows, ...rowShape])
    } catch (e) {
      throw new XaiEvalError('MODEL_OUTPUT', 'model', `the model function failed: ${(e as Error)?.message ?? String(e)}`, { cause: e })
    }
    if (!(out instanceof Float32Array)) {
      throw new XaiEvalError(
        'MODEL_OUTPUT',
        'model.output',
        `the model function must return a Float32Array, got ${Object.prototype.toString.call(out)}`,
      )
    }
    return out
  }

  async close(): Promise<void> {}
}
