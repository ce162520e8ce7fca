import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'

import { Piscina } from 'piscina'

import { XaiEvalError } from '../errors.js'
import { closedError, Lifecycle } from './lifecycle.js'
import { parseOptions, z } from '../options.js'
import type { Model, ModelStats, OutputKind } from './model.js'
import { producerOf } from './onnx-graph.js'
import type { ForwardRequest, ForwardResult, SessionMeta, WorkerConfig } from './onnx-worker.js'

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
   * Rows per forward call, or `'auto'` (default): the first batches climb 1, 2, 4, … rows while the
   * sessions' rows/s still improve by `tuning.margin`, within `tuning`'s byte, memory and time
   * budgets, and the best size is kept for the process (per model file, input shape, provider and
   * pool shape). The climb runs the metric's own rows, so it costs nothing extra and every row
   * counts. CPU caches favour small batches, GPUs large ones. A fixed batch dimension in the model
   * overrides both (short batches are padded).
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
  /** Budgets of the `'auto'` batch size climb. */
  tuning: z
    .strictObject({
      /** Largest input of one batch in bytes (default 32 MiB): big rows stop the climb early. */
      batchBytes: z
        .int()
        .min(1)
        .max(2 ** 40)
        .default(32 * 2 ** 20),
      /** Growth of the process's resident memory during the climb that stops it (default 1 GiB). */
      rssBytes: z
        .int()
        .min(1)
        .max(2 ** 46)
        .default(2 ** 30),
      /** Wall time of the climb after which the best size so far is kept (default 1000 ms). */
      ms: z.number().min(0).max(3_600_000).default(1000),
      /** Relative gain in rows/s a doubled batch must bring to keep climbing (default 0.1). */
      margin: z.number().min(0).max(10).default(0.1),
    })
    .default({ batchBytes: 32 * 2 ** 20, rssBytes: 2 ** 30, ms: 1000, margin: 0.1 }),
  /**
   * Whether ORT's intra-op threads may spin-wait for work (default: only when the pool has one
   * session, which then owns its cores; spinning sessions that share cores steal them from each other).
   */
  spin: z.boolean().optional(),
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

type Tuning = z.output<typeof optionsSchema>['tuning']

/** Largest batch the climb tries, whatever the budgets. */
const MAX_AUTO = 1 << 16

/** Input bytes of the climb's first batch size (a power of two, at least 1 row). */
const FIRST_BYTES = 64 * 1024

/** Shortest wall time over which a batch size's throughput is measured. */
const WINDOW_MS = 20

/**
 * The `'auto'` climb of one (model file, row shape, provider, pool shape): doubling batch sizes,
 * each measured by the pool's throughput as the engine sees it (rows completed per wall-clock
 * millisecond, per-batch overheads included) over at least {@link WINDOW_MS} and `2 × sessions`
 * batches, after one batch per session has paid for the new shape. Shared by every model of the
 * process with that key, so a settled size is reused and an unfinished climb goes on where it stopped.
 */
class Climb {
  size: number
  settled: number | undefined
  private best = { size: 0, rate: 0 }
  /** Doublings in a row that did not beat the best by the margin: two end the climb (noise may fake one). */
  private misses = 0
  private completed = 0
  private rows = 0
  private since = 0
  private readonly start = performance.now()
  private readonly rss = process.memoryUsage.rss()

  constructor(
    /** Smallest size worth measuring (rows of a few tens of kB: tiny batches are all overhead). */
    first: number,
    /** Largest size the byte budget allows. */
    private readonly cap: number,
    private readonly sessions: number,
    private readonly tuning: Tuning,
  ) {
    this.size = Math.min(first, cap)
    if (this.size === cap) this.settled = cap
  }

  /** The size of the next batch. */
  get next(): number {
    return this.settled ?? this.size
  }

  /** A batch of `rows` rows has just completed (only full batches of the current size count). */
  record(rows: number): void {
    const size = rows
    if (this.settled !== undefined || size !== this.size) return
    const now = performance.now()
    if (++this.completed <= this.sessions) {
      this.since = now
      this.rows = 0
      return
    }
    this.rows += rows
    if (this.completed < 3 * this.sessions || now - this.since < WINDOW_MS) return
    const rate = this.rows / (now - this.since)
    const overMemory = process.memoryUsage.rss() - this.rss > this.tuning.rssBytes
    const improved = !overMemory && rate > this.best.rate * (1 + this.tuning.margin)
    if (improved) this.best = { size, rate }
    this.misses = improved ? 0 : this.misses + 1
    if (overMemory || this.misses === 2 || 2 * size > this.cap || now - this.start > this.tuning.ms) {
      this.settled = this.best.size
    } else {
      this.size *= 2
      this.completed = 0
    }
  }
}

