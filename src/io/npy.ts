// NumPy arrays (.npy, and .npz archives of them) read row range by row range, so a data set larger
// than memory streams through an evaluation: only the rows of the batches in flight are in memory.
// The format is handled by the Rust crate npyz in the core (`NpyLayout`: header, dtypes, byte
// order, Fortran order), the .npz container by yauzl (the maintained zip reader of the npm
// ecosystem); this file only moves bytes. Stored (np.savez) members are read by range like .npy
// files; compressed (np.savez_compressed) members are inflated as a stream that is read forward
// from the start, never held whole.
import { type FileHandle, open } from 'node:fs/promises'
import type { Readable } from 'node:stream'

import yauzl from 'yauzl'

import { fromNative, XaiEvalError } from '../errors.js'
import { NpyLayout } from '../native.js'
import { describeValue } from '../options.js'

export interface NpyArray {
  shape: number[]
  /** The values: float arrays as Float32Array, integer and boolean arrays as Int32Array. */
  data: Float32Array | Int32Array
}

/** What the header says: the element type, the layout and where the values start. */
export interface NpyHeader {
  /** The dtype as NumPy writes it, e.g. `<f4`, `>i8`, `|b1`. */
  descr: string
  /** NumPy's kind: float, signed or unsigned integer, boolean. */
  kind: 'f' | 'i' | 'u' | 'b'
  itemSize: number
  fortranOrder: boolean
  shape: number[]
  /** Byte offset of the first value from the start of the .npy bytes. */
  dataOffset: number
}

/** Bytes read for the header first, then at most (NumPy itself refuses headers over 10 000 bytes). */
const HEADER_FIRST = 4096
const HEADER_BYTES = 65_536 + 12

/** Where the bytes of one .npy come from. */
interface Bytes {
  /** Total length. */
  size: number
  /** Fills `target` from `position` on; resolves to the bytes read (fewer at the end). */
  readInto(target: Uint8Array, position: number): Promise<number>
  close(): Promise<void>
}

/** The message of a native error without the argument prefix the core puts on it. */
function reason(e: unknown): string {
  const typed = fromNative(e)
  return typed instanceof Error ? typed.message.replace(/^npy: `npy`: /, '') : String(typed)
}

/** An array on disk whose leading-axis rows are read on demand. */
export class NpySource {
  readonly header: NpyHeader
  /** Elements per row (the product of the shape after the first axis). */
  readonly rowSize: number
  /** Length of the first axis (1 for a 0-d array). */
  readonly rows: number

  private constructor(
    private readonly layout: InstanceType<typeof NpyLayout>,
    private readonly bytes: Bytes,
    /** Option and file name, for errors. */
    readonly arg: string,
    readonly what: string,
  ) {
    const l = layout
    this.header = {
      descr: l.descr,
      kind: l.kind,
      itemSize: l.itemSize,
      fortranOrder: l.fortranOrder,
      shape: l.shape,
      dataOffset: l.dataOffset,
    }
    this.rows = l.rows
    this.rowSize = l.rowSize
    const need = this.rows * this.rowSize * l.itemSize
    const available = bytes.size - l.dataOffset
    if (available < need) this.fail(`truncated: ${need} bytes of values expected, ${available} present`)
  }

  get shape(): number[] {
    return this.header.shape
  }

  private fail(why: string): never {
    throw new XaiEvalError('INVALID_OPTION', this.arg, `${this.what}: ${why}`)
  }

  /**
   * Parses the header of `bytes` and checks that the values are all there. The first 4 KiB hold
   * any header NumPy writes in practice (64–128 bytes); a longer one is read again in full.
   */
  private static async over(bytes: Bytes, arg: string, what: string): Promise<NpySource> {
    let layout: InstanceType<typeof NpyLayout> | undefined
    for (const want of [HEADER_FIRST, HEADER_BYTES]) {
      const prefix = new Uint8Array(Math.min(bytes.size, want))
      const got = await bytes.readInto(prefix, 0)
      const whole = got >= bytes.size
      try {
        layout = NpyLayout.parse(prefix.subarray(0, got), whole)
        break
      } catch (e) {
        if (whole || want === HEADER_BYTES) {
          throw new XaiEvalError('INVALID_OPTION', arg, `${what} is not a readable .npy array: ${reason(e)}`, { cause: e })
        }
      }
    }
    return new NpySource(layout!, bytes, arg, what)
  }

