// NumPy's .npy format (version 1–3, little-endian, C order): how Python users hand over arrays.
import { readFile } from 'node:fs/promises'

import { XaiEvalError } from '../errors.js'

export interface NpyArray {
  shape: number[]
  /** The values: float arrays as Float32Array, integer and boolean arrays as Int32Array. */
  data: Float32Array | Int32Array
}

const MAGIC = '\x93NUMPY'

/** Reads a `.npy` file; `arg` names the option it came from in errors. */
export async function readNpy(path: string, arg: string): Promise<NpyArray> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (e) {
    throw new XaiEvalError('INVALID_OPTION', arg, `cannot read ${path}: ${(e as Error).message}`, { cause: e })
  }
  return parseNpy(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), arg)
}

export function parseNpy(bytes: Uint8Array, arg: string): NpyArray {
  const fail = (why: string): never => {
    throw new XaiEvalError('INVALID_OPTION', arg, `not a supported .npy array: ${why}`)
  }
  if (bytes.length < 10 || String.fromCharCode(...bytes.subarray(0, 6)) !== MAGIC) fail('bad magic')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const major = bytes[6]!
  const [headerLen, start] = major === 1 ? [view.getUint16(8, true), 10] : [view.getUint32(8, true), 12]
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen))
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? fail('no descr')
  if (/'fortran_order':\s*True/.test(header)) fail('Fortran order (save a C-contiguous array)')
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? fail('no shape')
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number)
  const count = shape.reduce((p, d) => p * d, 1)
  const offset = start + headerLen
  const body = bytes.slice(offset).buffer
  const need = (size: number) => {
    if (body.byteLength < count * size) fail(`${count} values of ${size} bytes expected, file holds ${body.byteLength} bytes`)
  }
  switch (descr) {
    case '<f4':
      need(4)
      return { shape, data: new Float32Array(body, 0, count) }
    case '<f8':
      need(8)
      return { shape, data: Float32Array.from(new Float64Array(body, 0, count)) }
    case '<i4':
      need(4)
      return { shape, data: new Int32Array(body, 0, count) }
    case '<i8':
      need(8)
      return {
        shape,
        data: Int32Array.from(new BigInt64Array(body, 0, count), (v, i) =>
          v >= -0x80000000n && v <= 0x7fffffffn ? Number(v) : fail(`value ${v} at index ${i} does not fit a 32-bit integer`),
        ),
      }
    case '|u1':
    case '|b1':
      need(1)
      return { shape, data: Int32Array.from(new Uint8Array(body, 0, count)) }
    default:
      return fail(`dtype ${descr} (use float32/float64 for x and a, int32/int64 for y)`)
  }
}
