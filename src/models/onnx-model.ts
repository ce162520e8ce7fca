import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'

import { Piscina } from 'piscina'

import { XaiEvalError } from '../errors.js'
import { closedError, Lifecycle } from './lifecycle.js'
import { parseOptions, z } from '../options.js'
import type { Model, ModelStats, OutputKind } from './model.js'
import { producerOf } from './onnx-graph.js'
import type { ForwardRequest, SessionMeta, WorkerConfig } from './onnx-worker.js'

/** Execution providers onnxruntime-node knows; others are refused rather than silently ignored. */
export const PROVIDERS = ['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml'] as const

/** Sessions and threads are bounded (4 × the cores each): more only thrash, and thousands abort the process. */
const MAX_THREADS = 4 * availableParallelism()

const providerName = z.enum(PROVIDERS)
const optionsSchema = z.strictObject({
  /** Providers in order of preference (default `['cpu']`); the first that loads runs, CPU last. */
  executionProviders: z
    .array(z.union([providerName, z.strictObject({ name: providerName, deviceId: z.int().min(0).max(1024).optional() })]))
    .min(1)
    .optional(),
  /**
   * Rows per forward call, or `'auto'` (default) to measure a few sizes on the first request and keep
   * the fastest: CPU caches favour small batches, GPUs large ones. A fixed batch dimension in the
   * model overrides both (short batches are padded).
   */
  maxBatchSize: z
    .union([
      z
        .int()
        .min(1)
        .max(1 << 20),
      z.literal('auto'),
    ])
    .default('auto'),
  /** Sessions (worker threads) in the pool (default: 2 on CPU, 1 on a GPU; at most 4 × cores). */
  workers: z.int().min(1).max(MAX_THREADS).optional(),
  /** Intra-op threads per session (default: cores / workers; at most 4 × cores). */
  threads: z.int().min(1).max(MAX_THREADS).optional(),
  /** What the metrics score (default `'probabilities'`): softmax is applied unless the graph ends in Softmax. */
  output: z.enum(['logits', 'probabilities']).default('probabilities'),
  /** Graph input and output to use (default: the first of each). */
  inputName: z.string().optional(),
  outputName: z.string().optional(),
})

export type OnnxModelOptions = z.input<typeof optionsSchema>
/** An execution provider by name (`'cpu'`, `'cuda'`, `'tensorrt'`, `'webgpu'`, …), or with a device. */
export type ExecutionProvider = NonNullable<OnnxModelOptions['executionProviders']>[number]

const AUTO_CANDIDATES = [8, 16, 32, 64, 128, 256, 512, 1024]

/** An ONNX model served by a pool of onnxruntime-node sessions, one per worker thread. */
export class OnnxModel implements Model {
  readonly stats: ModelStats = { forwardPasses: 0, rows: 0 }
  readonly concurrency: number
  private batch: number | 'auto'
  private readonly fixedBatch: number | undefined
  private readonly life = new Lifecycle()
  /** Forward passes handed to the pool and not yet finished there (whoever still waits on them). */
  private readonly inPool = new Set<Promise<unknown>>()
  private closing: Promise<void> | undefined

  private constructor(
    private readonly pool: Piscina,
    /** Shared with the workers: set to 1 on close, so batches still queued are refused, not run. */
    private readonly stop: Int32Array,
    /** The execution provider that actually runs the model. */
    readonly provider: string,
    readonly output: OutputKind,
    readonly rawOutput: OutputKind,
    readonly inputName: string,
    readonly outputName: string,
    /** Input shape from the model's metadata (`null` = symbolic), when known. */
    readonly inputShape: readonly (number | null)[] | undefined,
    batch: number | 'auto',
    workers: number,
    /** Every output of the graph (the model scores {@link outputName}). */
    readonly outputNames: readonly string[] = [outputName],
  ) {
    this.concurrency = workers
    const fixed = inputShape?.[0]
    this.fixedBatch = typeof fixed === 'number' ? fixed : undefined
    this.batch = this.fixedBatch ?? batch
  }

