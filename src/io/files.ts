// A data set given as array files (x, y and one attribution file per method), checked against each
// other and against the model before anything runs, and read chunk by chunk. Channel-last (NHWC)
// inputs are transposed to the metrics' NCHW per chunk, and the model is wrapped so that it still
// receives NHWC rows.
import { XaiEvalError } from '../errors.js'
import type { Source } from '../job.js'
import type { Model } from '../models/model.js'
import { NpySource } from './npy.js'

export type Layout = 'nchw' | 'nhwc'

/** `[N, C, H, W]` ↔ `[N, H, W, C]` of `rows` samples. */
function transpose(v: Float32Array, rows: number, [c, h, w]: readonly number[], toNchw: boolean): Float32Array {
  const out = new Float32Array(v.length)
  const plane = h! * w!
  for (let n = 0; n < rows; n++) {
    const base = n * c! * plane
    for (let ch = 0; ch < c!; ch++) {
      for (let p = 0; p < plane; p++) {
        if (toNchw) out[base + ch * plane + p] = v[base + p * c! + ch]!
        else out[base + p * c! + ch] = v[base + ch * plane + p]!
      }
    }
  }
  return out
}

const isChannels = (d: number) => d === 1 || d === 3 || d === 4

/**
 * The layout of `x` (`[N, d1, d2, d3]`): the given one, else the model's input shape when it
 * decides it, else the place of the only plausible channel axis (1, 3 or 4 long). Ambiguous
 * shapes are refused rather than guessed.
 */
export function detectLayout(
  xShape: readonly number[],
  modelInput: readonly (number | null)[] | undefined,
  given: Layout | undefined,
): Layout {
  const [, d1, d2, d3] = xShape as [number, number, number, number]
  const fits = (want: readonly number[]) =>
    modelInput !== undefined && modelInput.length === 4 && want.every((d, i) => modelInput[i + 1] === null || modelInput[i + 1] === d)
  if (given) {
    if (modelInput && modelInput.length === 4 && !fits([d1, d2, d3])) {
      throw new XaiEvalError(
        'SHAPE_MISMATCH',
        'x',
        `inputs [${xShape.join(', ')}] do not match the model's input [${modelInput.map((d) => d ?? '?').join(', ')}]`,
      )
    }
    return given
  }
  if (modelInput && modelInput.length === 4) {
    if (!fits([d1, d2, d3])) {
      throw new XaiEvalError(
        'SHAPE_MISMATCH',
        'x',
        `inputs [${xShape.join(', ')}] do not match the model's input [${modelInput.map((d) => d ?? '?').join(', ')}]`,
      )
    }
  }
  const first = isChannels(d1) && !isChannels(d3)
  const last = isChannels(d3) && !isChannels(d1)
  if (first) return 'nchw'
  if (last) return 'nhwc'
  throw new XaiEvalError(
    'INVALID_OPTION',
    'layout',
    `cannot tell the channel axis of inputs [${xShape.join(', ')}]: give --layout nchw or --layout nhwc`,
  )
}

/** A model fed NCHW rows by the metrics that runs on NHWC inputs. */
export function channelsLastModel(inner: Model): Model {
  return {
    get output() {
      return inner.output
    },
    get rawOutput() {
      return inner.rawOutput
    },
    get maxBatchSize() {
      return inner.maxBatchSize
    },
    get concurrency() {
      return inner.concurrency
    },
    get stats() {
      return inner.stats
    },
    forward: (x, rows, [c, h, w]) => inner.forward(transpose(x, rows, [c!, h!, w!], false), rows, [h!, w!, c!]),
    batchSize: inner.batchSize ? ([c, h, w]) => inner.batchSize!([h!, w!, c!]) : undefined,
    rowsPerCall: inner.rowsPerCall ? ([c, h, w]) => inner.rowsPerCall!([h!, w!, c!]) : undefined,
    close: () => inner.close(),
  }
}

export interface FileSourceSpec {
  x: string
  y: string
  /** Method name → file (`.npy` or `.npz:key`). */
  a: Record<string, string>
}

