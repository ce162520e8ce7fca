// One ONNX Runtime session per worker thread: `session.run()` in onnxruntime-node 1.30 blocks the
// thread that calls it, so it must never be the main one.
import { workerData } from 'node:worker_threads'

import * as ort from 'onnxruntime-node'

export interface WorkerConfig {
  path: string
  provider: string
  deviceId: number
  threads: number
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
    // Several sessions share the cores: spin-waiting threads would steal them from each other.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
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

export default async function run(req: ForwardRequest | MetaRequest): Promise<SessionMeta | { data: Float32Array; dims: number[] }> {
  if (Atomics.load(config.stop, 0) !== 0) throw new Error('CLOSED|model|the model is closed')
  const s = await open()
  if (req.kind === 'meta') return meta(s)
  const feeds = { [req.inputName]: new ort.Tensor('float32', req.x, req.dims) }
  const out = (await s.run(feeds, [req.outputName]))[req.outputName]
  if (out?.type !== 'float32') {
    throw new Error(`MODEL_OUTPUT|model.output|output '${req.outputName}' is ${out?.type ?? 'missing'}, expected float32`)
  }
  return { data: out.data as Float32Array, dims: [...out.dims] }
}
