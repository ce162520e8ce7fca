// Results and shards cross processes and queues as JSON. JSON has no typed arrays and no NaN or
// ±Infinity, so both are encoded explicitly: a typed array as its little-endian bytes in base64
// (exact, NaN payloads included, and 4–8× smaller than a list of numbers), a non-finite number as
// a tagged string. `decode(encode(v))` rebuilds `v` bit for bit.
import { XaiEvalError } from './errors.js'

const ARRAYS = {
  Float64Array,
  Float32Array,
  Int32Array,
  Uint32Array,
  Uint8Array,
} as const
type ArrayName = keyof typeof ARRAYS

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** A JSON-safe copy of `value`: typed arrays as `{ $array, base64 }`, NaN/±Infinity as `{ $number }`. */
export function encode(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : { $number: String(value) }
  if (value === null || typeof value !== 'object') return value
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor.name as ArrayName
    if (!(name in ARRAYS)) throw new XaiEvalError('INVALID_OPTION', 'value', `cannot serialise a ${name}`)
    if (!littleEndian) throw new XaiEvalError('INTERNAL', 'platform', 'serialisation assumes a little-endian platform')
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    return { $array: name, base64: bytes.toString('base64') }
  }
  if (Array.isArray(value)) return value.map(encode)
  // A class's own JSON form (a metric's `{ id, version, params }`); results' own toJSON is this function.
  const own = (value as { toJSON?: unknown }).toJSON
  if (typeof own === 'function' && !Object.hasOwn(value, 'toJSON')) return encode(own.call(value))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) if (v !== undefined && typeof v !== 'function') out[k] = encode(v)
  return out
}

/** Rebuilds what {@link encode} made (after `JSON.parse`). */
export function decode(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(decode)
  const o = value as Record<string, unknown>
  if (typeof o.$number === 'string' && Object.keys(o).length === 1) {
    const n = Number(o.$number)
    if (!Number.isNaN(n) || o.$number === 'NaN') return n
  }
  if (typeof o.$array === 'string' && typeof o.base64 === 'string') {
    const View = ARRAYS[o.$array as ArrayName]
    if (!View) throw new XaiEvalError('INVALID_OPTION', 'json', `unknown array type ${o.$array}`)
    const bytes = Buffer.from(o.base64, 'base64')
    if (bytes.byteLength % View.BYTES_PER_ELEMENT !== 0) {
      throw new XaiEvalError('INVALID_OPTION', 'json', `${o.$array} payload of ${bytes.byteLength} bytes is truncated`)
    }
    const copy = new Uint8Array(bytes.byteLength)
    copy.set(bytes)
    return new View(copy.buffer)
  }
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) out[k] = decode(v)
  return out
}

/** A stable text of a JSON-safe value (sorted keys), to compare parameters. */
export function canonical(value: unknown): string {
  return JSON.stringify(encode(value), (_, v) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  )
}
