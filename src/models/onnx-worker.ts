// One ONNX Runtime session per worker thread: `session.run()` in onnxruntime-node 1.30 blocks the
// thread that calls it, so it must never be the main one.
import { workerData } from 'node:worker_threads'

import * as ort from 'onnxruntime-node'

import { BufferPool } from './buffer-pool.js'

export interface WorkerConfig {
  path: string
  provider: string
  deviceId: number
  threads: number
  /** Whether ORT's intra-op threads may spin-wait between runs (only when one session owns its cores). */
  spin: boolean
  /** Set to 1 by `OnnxModel.close()`: requests still queued are refused instead of run. */
  stop: Int32Array
}

export interface ForwardRequest {
  kind: 'forward'
  inputName: string
  outputName: string
  x: Float32Array
  dims: number[]
  /** Rows per session run: a request of more rows runs as several batches of this size (the last shorter). */
  batch: number
}

export interface MetaRequest {
  kind: 'meta'
}

/** A forward pass's outputs and the time the session took. */
export interface ForwardResult {
  data: Float32Array
  dims: number[]
  /** Milliseconds the session spent on this request's batches (its turn, not the wait for it). */
  ms: number
}

export interface SessionMeta {
  inputNames: string[]
  outputNames: string[]
  /** Shape of each input (`null` for a symbolic dimension), when the binding exposes it. */
  inputShapes: Record<string, (number | null)[]>
}

const config = workerData as WorkerConfig
let session: Promise<ort.InferenceSession> | undefined

/**
 * This worker's own copies of shared inputs: onnxruntime-node refuses tensors on a
 * SharedArrayBuffer, and copying into a reused buffer allocates nothing. A copy is taken per
 * request (a second request may arrive while the first waits for its turn to run).
 */
const copies = new BufferPool<ArrayBuffer>((bytes) => new ArrayBuffer(bytes), 4)

function ownCopy(x: Float32Array): Float32Array {
  const b = copies.take(x.length)
  b.set(x)
  return b
}

function open(): Promise<ort.InferenceSession> {
  const provider = config.provider === 'cpu' ? 'cpu' : { name: config.provider, deviceId: config.deviceId }
  session ??= ort.InferenceSession.create(config.path, {
    executionProviders: [provider] as ort.InferenceSession.ExecutionProviderConfig[],
    intraOpNumThreads: config.threads,
    graphOptimizationLevel: 'all',
    // Several sessions sharing the cores must not spin: waiting threads would steal them from each
    // other. One session alone on its cores may (faster hand-offs between its threads).
    extra: { session: { intra_op: { allow_spinning: config.spin ? '1' : '0' } } },
  })
  return session
}

function meta(s: ort.InferenceSession): SessionMeta {
  const inputShapes: Record<string, (number | null)[]> = {}
  const described = (s as unknown as { inputMetadata?: { name: string; shape?: (number | string)[] }[] }).inputMetadata
  for (const m of described ?? []) {
    if (m.shape) inputShapes[m.name] = m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : null))
  }
  return { inputNames: [...s.inputNames], outputNames: [...s.outputNames], inputShapes }
}

/** Requests take turns: one's batches all run before the next one's, so each times its own. */
let turn: Promise<unknown> = Promise.resolve()

/** Runs `x` (`dims[0]` rows) as batches of `batch` rows; the outputs of all, `[rows, classes]`. */
async function batches(s: ort.InferenceSession, req: ForwardRequest, x: Float32Array): Promise<{ data: Float32Array; dims: number[] }> {
  const [rows, ...rowShape] = req.dims as [number, ...number[]]
  const rowLen = x.length / rows
  let all: Float32Array | undefined
  let classes = 0
  for (let start = 0; start < rows; start += req.batch) {
    const n = Math.min(req.batch, rows - start)
    const input = n === rows ? x : x.subarray(start * rowLen, (start + n) * rowLen)
    const out = (await s.run({ [req.inputName]: new ort.Tensor('float32', input, [n, ...rowShape]) }, [req.outputName]))[req.outputName]
    if (out?.type !== 'float32') {
      throw new Error(`MODEL_OUTPUT|model.output|output '${req.outputName}' is ${out?.type ?? 'missing'}, expected float32`)
    }
    if (n === rows) return { data: out.data as Float32Array, dims: [...out.dims] }
    if (out.dims.length !== 2 || out.dims[0] !== n || (all && out.dims[1] !== classes)) {
      throw new Error(`MODEL_OUTPUT|model.output|expected [${n}, classes], got [${out.dims.join(', ')}]`)
    }
    classes = out.dims[1] as number
    all ??= new Float32Array(rows * classes)
    all.set(out.data as Float32Array, start * classes)
  }
  return { data: all!, dims: [rows, classes] }
}

export default async function run(req: ForwardRequest | MetaRequest): Promise<SessionMeta | ForwardResult> {
  if (Atomics.load(config.stop, 0) !== 0) throw new Error('CLOSED|model|the model is closed')
  const s = await open()
  if (req.kind === 'meta') return meta(s)
  const x = ownCopy(req.x)
  let start = 0
  const mine = turn.then(() => {
    start = performance.now()
    return batches(s, req, x)
  })
  turn = mine.catch(() => {})
  let out: { data: Float32Array; dims: number[] }
  try {
    out = await mine
  } finally {
    copies.give(x)
  }
  // The outputs are copied back (a few kB: moving onnxruntime's buffer cost the worker more than
  // the copy, 0.4 against 0.14 ms a batch on the small CNN).
  return { ...out, ms: performance.now() - start }
}
