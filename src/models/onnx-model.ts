import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'

import { Piscina } from 'piscina'

import { XaiEvalError } from '../errors.js'
import { closedError, Lifecycle } from './lifecycle.js'
import { parseOptions, z } from '../options.js'
import type { Model, ModelStats, OutputKind, PoolShape } from './model.js'
import { BufferPool } from './buffer-pool.js'
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
   * Rows per session run (a batch), or `'auto'` (default): the first batches climb 1, 2, 4, … rows while the
   * sessions' rows/s still improve by `tuning.margin`, within `tuning`'s byte, memory and time
   * budgets, and the best size is kept for the process (per model file, input shape, provider and
   * pool shape). The climb runs the metric's own rows, so it costs nothing extra and every row
   * counts. CPU caches favour small batches, GPUs large ones. A fixed batch dimension in the model
   * overrides both (short batches are padded). One call to a worker carries as many batches as
   * the session needs about 4 ms for, whatever the size (see {@link OnnxModel.rowsPerCall}).
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
   * session, which then owns its cores; spinning sessions that share cores steal them from each
   * other; with `'auto'` workers or threads, a lone session is tried both ways).
   */
  spin: z.boolean().optional(),
  /**
   * Sessions (worker threads) in the pool (default: 2 on CPU, 1 on a GPU; at most 4 × cores), or
   * `'auto'`: measured like the batch size (see {@link poolShapes}); the result's `pool` says
   * what was chosen, and passing it back fixes it.
   */
  workers: z.union([z.int().min(1).max(MAX_THREADS), z.literal('auto')]).optional(),
  /** Intra-op threads per session (default: cores / workers; at most 4 × cores), or `'auto'` (see `workers`). */
  threads: z.union([z.int().min(1).max(MAX_THREADS), z.literal('auto')]).optional(),
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
 * Session time one call to a worker should carry: each call costs a hand-off between threads
 * (≈ 0.1–0.2 ms on the small CNN, and as much again of main-thread work), so calls of short batches
 * carry several of them ({@link OnnxModel.rowsPerCall}), run one after the other by the session.
 */
const CALL_MS = 4

/**
 * On a CPU, a batch the session runs for this long already keeps its cores busy within each
 * operator: larger batches gain little (ResNet-18 at one thread: 1, 2, 4 and 8 rows within 6 %),
 * and climbing further on such a model spends the whole time budget before any pool shape is tried.
 */
const LONG_BATCH_MS = 10

/** The time and memory budgets of one tuning (`tuning.ms`, `tuning.rssBytes`), from its start. */
class Budget {
  private readonly start = performance.now()
  private readonly rss = process.memoryUsage.rss()

  constructor(private readonly tuning: Tuning) {}

  get timeUp(): boolean {
    return performance.now() - this.start > this.tuning.ms
  }

  get overMemory(): boolean {
    return process.memoryUsage.rss() - this.rss > this.tuning.rssBytes
  }
}

/**
 * One measurement of a pool's throughput as the engine sees it: two calls per session pay for a
 * new batch size or pool shape (onnxruntime's first runs at a new size allocate: with one, the
 * small CNN measured 256 rows at a third of 128's rate; fresh sessions still run cold), then rows
 * completed per wall-clock millisecond over at least {@link WINDOW_MS} and `2 × sessions` calls.
 */
class Window {
  private completed = 0
  private rows = 0
  private since = 0

  /** Starts over: a new size or shape, or a measurement other sessions disturbed. */
  restart(): void {
    this.completed = 0
  }

  /** A call of `rows` rows has completed on `sessions` sessions: the rate once the window is full. */
  record(rows: number, sessions: number): number | undefined {
    const now = performance.now()
    if (++this.completed <= 2 * sessions) {
      this.since = now
      this.rows = 0
      return undefined
    }
    this.rows += rows
    if (this.completed < 4 * sessions || now - this.since < WINDOW_MS) return undefined
    return this.rows / (now - this.since)
  }
}

/**
 * The `'auto'` climb of one (model file, row shape, provider, pool shape): doubling batch sizes,
 * each measured over one {@link Window} (hand-offs included: calls carry {@link CALL_MS} of
 * batches, so sizes are compared on equal hand-off costs). On a CPU the climb stops at the first size whose batches are long ({@link LONG_BATCH_MS}).
 * Shared by every model of the process with that key, so a settled size is reused and an unfinished
 * climb goes on where it stopped.
 */