  /**
   * Opens `spec`: `file.npy`, or `file.npz:key` (the member `key.npy`; the key may be left out when
   * the archive holds one array). `arg` names the command-line option in errors.
   */
  static async open(spec: string, arg: string): Promise<NpySource> {
    if (typeof arg !== 'string') throw new XaiEvalError('INVALID_OPTION', 'arg', 'expected the name of the option, a string')
    if (typeof spec !== 'string') throw new XaiEvalError('INVALID_OPTION', arg, 'expected a file path (FILE.npy or FILE.npz:KEY)')
    const m = /^(.*\.npz)(?::([^:]*))?$/i.exec(spec)
    if (m) return NpySource.openNpz(m[1]!, m[2], arg)
    let fh: FileHandle
    try {
      fh = await open(spec, 'r')
    } catch (e) {
      throw new XaiEvalError('INVALID_OPTION', arg, `cannot read ${spec}: ${(e as Error).message}`, { cause: e })
    }
    try {
      const bytes: Bytes = {
        size: (await fh.stat()).size,
        readInto: async (target, position) => {
          let done = 0
          while (done < target.length) {
            const { bytesRead } = await fh.read(target, done, target.length - done, position + done)
            if (bytesRead === 0) break
            done += bytesRead
          }
          return done
        },
        close: () => fh.close(),
      }
      return await NpySource.over(bytes, arg, spec)
    } catch (e) {
      await fh.close()
      throw e
    }
  }

  /** An array held in memory. */
  static async fromBytes(bytes: Uint8Array, arg: string, what: string): Promise<NpySource> {
    if (typeof arg !== 'string' || typeof what !== 'string')
      throw new XaiEvalError('INVALID_OPTION', 'arg', 'expected option and file names, strings')
    if (!(bytes instanceof Uint8Array)) throw new XaiEvalError('INVALID_OPTION', arg, 'expected the bytes of a .npy file (a Uint8Array)')
    const source: Bytes = {
      size: bytes.length,
      readInto: async (target, position) => {
        const part = bytes.subarray(position, position + target.length)
        target.set(part)
        return part.length
      },
      close: async () => {},
    }
    return NpySource.over(source, arg, what)
  }

  /** Opens the member `key` of the archive at `path`. */
  private static async openNpz(path: string, key: string | undefined, arg: string): Promise<NpySource> {
    let zip: yauzl.ZipFile
    try {
      zip = await openZip(path)
    } catch (e) {
      throw new XaiEvalError('INVALID_OPTION', arg, `cannot read ${path} as an .npz archive: ${(e as Error).message}`, { cause: e })
    }
    let bytes: Bytes | undefined
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
      const corrupt = (e: unknown): never => {
        throw new XaiEvalError('INVALID_OPTION', arg, `${what}: corrupt archive member: ${(e as Error).message}`, { cause: e })
      }
      bytes = entry.compressionMethod === 0 ? storedMember(zip, entry, corrupt) : inflatedMember(zip, entry, corrupt)
      return await NpySource.over(bytes, arg, what)
    } catch (e) {
      if (bytes) await bytes.close()
      else zip.close()
      throw e
    }
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
    const { itemSize, dataOffset } = this.header
    const k = end - start
    const raw = new Uint8Array(k * this.rowSize * itemSize)
    if (!this.layout.strided) {
      if ((await this.bytes.readInto(raw, dataOffset + start * this.rowSize * itemSize)) < raw.length) this.fail('truncated while reading')
    } else {
      // Fortran order: the first axis varies fastest, so element j of every row is one run of
      // `rows` values; rows [start, end) of each run, concatenated, are the chunk in Fortran order.
      const run = k * itemSize
      for (let j = 0; j < this.rowSize && run > 0; j++) {
        const target = raw.subarray(j * run, (j + 1) * run)
        if ((await this.bytes.readInto(target, dataOffset + (j * this.rows + start) * itemSize)) < run) this.fail('truncated while reading')
      }
    }
    try {
      return await this.layout.decode(raw, k)
    } catch (e) {
      return this.fail(reason(e))
    }
  }

  /** The whole array. */
  async readAll(): Promise<NpyArray> {
    return { shape: this.shape, data: await this.readRows(0, this.rows) }
  }

  close(): Promise<void> {
    return this.bytes.close()
  }
}

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true, autoClose: false }, (err, zip) => (err ? reject(err) : resolve(zip))),
  )
}

