// NumPy arrays (.npy, and .npz archives of them) read row range by row range, so a data set larger
// than memory streams through an evaluation: only the rows of the batches in flight are in memory.
// The .npy header is NumPy's documented format (a magic, a version, a Python-literal dict); the
// .npz container is a zip archive, read with yauzl (the maintained, random-access zip reader of the
// npm ecosystem). Stored (np.savez) members stream like .npy files; compressed ones
// (np.savez_compressed) are inflated whole into memory, since deflate has no random access.
import { type FileHandle, open } from 'node:fs/promises'

import yauzl from 'yauzl'

import { XaiEvalError } from '../errors.js'
import { describeValue } from '../options.js'

export interface NpyArray {
  shape: number[]
  /** The values: float arrays as Float32Array, integer and boolean arrays as Int32Array. */
  data: Float32Array | Int32Array
}

const MAGIC = '\x93NUMPY'

interface Dtype {
  kind: 'f' | 'i' | 'u' | 'b'
  size: number
  littleEndian: boolean
}

/** What the header says: where the values start and how they are laid out. */
export interface NpyHeader {
  dtype: Dtype
  descr: string
  fortranOrder: boolean
  shape: number[]
  /** Byte offset of the first value from the start of the .npy bytes. */
  dataOffset: number
}

const SUPPORTED = 'float16/32/64, int8/16/32/64, uint8/16/32 or bool'

function dtypeOf(descr: string, fail: (why: string) => never): Dtype {
  const m = /^([<>|=])([fiub])(\d+)$/.exec(descr)
  if (!m) return fail(`dtype '${descr}' (expected ${SUPPORTED})`)
  const [, order, kind, sizeText] = m
  const size = Number(sizeText)
  const ok = kind === 'f' ? [2, 4, 8] : kind === 'i' ? [1, 2, 4, 8] : kind === 'u' ? [1, 2, 4] : [1]
  if (!ok.includes(size)) fail(`dtype '${descr}' (expected ${SUPPORTED})`)
  return { kind: kind as Dtype['kind'], size, littleEndian: order !== '>' }
}

