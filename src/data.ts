import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { XaiEvalError } from './errors.js'
import { describeValue } from './options.js'

/** Inputs, labels and attributions of a data set, as flat row-major arrays. */
export interface Dataset {
  /** Inputs, `[N, C, H, W]`. */
  x: Float32Array
  shape: readonly [number, number, number, number]
  /** One class index per sample. */
  y: ArrayLike<number>
  /** Attributions, `aShape` (default `shape`; `[N, 1, H, W]` is broadcast over channels). */
  a: Float32Array
  aShape?: readonly number[]
  /**
   * Superpixel labels `[N, H, W]`, `0…K_n − 1` per sample (IROF; default: its own SLIC segmentation).
   * Ignored by the other metrics.
   */
  segments?: Uint32Array | Int32Array
  /**
   * Ground-truth object masks `[N, H, W]` (nonzero = inside the object), for the localisation
   * metrics. Ignored by the others.
   */
  masks?: Uint8Array
  /**
   * Ground-truth bounding boxes `[N, 4]` as `x0, y0, x1, y1` pixel indices, half-open
   * (`x0 ≤ column < x1`, `y0 ≤ row < y1`), for the localisation metrics (instead of `masks`).
   */
  boxes?: ArrayLike<number>
}

/** The embedded demo: a small shape classifier, 64 held-out samples and five attribution methods. */
export interface DemoData {
  modelPath: string
  classes: string[]
  x: Float32Array
  shape: [number, number, number, number]
  y: Int32Array
  /** Object masks `[N, H, W]`, 1 inside the object. */
  masks: Uint8Array
  /** Attributions `[N, 1, H, W]` by method name. */
  attributions: Record<string, Float32Array>
}

export const DEMO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'data', 'demo')

interface Manifest {
  classes: string[]
  shape: [number, number, number, number]
  x: string
  y: string
  masks: string
  model: string
  attributions: Record<string, string>
}

async function typed<T>(path: string, View: new (b: ArrayBuffer) => T): Promise<T> {
  const bytes = await readFile(path)
  // Copy into a fresh, aligned buffer: Buffers from readFile may share a pooled, unaligned one.
  return new View(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer)
}

/** Loads the embedded demo data set (little-endian files described by `data/demo/manifest.json`). */
export async function loadDemo(dir = DEMO_DIR): Promise<DemoData> {
  if (typeof dir !== 'string') throw new XaiEvalError('INVALID_OPTION', 'dir', `expected a directory path, got ${describeValue(dir)}`)
  try {
    return await readDemo(dir)
  } catch (e) {
    throw new XaiEvalError('INVALID_OPTION', 'dir', `cannot read the demo data in ${dir}: ${(e as Error).message}`, { cause: e })
  }
}

async function readDemo(dir: string): Promise<DemoData> {
  const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest
  const attributions: Record<string, Float32Array> = {}
  for (const [method, file] of Object.entries(m.attributions)) {
    attributions[method] = await typed(join(dir, file), Float32Array)
  }
  return {
    modelPath: join(dir, m.model),
    classes: m.classes,
    shape: m.shape,
    x: await typed(join(dir, m.x), Float32Array),
    y: await typed(join(dir, m.y), Int32Array),
    masks: new Uint8Array(await readFile(join(dir, m.masks))),
    attributions,
  }
}