/** A read stream of a member's bytes (inflated when compressed), from `start` to `end` when stored. */
function memberStream(zip: yauzl.ZipFile, entry: yauzl.Entry, range?: { start: number; end: number }): Promise<Readable> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, range ?? {}, (err, stream) => (err ? reject(err) : resolve(stream))))
}

/** The bytes of a stored member: read by range, straight from the archive. */
function storedMember(zip: yauzl.ZipFile, entry: yauzl.Entry, corrupt: (e: unknown) => never): Bytes {
  const size = entry.uncompressedSize
  return {
    size,
    readInto: async (target, position) => {
      const end = Math.min(size, position + target.length)
      if (end <= position) return 0
      let done = 0
      try {
        for await (const b of await memberStream(zip, entry, { start: position, end })) {
          target.set(b as Buffer, done)
          done += (b as Buffer).length
        }
      } catch (e) {
        corrupt(e)
      }
      return done
    },
    close: async () => zip.close(),
  }
}

/**
 * The bytes of a compressed member: one inflating stream read forward. A read behind the stream's
 * position starts it again from the beginning (deflate has no random access); a read ahead skips.
 * Memory: the target plus one inflated block the stream hands out (≤ 64 KiB), whatever the size.
 */
function inflatedMember(zip: yauzl.ZipFile, entry: yauzl.Entry, corrupt: (e: unknown) => never): Bytes {
  let blocks: AsyncIterator<Buffer> | undefined
  let stream: Readable | undefined
  /** Bytes of the member before `left`. */
  let position = 0
  /** Inflated bytes not handed out yet; they start at `position`. */
  let left: Uint8Array = new Uint8Array(0)
  let queue: Promise<unknown> = Promise.resolve()
  const restart = async () => {
    stream?.destroy()
    stream = await memberStream(zip, entry)
    blocks = stream[Symbol.asyncIterator]()
    position = 0
    left = new Uint8Array(0)
  }
  /** Fills `target` from `at` on, the stream positioned at or before `at`. */
  const fill = async (target: Uint8Array, at: number) => {
    let done = 0
    while (done < target.length) {
      if (left.length === 0) {
        const next = await blocks!.next()
        if (next.done) break
        left = next.value
      }
      const skip = Math.min(left.length, Math.max(0, at - position))
      if (skip > 0) {
        left = left.subarray(skip)
        position += skip
        continue
      }
      const take = Math.min(left.length, target.length - done)
      target.set(left.subarray(0, take), done)
      left = left.subarray(take)
      position += take
      done += take
    }
    return done
  }
  const readInto = async (target: Uint8Array, at: number) => {
    try {
      if (blocks === undefined || at < position) await restart()
      return await fill(target, at)
    } catch (e) {
      blocks = undefined // a failed stream is not read again: the next read starts over
      return corrupt(e)
    }
  }
  return {
    size: entry.uncompressedSize,
    // One read at a time: each moves the one stream.
    readInto: (target, at) => {
      const run = queue.then(() => readInto(target, at))
      queue = run.catch(() => {})
      return run
    },
    close: async () => {
      stream?.destroy()
      zip.close()
    },
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