class Climb {
  size: number
  settled: number | undefined
  best = { size: 0, rate: 0 }
  /** Doublings in a row that did not beat the best by the margin: two end the climb (noise may fake one). */
  private misses = 0
  private readonly window = new Window()

  constructor(
    /** Smallest size worth measuring (rows of a few tens of kB: tiny batches are all overhead). */
    first: number,
    /** Largest size the byte budget allows. */
    private readonly cap: number,
    private readonly sessions: number,
    private readonly tuning: Tuning,
    private readonly budget: Budget,
    private readonly cpu: boolean,
  ) {
    this.size = Math.min(first, cap)
    if (this.size === cap) this.settled = cap
  }

  /** The size of the next batch. */
  get next(): number {
    return this.settled ?? this.size
  }

  /**
   * A call of `rows` rows in batches of `batch` has just completed, after `ms` in its session
   * (only calls in batches of the size under measurement count).
   */
  record(rows: number, batch: number, ms: number): void {
    const size = batch
    if (this.settled !== undefined || size !== this.size) return
    const rate = this.window.record(rows, this.sessions)
    if (rate === undefined) return
    const overMemory = this.budget.overMemory
    // The fastest size is kept, but only a gain of the margin keeps the climb going: gains of a few
    // percent a doubling (the small CNN: 16 → 32 → 64 rows, 8 % each) must not stop it at the first.
    const improved = !overMemory && rate > this.best.rate * (1 + this.tuning.margin)
    if (!overMemory && rate > this.best.rate) this.best = { size, rate }
    this.misses = improved ? 0 : this.misses + 1
    const long = this.cpu && (ms * size) / rows >= LONG_BATCH_MS
    if (overMemory || long || this.misses === 2 || 2 * size > this.cap || this.budget.timeUp) {
      this.settled = this.best.size || size
    } else {
      this.size *= 2
      this.window.restart()
    }
  }
}

/**
 * The pool shapes `'auto'` workers or threads try on `cores` cores, the default shape first: 1, 2,
 * 4, … sessions (and one per core) sharing the cores evenly, a lone multi-thread session both
 * spinning and not. Fixed `workers`, `threads` or `spin` narrow the list.
 */
export function poolShapes(
  cores: number,
  gpu: boolean,
  o: { workers?: number | 'auto'; threads?: number | 'auto'; spin?: boolean | undefined },
): PoolShape[] {
  const shape = (workers: number, threads?: number, spin?: boolean): PoolShape => {
    const t = threads ?? Math.max(1, Math.floor(cores / workers))
    return { workers, threads: t, spin: spin ?? workers === 1 }
  }
  const fixedWorkers = typeof o.workers === 'number' ? o.workers : undefined
  const fixedThreads = typeof o.threads === 'number' ? o.threads : undefined
  const first = shape(fixedWorkers ?? (gpu ? 1 : Math.min(2, cores)), fixedThreads, o.spin)
  if (o.workers !== 'auto' && o.threads !== 'auto') return [first]
  const counts = fixedWorkers !== undefined ? [fixedWorkers] : gpu ? [1, 2] : [1, 2, 4, 8, 16, 32, 64, cores].filter((w) => w <= cores)
  const all = [first]
  for (const w of counts) {
    const t = fixedThreads ?? Math.max(1, Math.floor(cores / w))
    const spins = o.spin !== undefined ? [o.spin] : w === 1 && t > 1 ? [true, false] : [w === 1]
    for (const spin of spins) all.push(shape(w, t, spin))
  }
  const seen = new Set<string>()
  return all.filter((p) => {
    const k = `${p.workers}×${p.threads}${p.spin ? ' spin' : ''}`
    if (seen.has(k) || p.workers * p.threads > MAX_THREADS) return false
    seen.add(k)
    return true
  })
}

/**
 * The `'auto'` choice of one (model file, row shape, provider, candidate pool shapes, budgets):
 * first the batch size {@link Climb}s on the first (default) shape; then every other shape runs
 * the settled size for one {@link Window} (the metric's own rows again); a shape replaces the best so far only if its rows/s beat it by
 * `tuning.margin`. The time and memory budgets cover both stages (new sessions included): once
 * spent, the best so far is kept, even in the middle of a trial. Shared by every model of the
 * process with that key.
 */
