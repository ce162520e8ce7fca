// The array reader against files NumPy wrote (scripts/make_npy_fixtures.py): every dtype, byte
// order, memory order, format version and container gives NumPy's values, whole or by row range;
// broken files are one typed error naming the option and the file.
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'
import { NpySource, readNpy, XaiEvalError } from 'xai-eval'

const dir = join(import.meta.dirname, 'fixtures', 'npy')
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
  shape: number[]
  f4: number[]
  f2: number[]
  y: number[]
  yBool: number[]
}
const f32 = (v: number[]) => Array.from(Float32Array.from(v))

for (const [file, values] of [
  ['f4.npy', expected.f4],
  ['f8.npy', expected.f4],
  ['f2.npy', expected.f2],
  ['f4-big-endian.npy', expected.f4],
  ['f8-fortran.npy', expected.f4],
  ['f4-v2.npy', expected.f4],
  ['f4-v3.npy', expected.f4],
  ['fortran-compressed.npz:x', expected.f4],
  ['stored.npz:x', expected.f4],
  ['compressed.npz:x', expected.f4],
  ['single.npz', expected.f4],
] as const) {
  test(`${file}: NumPy's values, whole and by row range`, async (t) => {
    const whole = await readNpy(join(dir, file), 'x')
    t.deepEqual(whole.shape, expected.shape)
    t.true(whole.data instanceof Float32Array)
    t.deepEqual(Array.from(whole.data), f32(values as number[]))
    const src = await NpySource.open(join(dir, file), 'x')
    t.teardown(() => src.close())
    t.is(src.rows, 2)
    t.is(src.rowSize, 60)
    t.deepEqual(Array.from(await src.readRows(1, 2)), f32(values.slice(60) as number[]))
  })
}

for (const [file, values] of [
  ['y-i8.npy', expected.y],
  ['y-u1.npy', expected.y],
  ['y-i4-big-endian.npy', expected.y],
  ['y-i2-fortran.npy', expected.y],
  ['y-bool.npy', expected.yBool],
  ['stored.npz:y', expected.y],
  ['compressed.npz:y', expected.y],
] as const) {
  test(`${file}: integer labels`, async (t) => {
    const y = await readNpy(join(dir, file), 'y')
    t.true(y.data instanceof Int32Array)
    t.deepEqual(Array.from(y.data), values)
  })
}

test("a compressed member streams: row ranges forward, skipping, backward and concurrent give NumPy's values", async (t) => {
  // long.npz:x is [3000, 100] with x[i, j] = (i % 7) * 100 + j, ~1.2 MB inflated from 8 KB.
  const src = await NpySource.open(join(dir, 'long.npz:x'), 'x')
  t.teardown(() => src.close())
  t.deepEqual(src.shape, [3000, 100])
  const want = (start: number, end: number) =>
    Array.from({ length: (end - start) * 100 }, (_, k) => ((Math.floor(k / 100) + start) % 7) * 100 + (k % 100))
  for (const [start, end] of [
    [0, 250],
    [250, 700],
    [1500, 1501],
    [2990, 3000],
    [10, 20],
    [0, 3000],
  ] as const) {
    t.deepEqual(Array.from(await src.readRows(start, end)), want(start, end), `rows ${start}:${end}`)
  }
  const [a, b] = await Promise.all([src.readRows(2000, 2100), src.readRows(5, 9)])
  t.deepEqual(Array.from(a), want(2000, 2100))
  t.deepEqual(Array.from(b), want(5, 9))
})

const bytes = readFileSync(join(dir, 'f4.npy'))
const labels = readFileSync(join(dir, 'y-i8.npy'))
const bigLabel = Buffer.from(labels)
bigLabel.writeBigInt64LE(2n ** 40n, labels.length - 16)
const tmp = (name: string, b: Uint8Array) => {
  const p = join(tmpdir(), `xai-eval-npy-${process.pid}-${name}`)
  writeFileSync(p, b)
  return p
}

for (const [name, b, why] of [
  ['truncated.npy', bytes.subarray(0, bytes.length - 4), /truncated: 480 bytes of values expected, 476 present/],
  ['header-cut.npy', bytes.subarray(0, 40), /truncated header/],
  ['magic.npy', Buffer.from('PK\x03\x04 not numpy at all'), /bad magic/],
  ['v2-ten-bytes.npy', Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0, 0]), /truncated header/],
  ['version.npy', Buffer.concat([bytes.subarray(0, 6), Buffer.from([9]), bytes.subarray(7)]), /unknown format version \(9, 0\)/],
  ['dtype.npy', Buffer.from(bytes.toString('latin1').replace("'<f4'", "'<c8'"), 'latin1'), /dtype '<c8'/],
  ['big-label.npy', bigLabel, /: value 1099511627776 does not fit a 32-bit integer label$/],
] as const) {
  test(`${name}: one typed error naming the option and the file`, async (t) => {
    const path = tmp(name, b)
    const e = await t.throwsAsync(readNpy(path, 'a gradient'), { instanceOf: XaiEvalError })
    t.is(e?.arg, 'a gradient')
    t.regex(e!.message, why)
    t.true(e!.message.includes(path))
    t.false(e!.message.includes('\n'))
  })
}

for (const [file, why] of [
  ['short-member.npz:x', /short-member\.npz:x: truncated: 480 bytes of values expected, 476 present/],
  ['cut-stream.npz:x', /cut-stream\.npz:x: corrupt archive member: /],
] as const) {
  test(`${file}: a broken compressed member is one typed error naming the archive and the key`, async (t) => {
    const e = await t.throwsAsync(readNpy(join(dir, file), 'x'), { instanceOf: XaiEvalError })
    t.is(e?.arg, 'x')
    t.regex(e!.message, why)
    t.false(e!.message.includes('\n'))
  })
}

test('a header longer than the first 4 KiB read is read again in full', async (t) => {
  // f4.npy's header dict padded to 6000 bytes, as a version-2 file (32-bit header length).
  const start = 10 + bytes.readUInt16LE(8)
  const dict = `${bytes.subarray(10, start).toString('latin1').trimEnd()}${' '.repeat(6000)}`
  const head = Buffer.alloc(12)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 2
  head.writeUInt32LE(dict.length + 1, 8)
  const path = tmp('long-header.npy', Buffer.concat([head, Buffer.from(`${dict}\n`, 'latin1'), bytes.subarray(start)]))
  const whole = await readNpy(path, 'x')
  t.deepEqual(whole.shape, expected.shape)
  t.deepEqual(Array.from(whole.data), f32(expected.f4))
})

test('.npz: a missing key names the keys there are; several arrays need a key; a corrupt archive is typed', async (t) => {
  const missing = await t.throwsAsync(readNpy(join(dir, 'stored.npz:z'), 'x'), { instanceOf: XaiEvalError })
  t.regex(missing!.message, /has no array 'z'; it holds x, y/)
  const which = await t.throwsAsync(readNpy(join(dir, 'stored.npz'), 'x'), { instanceOf: XaiEvalError })
  t.regex(which!.message, /holds 2 arrays \(x, y\): name one/)
  const corrupt = tmp('corrupt.npz', readFileSync(join(dir, 'stored.npz')).subarray(0, 300))
  await t.throwsAsync(readNpy(`${corrupt}:x`, 'x'), { instanceOf: XaiEvalError })
  await t.throwsAsync(readNpy('/nonexistent/x.npy', 'x'), { instanceOf: XaiEvalError, message: /cannot read \/nonexistent\/x.npy/ })
})