/** Opens and cross-checks the files; the caller closes the source. */
export async function openFiles(
  spec: FileSourceSpec,
  modelInput: readonly (number | null)[] | undefined,
  layout: Layout | undefined,
): Promise<Source & { layout: Layout; xShape: number[]; close(): Promise<void> }> {
  const opened: NpySource[] = []
  const open = async (file: string, arg: string) => {
    const s = await NpySource.open(file, arg)
    opened.push(s)
    return s
  }
  try {
    const x = await open(spec.x, 'x')
    const y = await open(spec.y, 'y')
    const a: Record<string, NpySource> = {}
    for (const [m, f] of Object.entries(spec.a)) a[m] = await open(f, `a ${m}`)
    if (x.shape.length !== 4) {
      throw new XaiEvalError('SHAPE_MISMATCH', 'x', `${spec.x}: expected [N, C, H, W] or [N, H, W, C], got [${x.shape.join(', ')}]`)
    }
    if (x.header.kind !== 'f') throw new XaiEvalError('INVALID_OPTION', 'x', `${spec.x}: expected a float array, got ${x.header.descr}`)
    const n = x.rows
    if (y.shape.length !== 1 || y.rows !== n) {
      throw new XaiEvalError('SHAPE_MISMATCH', 'y', `${spec.y}: expected [${n}] labels (one per sample of x), got [${y.shape.join(', ')}]`)
    }
    if (y.header.kind === 'f') throw new XaiEvalError('INVALID_OPTION', 'y', `${spec.y}: expected integer labels, got ${y.header.descr}`)
    const lay = detectLayout(x.shape, modelInput, layout)
    const [, d1, d2, d3] = x.shape as [number, number, number, number]
    const [c, h, w] = lay === 'nchw' ? [d1, d2, d3] : [d3, d1, d2]
    const aChannels: Record<string, number> = {}
    for (const [m, s] of Object.entries(a)) {
      const file = spec.a[m]
      if (s.header.kind !== 'f')
        throw new XaiEvalError('INVALID_OPTION', `a ${m}`, `${file}: expected a float array, got ${s.header.descr}`)
      if (s.rows !== n) {
        throw new XaiEvalError('SHAPE_MISMATCH', `a ${m}`, `${file}: holds ${s.rows} maps, x holds ${n} samples`)
      }
      const rest = s.shape.slice(1)
      const want =
        lay === 'nchw'
          ? [
              [c, h, w],
              [1, h, w],
              [h, w],
            ]
          : [
              [h, w, c],
              [h, w, 1],
              [h, w],
            ]
      const k = want.findIndex((v) => v.length === rest.length && v.every((d, i) => d === rest[i]))
      if (k < 0) {
        throw new XaiEvalError(
          'SHAPE_MISMATCH',
          `a ${m}`,
          `${file}: maps [${s.shape.join(', ')}] do not broadcast to inputs [${x.shape.join(', ')}] (expected [N, ${want
            .map((v) => v.join(', '))
            .join('] or [N, ')}])`,
        )
      }
      aChannels[m] = k === 0 ? c : 1
    }
    const rowShape: [number, number, number] = [c, h, w]
    return {
      n,
      rowShape,
      layout: lay,
      xShape: x.shape,
      methods: Object.keys(a),
      aChannels,
      async read(start, end) {
        const rows = end - start
        let xs = (await x.readRows(start, end)) as Float32Array
        if (lay === 'nhwc') xs = transpose(xs, rows, rowShape, true)
        const ys = Int32Array.from(await y.readRows(start, end))
        const maps: Record<string, Float32Array> = {}
        for (const [m, s] of Object.entries(a)) {
          let v = (await s.readRows(start, end)) as Float32Array
          if (lay === 'nhwc' && aChannels[m] === c && c > 1) v = transpose(v, rows, rowShape, true)
          maps[m] = v
        }
        return { x: xs, y: ys, a: maps }
      },
      close: async () => {
        await Promise.all(opened.map((s) => s.close()))
      },
    }
  } catch (e) {
    await Promise.all(opened.map((s) => s.close()))
    throw e
  }
}