class Tuner {
  settled: { shape: number; size: number } | undefined
  private readonly climb: Climb
  private climbing = true
  /** Shape under trial in the second stage. */
  private trial = 0
  private best = { shape: 0, rate: 0 }
  private readonly window = new Window()
  private readonly budget: Budget

  constructor(
    readonly shapes: readonly PoolShape[],
    first: number,
    cap: number,
    private readonly tuning: Tuning,
    cpu: boolean,
  ) {
    this.budget = new Budget(tuning)
    this.climb = new Climb(first, cap, shapes[0]!.workers, tuning, this.budget, cpu)
    this.afterClimb()
  }

  /** The candidate shape the next batch should run on. */
  get shape(): number {
    return this.settled?.shape ?? this.trial
  }

  /** The size of the next batch. */
  get size(): number {
    return this.settled?.size ?? this.climb.next
  }

  /**
   * A call of `rows` rows in batches of `batch` has just completed on candidate `shape` after `ms`
   * in its session; `alone` when no other candidate's sessions were running or opening (a shape
   * is measured only alone: one still draining its queue, or loading a model, takes cores from the
   * one under trial).
   */
  record(shape: number, rows: number, batch: number, ms: number, alone: boolean): void {
    if (this.settled !== undefined) return
    if (this.climbing) {
      if (shape === 0) this.climb.record(rows, batch, ms)
      this.afterClimb()
      return
    }
    // A trial is abandoned when the budget runs out (a big model's window alone may take seconds).
    if (this.budget.timeUp) {
      this.settled = { shape: this.best.shape, size: this.climb.settled! }
      return
    }
    if (shape !== this.trial || batch !== this.climb.settled) return
    if (!alone) this.window.restart()
    const rate = this.window.record(rows, this.shapes[shape]!.workers)
    if (rate === undefined) return
    if (rate > this.best.rate * (1 + this.tuning.margin)) this.best = { shape, rate }
    this.nextTrial()
  }

  /** Candidate `shape` could not be opened: it is passed over. */
  skip(shape: number): void {
    if (this.settled === undefined && !this.climbing && shape === this.trial && shape > 0) this.nextTrial()
  }

  private afterClimb(): void {
    const size = this.climb.settled
    if (size === undefined) return
    this.climbing = false
    if (this.shapes.length === 1) this.settled = { shape: 0, size }
    // A fixed batch size is not climbed: the first shape is measured like the others.
    else if (this.climb.best.rate === 0) this.trial = 0
    else {
      this.best = { shape: 0, rate: this.climb.best.rate }
      this.nextTrial()
    }
  }

  private nextTrial(): void {
    this.trial++
    this.window.restart()
    if (this.trial >= this.shapes.length || this.budget.overMemory || this.budget.timeUp) {
      this.settled = { shape: this.best.shape, size: this.climb.settled! }
    }
  }
}

const tuners = new Map<string, Tuner>()

/** One candidate shape's sessions: opening, then open (or failed). */
interface Pool {
  shape: PoolShape
  piscina: Piscina | undefined
  failed: boolean
  opening: Promise<void>
  /** Forward passes handed to this pool and not yet finished there. */
  inPool: Set<Promise<unknown>>
}

/** Opens `shape`'s sessions on worker threads (each loads the model when it first runs). */
function openPool(config: Omit<WorkerConfig, 'threads' | 'spin'>, shape: PoolShape): Piscina {
  const workerData: WorkerConfig = { ...config, threads: shape.threads, spin: shape.spin }
  return new Piscina({
    filename: new URL('./onnx-worker.js', import.meta.url).href,
    workerData,
    minThreads: shape.workers,
    maxThreads: shape.workers,
    idleTimeout: Number.POSITIVE_INFINITY,
    // The next batch waits in the worker's own queue, not the main thread's: the session goes
    // from one run to the next without sleeping until the main thread has handled a reply
    // (on a busy machine, each such wake-up costs a scheduler slice). The engine bounds the
    // batches in flight, so a deeper queue only reorders them.
    concurrentTasksPerWorker: 2,
  })
}

