import { XaiEvalError } from '../errors.js'
import { parseOptions, z } from '../options.js'
import { Lifecycle } from './lifecycle.js'
import type { Model, ModelStats, OutputKind } from './model.js'

const optionsSchema = z.strictObject({
  /** What `fn` returns (default `'logits'`). */
  returns: z.enum(['logits', 'probabilities']).default('logits'),
  /** What the metrics score (default `'probabilities'`). */
  output: z.enum(['logits', 'probabilities']).default('probabilities'),
  /** Rows per call (default 64). */
  maxBatchSize: z
    .int()
    .min(1)
    .max(1 << 20)
    .default(64),
  /** Calls the metrics may have in flight at once (default 1). */
  concurrency: z.int().min(1).max(1024).default(1),
})

export type FunctionModelOptions = z.input<typeof optionsSchema>

/** Any backend as an async function from a `[rows, ...rowShape]` batch to `[rows, classes]` outputs. */
export class FunctionModel implements Model {
  readonly output: OutputKind
  readonly rawOutput: OutputKind
  readonly maxBatchSize: number
  readonly concurrency: number
  readonly stats: ModelStats = { forwardPasses: 0, rows: 0 }
  private readonly life = new Lifecycle()

  constructor(
    private readonly fn: (x: Float32Array, shape: number[]) => Promise<Float32Array> | Float32Array,
    options?: FunctionModelOptions,
  ) {
    if (typeof fn !== 'function') throw new XaiEvalError('INVALID_OPTION', 'fn', 'expected a function')
    const o = parseOptions(optionsSchema, options)
    this.rawOutput = o.returns
    this.output = o.output
    this.maxBatchSize = o.maxBatchSize
    this.concurrency = o.concurrency
  }

  async forward(x: Float32Array, rows: number, rowShape: readonly number[]): Promise<Float32Array> {
    this.life.check()
    this.stats.forwardPasses++
    this.stats.rows += rows
    const call = (async () => this.fn(x, [rows, ...rowShape]))().catch((e: unknown) => {
      throw new XaiEvalError('MODEL_OUTPUT', 'model', `the model function failed: ${(e as Error)?.message ?? String(e)}`, { cause: e })
    })
    const out: unknown = await this.life.guard(call)
    if (!(out instanceof Float32Array)) {
      throw new XaiEvalError(
        'MODEL_OUTPUT',
        'model.output',
        `the model function must return a Float32Array, got ${Object.prototype.toString.call(out)}`,
      )
    }
    return out
  }

  /** Refuses further calls with CLOSED; calls still waiting on `fn` reject with CLOSED at once. */
  async close(): Promise<void> {
    this.life.close()
  }
}