  static async load(path: string, opts?: OnnxModelOptions): Promise<OnnxModel> {
    if (typeof path !== 'string') throw new XaiEvalError('INVALID_OPTION', 'path', 'expected a path to an .onnx file')
    const options = parseOptions(optionsSchema, opts)
    if ((options.workers ?? 1) * (options.threads ?? 1) > MAX_THREADS) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'threads',
        `expected workers × threads ≤ ${MAX_THREADS} (4 × cores), got ${options.workers} × ${options.threads}`,
      )
    }
    const { output, maxBatchSize: batch } = options
    let bytes: Uint8Array
    try {
      bytes = await readFile(path)
    } catch (e) {
      throw new XaiEvalError('MODEL_LOAD', 'path', `cannot read ${path}: ${(e as Error).message}`, { cause: e })
    }

    const requested = (options.executionProviders ?? ['cpu']).map((p) => (typeof p === 'string' ? { name: p } : p))
    if (!requested.some((p) => p.name === 'cpu')) requested.push({ name: 'cpu' })
    const cores = availableParallelism()
    let failure: unknown
    for (const [i, p] of requested.entries()) {
      const gpu = p.name !== 'cpu'
      const workers = options.workers ?? (gpu ? 1 : Math.min(2, cores))
      const threads = options.threads ?? Math.max(1, Math.floor(cores / workers))
      const stop = new Int32Array(new SharedArrayBuffer(4))
      const config: WorkerConfig = { path, provider: p.name, deviceId: p.deviceId ?? 0, threads, stop }
      const pool = new Piscina({
        filename: new URL('./onnx-worker.js', import.meta.url).href,
        workerData: config,
        minThreads: workers,
        maxThreads: workers,
        idleTimeout: Number.POSITIVE_INFINITY,
      })
      try {
        const meta = (await pool.run({ kind: 'meta' })) as SessionMeta
        const inputName = pick('inputName', options.inputName, meta.inputNames)
        const outputName = pick('outputName', options.outputName, meta.outputNames)
        const rawOutput = producerOf(bytes, outputName) === 'Softmax' ? 'probabilities' : 'logits'
        if (i > 0) {
          process.emitWarning(`xai-eval: execution provider '${requested[0]!.name}' is unavailable, running on '${p.name}'`, {
            code: 'XAI_EVAL_PROVIDER_FALLBACK',
            detail: String(failure),
          })
        }
        return new OnnxModel(
          pool,
          stop,
          p.name,
          output,
          rawOutput,
          inputName,
          outputName,
          meta.inputShapes[inputName],
          batch,
          workers,
          meta.outputNames,
        )
      } catch (e) {
        await pool.destroy()
        if (e instanceof XaiEvalError) throw e
        failure = e
      }
    }
    throw new XaiEvalError('MODEL_LOAD', 'path', `cannot load ${path}: ${String(failure)}`, { cause: failure })
  }

  /** Rows per forward call (after tuning, when `'auto'`; 64 until then). */
  get maxBatchSize(): number {
    return this.batch === 'auto' ? 64 : this.batch
  }

  /**
   * Measures throughput at a few batch sizes on zero inputs of `rowShape` and keeps the fastest.
   * Called by the metrics before their first batch when `maxBatchSize` is `'auto'`; not counted in
   * {@link stats}.
   */
  async tune(rowShape: readonly number[]): Promise<number> {
    this.life.check()
    if (this.batch !== 'auto') return this.batch
    this.checkRowShape(rowShape)
    const rowLen = rowShape.reduce((p, d) => p * d, 1)
    let best = { size: AUTO_CANDIDATES[0]!, rate: 0 }
    for (const size of AUTO_CANDIDATES) {
      const run = () => settleAll(Array.from({ length: this.concurrency }, () => this.run(new Float32Array(size * rowLen), size, rowShape)))
      await run() // warm-up: allocations and kernel selection for this shape
      const start = performance.now()
      await run()
      const rate = (size * this.concurrency) / (performance.now() - start)
      if (rate > best.rate) best = { size, rate }
      else if (rate < 0.8 * best.rate) break
    }
    this.batch = best.size
    return best.size
  }

  async forward(x: Float32Array, rows: number, rowShape: readonly number[]): Promise<Float32Array> {
    this.life.check()
    this.checkRowShape(rowShape)
    this.stats.forwardPasses++
    this.stats.rows += rows
    return this.run(x, rows, rowShape)
  }

  private async run(x: Float32Array, rows: number, rowShape: readonly number[]): Promise<Float32Array> {
    let batch = rows
    if (this.fixedBatch !== undefined && rows < this.fixedBatch) {
      const padded = new Float32Array(this.fixedBatch * (x.length / rows))
      padded.set(x)
      x = padded
      batch = this.fixedBatch
    }
    const owned = x.byteOffset === 0 && x.byteLength === x.buffer.byteLength
    const req: ForwardRequest = { kind: 'forward', inputName: this.inputName, outputName: this.outputName, x, dims: [batch, ...rowShape] }
    this.life.check()
    const task = this.pool.run(req, owned ? { transferList: [x.buffer as ArrayBuffer] } : {}).catch((e: unknown) => {
      if (this.life.closed) throw closedError()
      throw new XaiEvalError('MODEL_OUTPUT', 'model', `forward pass failed: ${(e as Error).message}`, { cause: e })
    }) as Promise<{ data: Float32Array; dims: number[] }>
    this.inPool.add(task)
    task.then(
      () => this.inPool.delete(task),
      () => this.inPool.delete(task),
    )
    const out = await this.life.guard(task)
    if (out.dims.length !== 2 || out.dims[0] !== batch) {
      throw new XaiEvalError('MODEL_OUTPUT', 'model.output', `expected [${batch}, classes], got [${out.dims.join(', ')}]`)
    }
    return batch === rows ? out.data : out.data.subarray(0, rows * out.dims[1]!)
  }

  private checkRowShape(rowShape: readonly number[]): void {
    const expected = this.inputShape?.slice(1)
    if (!expected) return
    if (expected.length !== rowShape.length || expected.some((d, i) => d !== null && d !== rowShape[i])) {
      throw new XaiEvalError(
        'SHAPE_MISMATCH',
        'x',
        `the model expects inputs [N, ${expected.map((d) => d ?? '?').join(', ')}], got [N, ${rowShape.join(', ')}]`,
      )
    }
  }

  /**
   * Refuses further calls with CLOSED and rejects the calls waiting on the model with CLOSED at
   * once; batches still queued are refused by the workers, and the pool is torn down only after
   * the batches already inside onnxruntime finish (at most one batch's time): terminating a worker
   * in the middle of `session.run` aborts the whole process. Idempotent.
   */
  close(): Promise<void> {
    if (this.life.close()) {
      Atomics.store(this.stop, 0, 1)
      this.closing = Promise.allSettled(this.inPool).then(() => this.pool.destroy())
    }
    return this.closing!
  }
}

/** Promise.all that, on a failure, still waits for the other runs before rejecting. */
async function settleAll<T>(runs: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(runs)
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failure) throw failure.reason
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value)
}

function pick(option: string, wanted: string | undefined, names: string[]): string {
  if (wanted === undefined) {
    if (names[0] === undefined) throw new XaiEvalError('MODEL_LOAD', option, 'the model has no such tensors')
    return names[0]
  }
  if (!names.includes(wanted)) {
    throw new XaiEvalError('INVALID_OPTION', option, `'${wanted}' is not one of the model's: ${names.join(', ')}`)
  }
  return wanted
}