/** Parses the header at the start of `bytes` (which may hold only the header); `what` names the file in errors. */
export function parseNpyHeader(bytes: Uint8Array, arg: string, what: string): NpyHeader {
  const fail = (why: string): never => {
    throw new XaiEvalError('INVALID_OPTION', arg, `${what} is not a readable .npy array: ${why}`)
  }
  if (bytes.length < 10 || String.fromCharCode(...bytes.subarray(0, 6)) !== MAGIC) fail('bad magic (not a .npy file)')
  const major = bytes[6]!
  if (major < 1 || major > 3) fail(`unknown format version ${major}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (major > 1 && bytes.length < 12) fail('truncated header')
  const [headerLen, start] = major === 1 ? [view.getUint16(8, true), 10] : [view.getUint32(8, true), 12]
  if (start + headerLen > bytes.length) fail(`truncated header (${headerLen} bytes announced, ${bytes.length - start} present)`)
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen))
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? fail('no descr in the header')
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1] ?? fail('no fortran_order in the header')
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? fail('no shape in the header')
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (/^\d+L?$/.test(s) ? Number.parseInt(s, 10) : fail(`shape entry '${s}'`)))
  return { dtype: dtypeOf(descr, fail), descr, fortranOrder: fortran === 'True', shape, dataOffset: start + headerLen }
}

/** Reads `length` bytes at `position` of the array's bytes. */
type ReadAt = (position: number, length: number) => Promise<Uint8Array>

/** Converts raw values to float32 (floats) or int32 (integers), byte order handled. */
function convert(raw: Uint8Array, d: Dtype, count: number, fail: (why: string) => never): Float32Array | Int32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  const le = d.littleEndian
  if (d.kind === 'f') {
    const out = new Float32Array(count)
    if (d.size === 4) for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, le)
    else if (d.size === 8) for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, le)
    else for (let i = 0; i < count; i++) out[i] = half(view.getUint16(2 * i, le))
    return out
  }
  const out = new Int32Array(count)
  for (let i = 0; i < count; i++) {
    const at = i * d.size
    let v: number
    if (d.size === 8) {
      const b = d.kind === 'i' ? view.getBigInt64(at, le) : view.getBigUint64(at, le)
      if (b < -0x80000000n || b > 0x7fffffffn) return fail(`value ${b} does not fit a 32-bit integer label`)
      v = Number(b)
    } else if (d.size === 4) v = d.kind === 'i' ? view.getInt32(at, le) : view.getUint32(at, le)
    else if (d.size === 2) v = d.kind === 'i' ? view.getInt16(at, le) : view.getUint16(at, le)
    else v = d.kind === 'i' ? view.getInt8(at) : view.getUint8(at)
    if (v > 0x7fffffff) return fail(`value ${v} does not fit a 32-bit integer label`)
    out[i] = v
  }
  return out
}

/** IEEE 754 half precision to a number. */
function half(h: number): number {
  const e = (h >> 10) & 0x1f
  const f = h & 0x3ff
  const s = h & 0x8000 ? -1 : 1
  if (e === 0) return s * 2 ** -14 * (f / 1024)
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY
  return s * 2 ** (e - 15) * (1 + f / 1024)
}

/** An array on disk whose leading-axis rows are read on demand. */
export class NpySource {
  /** Elements per row (the product of the shape after the first axis). */
  readonly rowSize: number

  private constructor(
    readonly header: NpyHeader,
    private readonly readAt: ReadAt,
    private readonly closeFn: () => Promise<void>,
    /** Bytes of values the file holds. */
    available: number,
    /** Option and file name, for errors. */
    readonly arg: string,
    readonly what: string,
  ) {
    this.rowSize = header.shape.slice(1).reduce((p, d) => p * d, 1)
    const need = this.rows * this.rowSize * header.dtype.size
    if (available < need) this.fail(`truncated: ${need} bytes of values expected, ${available} present`)
  }

  get shape(): number[] {
    return this.header.shape
  }

  /** Length of the first axis (1 for a 0-d array). */
  get rows(): number {
    return this.header.shape[0] ?? 1
  }

  private fail(why: string): never {
    throw new XaiEvalError('INVALID_OPTION', this.arg, `${this.what}: ${why}`)
  }

  /**
   * Opens `spec`: `file.npy`, or `file.npz:key` (the member `key.npy`; the key may be left out when
   * the archive holds one array). `arg` names the command-line option in errors.
   */
  static async open(spec: string, arg: string): Promise<NpySource> {
    if (typeof arg !== 'string') throw new XaiEvalError('INVALID_OPTION', 'arg', 'expected the name of the option, a string')
    if (typeof spec !== 'string') throw new XaiEvalError('INVALID_OPTION', arg, 'expected a file path (FILE.npy or FILE.npz:KEY)')
    const m = /^(.*\.npz)(?::([^:]*))?$/i.exec(spec)
    if (m) return openNpz(m[1]!, m[2], arg)
    let fh: FileHandle
    try {
      fh = await open(spec, 'r')
    } catch (e) {
      throw new XaiEvalError('INVALID_OPTION', arg, `cannot read ${spec}: ${(e as Error).message}`, { cause: e })
    }
    try {
      const size = (await fh.stat()).size
      const readAt: ReadAt = async (position, length) => {
        const buf = new Uint8Array(length)
        const { bytesRead } = await fh.read(buf, 0, length, position)
        return buf.subarray(0, bytesRead)
      }
      const header = parseNpyHeader(await readAt(0, Math.min(size, 65_536 + 12)), arg, spec)
      return new NpySource(header, readAt, () => fh.close(), size - header.dataOffset, arg, spec)
    } catch (e) {
      await fh.close()
      throw e
    }
  }

  /** An array behind `readAt` (e.g. a stored .npz member). */
  static fromReader(
    header: NpyHeader,
    readAt: ReadAt,
    close: () => Promise<void>,
    available: number,
    arg: string,
    what: string,
  ): NpySource {
    return new NpySource(header, readAt, close, available, arg, what)
  }

  /** An array held in memory (e.g. an inflated .npz member). */
  static fromBytes(bytes: Uint8Array, arg: string, what: string): NpySource {
    if (typeof arg !== 'string' || typeof what !== 'string')
      throw new XaiEvalError('INVALID_OPTION', 'arg', 'expected option and file names, strings')
    if (!(bytes instanceof Uint8Array)) throw new XaiEvalError('INVALID_OPTION', arg, 'expected the bytes of a .npy file (a Uint8Array)')
    const header = parseNpyHeader(bytes, arg, what)
    const readAt: ReadAt = async (position, length) => bytes.subarray(position, position + length)
    return new NpySource(header, readAt, async () => {}, bytes.length - header.dataOffset, arg, what)
  }

  /** Rows `[start, end)` as float32 (floats) or int32 (integers and booleans), C order. */
  async readRows(start: number, end: number): Promise<Float32Array | Int32Array> {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > this.rows) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'rows',
        `expected 0 ≤ start ≤ end ≤ ${this.rows}, got ${describeValue(start)}, ${describeValue(end)}`,
      )
    }
    const { dtype, dataOffset, fortranOrder } = this.header
    const count = (end - start) * this.rowSize
    const fail = (why: string) => this.fail(why)
    if (!fortranOrder || this.rowSize === 1) {
      const raw = await this.readAt(dataOffset + start * this.rowSize * dtype.size, count * dtype.size)
      if (raw.length < count * dtype.size) fail('truncated while reading')
      return convert(raw, dtype, count, fail)
    }
    // Fortran order: the first axis varies fastest, so each element of a row is a run of `rows`
    // values; read rows [start, end) of every run and transpose the rest of the axes to C order.
    const rest = this.header.shape.slice(1)
    const k = end - start
    if (count === 0) return dtype.kind === 'f' ? new Float32Array(0) : new Int32Array(0)
    const strides = rest.map((_, i) => rest.slice(i + 1).reduce((p, d) => p * d, 1))
    let result: Float32Array | Int32Array | undefined
    for (let j = 0; j < this.rowSize; j++) {
      const raw = await this.readAt(dataOffset + (j * this.rows + start) * dtype.size, k * dtype.size)
      if (raw.length < k * dtype.size) fail('truncated while reading')
      const run = convert(raw, dtype, k, fail)
      result ??= run instanceof Float32Array ? new Float32Array(count) : new Int32Array(count)
      // j is the Fortran index of the rest axes; its C index:
      let f = j
      let c = 0
      for (let i = 0; i < rest.length; i++) {
        c += (f % rest[i]!) * strides[i]!
        f = Math.floor(f / rest[i]!)
      }
      for (let r = 0; r < k; r++) result[r * this.rowSize + c] = run[r]!
    }
    return result!
  }

  /** The whole array. */
  async readAll(): Promise<NpyArray> {
    return { shape: this.shape, data: await this.readRows(0, this.rows) }
  }

  close(): Promise<void> {
    return this.closeFn()
  }
}

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true, autoClose: false }, (err, zip) => (err ? reject(err) : resolve(zip))),
  )
}

async function openNpz(path: string, key: string | undefined, arg: string): Promise<NpySource> {
  let zip: yauzl.ZipFile
  let keepOpen = false
  try {
    zip = await openZip(path)
  } catch (e) {
    throw new XaiEvalError('INVALID_OPTION', arg, `cannot read ${path} as an .npz archive: ${(e as Error).message}`, { cause: e })
  }
  try {
    const entries: yauzl.Entry[] = await new Promise((resolve, reject) => {
      const list: yauzl.Entry[] = []
      zip.on('entry', (e: yauzl.Entry) => {
        list.push(e)
        zip.readEntry()
      })
      zip.on('end', () => resolve(list))
      zip.on('error', reject)
      zip.readEntry()
    })
    const keys = entries.map((e) => e.fileName.replace(/\.npy$/, ''))
    if (key === undefined && keys.length !== 1) {
      throw new XaiEvalError('INVALID_OPTION', arg, `${path} holds ${keys.length} arrays (${keys.join(', ')}): name one as ${path}:KEY`)
    }
    const i = keys.indexOf(key ?? keys[0]!)
    if (i < 0) throw new XaiEvalError('INVALID_OPTION', arg, `${path} has no array '${key}'; it holds ${keys.join(', ') || 'none'}`)
    const entry = entries[i]!
    const what = `${path}:${keys[i]}`
    const range = (start?: number, end?: number) =>
      new Promise<Uint8Array>((resolve, reject) =>
        zip.openReadStream(entry, start === undefined ? {} : { start, end }, (err, stream) => {
          if (err) return reject(err)
          const parts: Buffer[] = []
          stream.on('data', (b: Buffer) => parts.push(b))
          stream.on('end', () => resolve(Buffer.concat(parts)))
          stream.on('error', reject)
        }),
      ).catch((e: unknown) => {
        throw new XaiEvalError('INVALID_OPTION', arg, `${what}: corrupt archive member: ${(e as Error).message}`, { cause: e })
      })
    if (entry.compressionMethod === 0) {
      // np.savez stores members uncompressed: read row ranges straight from the archive.
      const size = entry.uncompressedSize
      const readAt: ReadAt = (position, length) =>
        position >= size ? Promise.resolve(new Uint8Array(0)) : range(position, Math.min(size, position + length))
      const header = parseNpyHeader(await readAt(0, Math.min(size, 65_536 + 12)), arg, what)
      keepOpen = true
      return NpySource.fromReader(header, readAt, async () => zip.close(), size - header.dataOffset, arg, what)
    }
    const bytes = await range()
    return NpySource.fromBytes(bytes, arg, what)
  } finally {
    if (!keepOpen) zip.close()
  }
}

/** Reads a whole `.npy` (or `.npz:key`); `arg` names the option it came from in errors. */
export async function readNpy(spec: string, arg: string): Promise<NpyArray> {
  const src = await NpySource.open(spec, arg)
  try {
    return await src.readAll()
  } finally {
    await src.close()
  }
}