const climbs = new Map<string, Climb>()

/** An ONNX model served by a pool of onnxruntime-node sessions, one per worker thread. */
export class OnnxModel implements Model {
  readonly stats: ModelStats = { forwardPasses: 0, rows: 0 }
  readonly concurrency: number
  private readonly batch: number | 'auto'
  private readonly fixedBatch: number | undefined
  /** Input buffers handed back by the workers, for the next batches of the same length. */
  private readonly spare: Float32Array[] = []
  private last: Climb | undefined
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
    /** Identifies the model file and pool shape for the process's batch-size cache. */
    private readonly key: string,
    private readonly tuning: Tuning,
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
    const { output, maxBatchSize: batch, tuning } = options
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
      const spin = options.spin ?? workers === 1
      const stop = new Int32Array(new SharedArrayBuffer(4))
      const config: WorkerConfig = { path, provider: p.name, deviceId: p.deviceId ?? 0, threads, spin, stop }
      const pool = new Piscina({
        filename: new URL('./onnx-worker.js', import.meta.url).href,
        workerData: config,
        minThreads: workers,
        maxThreads: workers,
        idleTimeout: Number.POSITIVE_INFINITY,
        // The next batch waits in the worker's own queue, not the main thread's: the session goes
        // from one run to the next without sleeping until the main thread has handled a reply
        // (on a busy machine, each such wake-up costs a scheduler slice). The engine bounds the
        // batches in flight, so a deeper queue only reorders them.
        concurrentTasksPerWorker: 2,
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
        const key = `${path}|${bytes.length}|${p.name}:${p.deviceId ?? 0}|${workers}×${threads}${spin ? ' spin' : ''}`
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
          key,
          tuning,
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

  /** Rows per forward call: the fixed size, or the `'auto'` size last used (64 before any). */
  get maxBatchSize(): number {
    if (this.batch !== 'auto') return this.batch
    return this.last?.next ?? 64
  }

  /**
   * Rows of the next batch of inputs `rowShape`: the fixed size, or the `'auto'` climb's current
   * (then settled) size for this shape, fed by {@link forward}'s timings.
   */
  batchSize(rowShape: readonly number[]): number {
    if (this.batch !== 'auto') return this.batch
    this.checkRowShape(rowShape)
    this.last = this.climb(rowShape)
    return this.last.next
  }

  private climb(rowShape: readonly number[]): Climb {
    const { batchBytes, rssBytes, ms, margin } = this.tuning
    const key = `${this.key}|${rowShape.join('×')}|${batchBytes},${rssBytes},${ms},${margin}`
    let c = climbs.get(key)
    if (!c) {
      const rowBytes = 4 * rowShape.reduce((p, d) => p * d, 1)
      const cap = Math.max(1, Math.min(MAX_AUTO, Math.floor(this.tuning.batchBytes / rowBytes)))
      const first = 2 ** Math.max(0, Math.floor(Math.log2(FIRST_BYTES / rowBytes)))
      c = new Climb(first, cap, this.concurrency, this.tuning)
      climbs.set(key, c)
    }
    return c
  }

  /** A zeroed or reused (then stale) buffer of `length` floats: inputs come back from the workers. */
  buffer(length: number): Float32Array {
    const i = this.spare.findIndex((b) => b.length === length)
    if (i < 0) return new Float32Array(length)
    return this.spare.splice(i, 1)[0]!
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
    }) as Promise<ForwardResult>
    this.inPool.add(task)
    task.then(
      () => this.inPool.delete(task),
      () => this.inPool.delete(task),
    )
    const out = await this.life.guard(task)
    if (out.dims.length !== 2 || out.dims[0] !== batch) {
      throw new XaiEvalError('MODEL_OUTPUT', 'model.output', `expected [${batch}, classes], got [${out.dims.join(', ')}]`)
    }
    if (this.batch === 'auto' && this.fixedBatch === undefined) this.climb(rowShape).record(rows)
    if (owned && out.x.length === x.length && this.spare.length < 2 * this.concurrency + 2) this.spare.push(out.x)
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