/** An ONNX model served by a pool of onnxruntime-node sessions, one per worker thread. */
export class OnnxModel implements Model {
  readonly stats: ModelStats = { forwardPasses: 0, rows: 0 }
  readonly maxConcurrency: number
  private readonly batch: number | 'auto'
  private readonly fixedBatch: number | undefined
  /** Buffers {@link buffer} handed out: only these are sent as they are, and reused after their call. */
  private readonly lent = new WeakSet<ArrayBufferLike>()
  /** Shared input buffers of finished calls, for the next ones. */
  private readonly spare: BufferPool<SharedArrayBuffer>
  /** Session milliseconds per row, by row shape (a running mean): what sizes a call. */
  private readonly msPerRow = new Map<string, number>()
  private last: Tuner | undefined
  private readonly life = new Lifecycle()
  /** Sessions of each candidate shape, opened when first wanted. */
  private readonly pools: (Pool | undefined)[]
  /** Candidate the last batch ran on. */
  private active = 0
  private closing: Promise<void> | undefined

  private constructor(
    first: Piscina,
    /** Shared with the workers: set to 1 on close, so batches still queued are refused, not run. */
    private readonly stop: Int32Array,
    private readonly config: Omit<WorkerConfig, 'threads' | 'spin'>,
    /** Candidate pool shapes, the one of `first` first (one shape unless workers or threads are `'auto'`). */
    private readonly shapes: readonly PoolShape[],
    /** The execution provider that actually runs the model. */
    readonly provider: string,
    readonly output: OutputKind,
    readonly rawOutput: OutputKind,
    readonly inputName: string,
    readonly outputName: string,
    /** Input shape from the model's metadata (`null` = symbolic), when known. */
    readonly inputShape: readonly (number | null)[] | undefined,
    batch: number | 'auto',
    /** Identifies the model file, provider and candidate shapes for the process's tuning cache. */
    private readonly key: string,
    private readonly tuning: Tuning,
    /** Every output of the graph (the model scores {@link outputName}). */
    readonly outputNames: readonly string[] = [outputName],
  ) {
    this.pools = shapes.map(() => undefined)
    this.spare = new BufferPool(
      (bytes) => {
        const b = new SharedArrayBuffer(bytes)
        this.lent.add(b)
        return b
      },
      2 * Math.max(...shapes.map((p) => p.workers)) + 2,
    )
    this.pools[0] = { shape: shapes[0]!, piscina: first, failed: false, opening: Promise.resolve(), inPool: new Set() }
    this.maxConcurrency = Math.max(...shapes.map((p) => p.workers))
    const fixed = inputShape?.[0]
    this.fixedBatch = typeof fixed === 'number' ? fixed : undefined
    this.batch = this.fixedBatch ?? batch
  }

