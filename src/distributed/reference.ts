// Data and models by reference: a worker loads them itself (never through Redis) and checks their
// content hash against the run's, so every shard of a run sees the same bytes. All loading goes
// through `loadReference`, so a new reader (e.g. chunked .npy/.npz) is one change here.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'

import { loadDemo } from '../data.js'
import { XaiEvalError } from '../errors.js'
import { readNpy } from '../io/npy.js'
import { parseOptions, z } from '../options.js'
import { canonical } from '../serial.js'

/**
 * Where a worker finds the data: the embedded demo (optionally tiled `repeat` times, for benches),
 * or `.npy` files by path (inputs `[N, C, H, W]`, labels `[N]`, one attribution file per method).
 * `magnitude` makes every attribution `|a|` (what soundness and completeness expect).
 */
export type DataReference =
  | { demo: true; dir?: string; repeat?: number; magnitude?: boolean }
  | { x: string; y: string; attributions: Record<string, string>; magnitude?: boolean }

export const dataReferenceSchema = z.union([
  z.strictObject({
    demo: z.literal(true),
    dir: z.string().optional(),
    repeat: z.int().min(1).max(10_000).optional(),
    magnitude: z.boolean().optional(),
  }),
  z.strictObject({
    x: z.string().min(1),
    y: z.string().min(1),
    attributions: z.record(z.string(), z.string().min(1)).refine((r) => Object.keys(r).length > 0, 'expected at least one method'),
    magnitude: z.boolean().optional(),
  }),
])

/** A data set with one attribution array per method, as a worker holds it. */
export interface LoadedData {
  x: Float32Array
  shape: [number, number, number, number]
  y: Int32Array
  attributions: Record<string, { a: Float32Array; aShape: number[] }>
  /** SHA-256 of the contents (shapes and bytes of x, y and every method's attributions). */
  hash: string
}

/** Loads the data a reference names and hashes its contents. */
export async function loadReference(reference: DataReference): Promise<LoadedData> {
  const ref = parseOptions(dataReferenceSchema, reference, 'data.reference')
  let data: Omit<LoadedData, 'hash'>
  if ('demo' in ref) {
    const d = await loadDemo(ref.dir)
    const [n, c, h, w] = d.shape
    const k = ref.repeat ?? 1
    const tile = <T extends Float32Array | Int32Array>(v: T): T => {
      const out = new (v.constructor as new (n: number) => T)(v.length * k)
      for (let i = 0; i < k; i++) out.set(v, i * v.length)
      return out
    }
    data = {
      x: tile(d.x),
      shape: [n * k, c, h, w],
      y: tile(d.y),
      attributions: Object.fromEntries(Object.entries(d.attributions).map(([m, a]) => [m, { a: tile(a), aShape: [n * k, 1, h, w] }])),
    }
  } else {
    const [x, y] = await Promise.all([readNpy(ref.x, 'data.reference.x'), readNpy(ref.y, 'data.reference.y')])
    if (!(x.data instanceof Float32Array)) throw new XaiEvalError('INVALID_OPTION', 'data.reference.x', 'expected a float array')
    if (x.shape.length !== 4) {
      throw new XaiEvalError('SHAPE_MISMATCH', 'data.reference.x', `expected [N, C, H, W], got [${x.shape.join(', ')}]`)
    }
    if (!(y.data instanceof Int32Array)) throw new XaiEvalError('INVALID_OPTION', 'data.reference.y', 'expected an integer array')
    const attributions: LoadedData['attributions'] = {}
    for (const [method, path] of Object.entries(ref.attributions)) {
      const a = await readNpy(path, `data.reference.attributions.${method}`)
      if (!(a.data instanceof Float32Array)) {
        throw new XaiEvalError('INVALID_OPTION', `data.reference.attributions.${method}`, 'expected a float array')
      }
      attributions[method] = { a: a.data, aShape: a.shape }
    }
    data = { x: x.data, shape: x.shape as LoadedData['shape'], y: y.data, attributions }
  }
  if (ref.magnitude) {
    for (const v of Object.values(data.attributions)) v.a = v.a.map(Math.abs)
  }
  return { ...data, hash: hashData(data) }
}

function hashData(d: Omit<LoadedData, 'hash'>): string {
  const h = createHash('sha256')
  const bytes = (v: ArrayBufferView) => h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
  h.update(canonical({ shape: d.shape, y: d.y.length }))
  bytes(d.x)
  bytes(d.y)
  for (const method of Object.keys(d.attributions).sort()) {
    const { a, aShape } = d.attributions[method]!
    h.update(canonical({ method, aShape }))
    bytes(a)
  }
  return h.digest('hex')
}

/** The content hash a run needs for its `data`: load the reference once where it is submitted. */
export async function hashReference(reference: DataReference): Promise<string> {
  return (await loadReference(reference)).hash
}

/** SHA-256 of a model file (what `model.hash` of a distributed run is). */
export async function hashFile(path: string, arg = 'model.path'): Promise<string> {
  if (typeof path !== 'string') throw new XaiEvalError('INVALID_OPTION', arg, 'expected a file path')
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex')
  } catch (e) {
    throw new XaiEvalError('MODEL_LOAD', arg, `cannot read ${path}: ${(e as Error).message}`, { cause: e })
  }
}
