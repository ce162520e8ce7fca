// One ONNX Runtime session per worker thread: `session.run()` in onnxruntime-node 1.30 blocks the
// thread that calls it, so it must never be the main one.
import { workerData } from 'node:worker_threads'

import * as ort from 'onnxruntime-node'
import { move, transferableSymbol, valueSymbol } from 'piscina'

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
}

export interface MetaRequest {
  kind: 'meta'
}

/** A forward pass's outputs, the input's buffer handed back for reuse, and the time the session took. */
export interface ForwardResult {
  data: Float32Array
  dims: number[]
  x: Float32Array
  /** Milliseconds inside this worker, from the request to the outputs: what batch sizing measures. */
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

export default async function run(req: ForwardRequest | MetaRequest): Promise<SessionMeta | ForwardResult> {
  if (Atomics.load(config.stop, 0) !== 0) throw new Error('CLOSED|model|the model is closed')
  const s = await open()
  if (req.kind === 'meta') return meta(s)
  const start = performance.now()
  const feeds = { [req.inputName]: new ort.Tensor('float32', req.x, req.dims) }
  const out = (await s.run(feeds, [req.outputName]))[req.outputName]
  if (out?.type !== 'float32') {
    throw new Error(`MODEL_OUTPUT|model.output|output '${req.outputName}' is ${out?.type ?? 'missing'}, expected float32`)
  }
  const data = out.data as Float32Array
  const result: ForwardResult = { data, dims: [...out.dims], x: req.x, ms: performance.now() - start }
  // Both buffers move back instead of being copied: the outputs, and the input for the next batch.
  const buffers = new Set([data.buffer, req.x.buffer])
  return move({ [transferableSymbol]: [...buffers], [valueSymbol]: result } as never) as never
}