  static async load(path: string, opts?: OnnxModelOptions): Promise<OnnxModel> {
    if (typeof path !== 'string') throw new XaiEvalError('INVALID_OPTION', 'path', 'expected a path to an .onnx file')
    const options = parseOptions(optionsSchema, opts)
    const { workers: w, threads: t } = options
    if (typeof w === 'number' && typeof t === 'number' && w * t > MAX_THREADS) {
      throw new XaiEvalError('INVALID_OPTION', 'threads', `expected workers × threads ≤ ${MAX_THREADS} (4 × cores), got ${w} × ${t}`)
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
      const shapes = poolShapes(cores, p.name !== 'cpu', options)
      const stop = new Int32Array(new SharedArrayBuffer(4))
      const config = { path, provider: p.name, deviceId: p.deviceId ?? 0, stop }
      const pool = openPool(config, shapes[0]!)
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
        const shapeKeys = shapes.map((s) => `${s.workers}×${s.threads}${s.spin ? ' spin' : ''}`).join(',')
        const key = `${path}|${bytes.length}|${p.name}:${p.deviceId ?? 0}|${shapeKeys}`
        return new OnnxModel(
          pool,
          stop,
          config,
          shapes,
          p.name,
          output,
          rawOutput,
          inputName,
          outputName,
          meta.inputShapes[inputName],
          batch,
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

  /** Batches the pool the last batch ran on can run at once (its sessions). */
  get concurrency(): number {
    return this.shapes[this.active]!.workers
  }

  /** The pool shape the last batch ran on: with `'auto'` workers or threads, the one measured fastest once settled. */
  get pool(): PoolShape {
    return { ...this.shapes[this.active]! }
  }

  /** Rows per forward call: the fixed size, or the `'auto'` size last used (64 before any). */
  get maxBatchSize(): number {
    if (this.batch !== 'auto') return this.batch
    return this.last?.size ?? 64
  }

  /**
   * Rows of the next batch of inputs `rowShape`: the fixed size, or the `'auto'` tuner's current
   * (then settled) size for this shape, fed by {@link forward}'s timings.
   */
  batchSize(rowShape: readonly number[]): number {
    this.checkRowShape(rowShape)
    const tuner = this.tuner(rowShape)
    if (tuner) this.last = tuner
    return this.batch === 'auto' ? (tuner?.size ?? 64) : this.batch
  }

  /**
   * Rows of the next call with inputs `rowShape`: whole batches of {@link batchSize} rows, as many
   * as the session needs about {@link CALL_MS} for (as last measured), within `tuning.batchBytes`.
   * A worker runs them one batch after the other, so short batches do not each pay a hand-off.
   */
  rowsPerCall(rowShape: readonly number[]): number {
    const batch = this.batchSize(rowShape)
    const perRow = this.msPerRow.get(rowShape.join('×'))
    if (perRow === undefined || perRow <= 0) return batch
    const rowBytes = 4 * rowShape.reduce((p, d) => p * d, 1)
    const cap = Math.min(MAX_AUTO, Math.floor(this.tuning.batchBytes / rowBytes))
    const k = Math.min(Math.floor(CALL_MS / (perRow * batch)), Math.floor(cap / batch))
    return batch * Math.max(1, k)
  }

  /**
   * The tuning of inputs `rowShape`: with `'auto'` batch size and pool shape both, or one of them
   * (the other stays fixed); none when nothing is measured.
   */
  private tuner(rowShape: readonly number[]): Tuner | undefined {
    const autoBatch = this.batch === 'auto'
    if (!autoBatch && this.shapes.length === 1) return undefined
    const { batchBytes, rssBytes, ms, margin } = this.tuning
    const key = `${this.key}|${autoBatch ? 'auto' : this.batch}|${rowShape.join('×')}|${batchBytes},${rssBytes},${ms},${margin}`
    let t = tuners.get(key)
    if (!t) {
      const rowBytes = 4 * rowShape.reduce((p, d) => p * d, 1)
      const cap = autoBatch ? Math.max(1, Math.min(MAX_AUTO, Math.floor(batchBytes / rowBytes))) : (this.batch as number)
      const first = autoBatch ? 2 ** Math.max(0, Math.floor(Math.log2(FIRST_BYTES / rowBytes))) : cap
      t = new Tuner(this.shapes, first, cap, this.tuning, this.provider === 'cpu')
      tuners.set(key, t)
    }
    return t
  }

  /**
   * The candidate the next batch of `rowShape` runs on: the one the tuner wants once its sessions
   * are open (they open in the background meanwhile, and the batches go on where they ran). Once
   * a tuning settles, the other candidates' sessions are closed after their last batches.
   */
  private route(rowShape: readonly number[]): number {
    const tuner = this.shapes.length > 1 ? this.tuner(rowShape) : undefined
    if (!tuner) return 0
    const want = tuner.shape
    const pool = this.pools[want] ?? this.open(want)
    if (pool.failed) tuner.skip(want)
    else if (pool.piscina) this.active = want
    if (tuner.settled !== undefined) this.retire(this.active)
    return this.active
  }

  private open(index: number): Pool {
    const shape = this.shapes[index]!
    const pool: Pool = { shape, piscina: undefined, failed: false, opening: Promise.resolve(), inPool: new Set() }
    const piscina = openPool(this.config, shape)
    // The sessions load before the first batch is routed here, so that batch measures inference only.
    pool.opening = Promise.all(Array.from({ length: shape.workers }, () => piscina.run({ kind: 'meta' }))).then(
      () => {
        if (this.life.closed) void piscina.destroy()
        else pool.piscina = piscina
      },
      () => {
        pool.failed = true
        void piscina.destroy()
      },
    )
    this.pools[index] = pool
    return pool
  }

  /** Whether candidate `index` runs alone: no other candidate's sessions have batches or are opening. */
  private alone(index: number): boolean {
    return this.pools.every((p, i) => i === index || !p || (p.piscina !== undefined && p.inPool.size === 0) || p.failed)
  }

  /** Closes every candidate's sessions but `keep`'s, once their batches have finished. */
  private retire(keep: number): void {
    this.pools.forEach((pool, i) => {
      if (i === keep || !pool?.piscina) return
      this.pools[i] = undefined
      const { piscina } = pool
      void Promise.allSettled(pool.inPool).then(() => piscina.destroy())
    })
  }

  /**
   * A zeroed or reused (then stale) buffer of `length` floats, shared with the workers: a call
   * built there reaches a session without a transfer or a copy ({@link BufferPool}).
   */
  buffer(length: number): Float32Array {
    return this.spare.take(length)
  }

  async forward(x: Float32Array, rows: number, rowShape: readonly number[]): Promise<Float32Array> {
    this.life.check()
    this.checkRowShape(rowShape)
    this.stats.forwardPasses++
    this.stats.rows += rows
    return this.run(x, rows, rowShape)
  }

  private async run(x: Float32Array, rows: number, rowShape: readonly number[]): Promise<Float32Array> {
    // The batch size now (the call may have been sized for another while the climb moved on).
    let batch = this.fixedBatch ?? (this.batch === 'auto' ? (this.tuner(rowShape)?.size ?? 64) : this.batch)
    const total = this.fixedBatch === undefined ? rows : Math.ceil(rows / this.fixedBatch) * this.fixedBatch
    batch = Math.min(batch, total)
    // Inputs reach the workers in shared memory: a batch built in `buffer()` as it is; any other
    // array (the caller keeps it intact), or one to pad to a fixed batch dimension, is copied there.
    const length = total * (x.length / rows)
    if (length !== x.length || !this.lent.has(x.buffer)) {
      const copy = this.buffer(length)
      copy.set(x)
      x = copy
    }
    const req: ForwardRequest = {
      kind: 'forward',
      inputName: this.inputName,
      outputName: this.outputName,
      x,
      dims: [total, ...rowShape],
      batch,
    }
    this.life.check()
    const index = this.route(rowShape)
    const pool = this.pools[index]!
    const task = pool.piscina!.run(req).catch((e: unknown) => {
      if (this.life.closed) throw closedError()
      throw new XaiEvalError('MODEL_OUTPUT', 'model', `forward pass failed: ${(e as Error).message}`, { cause: e })
    }) as Promise<ForwardResult>
    pool.inPool.add(task)
    task.then(
      () => pool.inPool.delete(task),
      () => pool.inPool.delete(task),
    )
    const out = await this.life.guard(task)
    if (out.dims.length !== 2 || out.dims[0] !== total) {
      throw new XaiEvalError('MODEL_OUTPUT', 'model.output', `expected [${total}, classes], got [${out.dims.join(', ')}]`)
    }
    const key = rowShape.join('×')
    const perRow = out.ms / total
    const mean = this.msPerRow.get(key)
    this.msPerRow.set(key, mean === undefined ? perRow : 0.75 * mean + 0.25 * perRow)
    if (this.fixedBatch === undefined) this.tuner(rowShape)?.record(index, total, batch, out.ms, this.alone(index))
    // The worker is done with the input: its buffer is free for the next calls.
    this.spare.give(x)
    return total === rows ? out.data : out.data.subarray(0, rows * out.dims[1]!)
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
   * once; batches still queued are refused by the workers, and the pools are torn down only after
   * the batches already inside onnxruntime finish (at most one batch's time): terminating a worker
   * in the middle of `session.run` aborts the whole process. Idempotent.
   */
  close(): Promise<void> {
    if (this.life.close()) {
      Atomics.store(this.stop, 0, 1)
      this.closing = Promise.all(
        this.pools.map(async (pool) => {
          if (!pool) return
          await pool.opening
          await Promise.allSettled(pool.inPool)
          await pool.piscina?.destroy()
        }),
      ).then(() => {})
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
