// Image folders: PNGs decoded by sharp give the same numbers as the same pixels as an .npy array;
// class subfolders give the labels; preprocessing follows the spec; bad folders are one-line errors.
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import test from 'ava'
import sharp from 'sharp'
import { loadDemo, resultFromJSON } from 'xai-eval'

import { openImages } from '../src/io/images.js'

const run = promisify(execFile)
const cli = join(import.meta.dirname, '..', 'dist', 'cli.js')

function npy(descr: string, shape: number[], data: ArrayBufferView): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  header += `${' '.repeat((64 - ((11 + header.length) % 64)) % 64)}\n`
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 1
  head.writeUInt16LE(header.length, 8)
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
}

test('a folder of PNGs in class subfolders scores like the same pixels as .npy arrays', async (t) => {
  const demo = await loadDemo()
  const dir = mkdtempSync(join(tmpdir(), 'xai-eval-images-'))
  const n = 8
  // Class-major order, as the folder lists them; pixels quantised to 8 bits.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => demo.y[a]! - demo.y[b]! || a - b)
  const x = new Float32Array(n * 784)
  const a = new Float32Array(n * 784)
  const y = new BigInt64Array(n)
  for (const [k, i] of order.entries()) {
    const bytes = Uint8Array.from(demo.x.subarray(i * 784, (i + 1) * 784), (v) => Math.round(Math.min(1, Math.max(0, v)) * 255))
    x.set(
      Float32Array.from(bytes, (b) => b / 255),
      k * 784,
    )
    a.set(demo.attributions.occlusion!.subarray(i * 784, (i + 1) * 784), k * 784)
    y[k] = BigInt(demo.y[i]!)
    const cls = join(dir, 'images', String(demo.y[i]))
    mkdirSync(cls, { recursive: true })
    await sharp(Buffer.from(bytes), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toFile(join(cls, `${String(i).padStart(3, '0')}.png`))
  }
  writeFileSync(join(dir, 'x.npy'), npy('<f4', [n, 1, 28, 28], x))
  writeFileSync(join(dir, 'a.npy'), npy('<f4', [n, 1, 28, 28], a))
  writeFileSync(join(dir, 'y.npy'), npy('<i8', [n], y))
  const common = [
    '--model',
    demo.modelPath,
    '--a',
    `occlusion=${join(dir, 'a.npy')}`,
    '--metrics',
    'srg,deletion',
    '--set',
    'srg.featuresInStep=28',
    '--quiet',
  ]
  // Class folder names are sorted as text: with labels 0–3 the folder index equals the label.
  await run('node', [cli, 'evaluate', '--x', join(dir, 'images'), '--grayscale', ...common, '--out', join(dir, 'img')])
  await run('node', [cli, 'evaluate', '--x', join(dir, 'x.npy'), '--y', join(dir, 'y.npy'), ...common, '--out', join(dir, 'arr')])
  const scores = (out: string) =>
    JSON.parse(readFileSync(join(dir, out, 'results.json'), 'utf8')).metrics.map(
      (m: { results: { occlusion: unknown } }) => resultFromJSON(m.results.occlusion).scores,
    )
  t.deepEqual(scores('img'), scores('arr'))

  // A folder without class subfolders needs --y; a map folder needs one .npy per image.
  const e = (await t.throwsAsync(
    run('node', [cli, 'evaluate', '--x', join(dir, 'images', '0'), '--grayscale', ...common, '--out', join(dir, 'e')]),
  )) as {
    code: number
    stderr: string
  }
  t.is(e.code, 1)
  t.regex(e.stderr, /--y: .* has no class subfolders: give the labels as --y labels.npy/)
})

/** An 8-bit RGB image whose channels are planes a + b·x + c·y (pixel centres), rounded. */
function planes(width: number, height: number, coef: [number, number, number][]): Buffer {
  const out = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      coef.forEach(([a, b, c], ch) => {
        out[(y * width + x) * 3 + ch] = Math.round(a + b * x + c * y)
      })
    }
  }
  return out
}

test('resize, centre crop and mean/std match planes computed by hand (a symmetric resampling kernel keeps a plane a plane)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xai-eval-pre-'))
  const coef: [number, number, number][] = [
    [20, 3, 0],
    [200, 0, -2],
    [10, 1.5, 2],
  ]
  const [w, h] = [64, 48]
  await sharp(planes(w, h, coef), { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(join(dir, 'a.png'))
  writeFileSync(join(dir, 'y.npy'), npy('<i8', [1], new BigInt64Array([3n])))
  const mean = [0.485, 0.456, 0.406]
  const std = [0.229, 0.224, 0.225]
  // Shorter side 48 → 24 (scale 1/2: 64×48 → 32×24), then the centre 20×20 (left 6, top 2).
  const src = await openImages(dir, join(dir, 'y.npy'), {}, { resize: 24, crop: 20, mean, std })
  t.teardown(() => src.close())
  t.deepEqual(src.rowShape, [3, 20, 20])
  const { x, y } = await src.read(0, 1)
  t.deepEqual(Array.from(y), [3])
  // Output pixel (u, v) of the crop is resized pixel (u + 6, v + 2), whose centre is input
  // coordinate 2·(u + 6) + 0.5; the plane's value there, scaled and normalised.
  let checked = 0
  let worst = 0
  for (let ch = 0; ch < 3; ch++) {
    const [a, b, c] = coef[ch]!
    for (let v = 0; v < 20; v++) {
      for (let u = 0; u < 20; u++) {
        const [rx, ry] = [u + 6, v + 2]
        // Interior only: 3 resized pixels from the border (the kernel's reach at scale 1/2).
        if (rx < 3 || rx > 32 - 4 || ry < 3 || ry > 24 - 4) continue
        const want = ((a + b * (2 * rx + 0.5) + c * (2 * ry + 0.5)) / 255 - mean[ch]!) / std[ch]!
        const got = x[ch * 400 + v * 20 + u]!
        worst = Math.max(worst, Math.abs(got - want) * std[ch]! * 255)
        checked++
      }
    }
  }
  t.is(checked, 3 * 20 * 18)
  t.true(worst <= 1, `largest difference ${worst.toFixed(2)} grey levels`)
})

test('JPEG images (RGB and grey) decode to their pixels within JPEG loss; .jpeg and .jpg are both listed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xai-eval-jpeg-'))
  const [w, h] = [32, 32]
  const rgb = planes(w, h, [
    [40, 4, 1],
    [220, -2, -3],
    [60, 1, 3],
  ])
  mkdirSync(join(dir, 'rgb'))
  await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
    .toFile(join(dir, 'rgb', 'a.jpg'))
  await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
    .toFile(join(dir, 'rgb', 'b.jpeg'))
  writeFileSync(join(dir, 'y.npy'), npy('<i8', [2], new BigInt64Array([0n, 1n])))
  const src = await openImages(join(dir, 'rgb'), join(dir, 'y.npy'), {}, {})
  t.teardown(() => src.close())
  t.is(src.n, 2)
  const { x } = await src.read(0, 2)
  const diff = (plane: (i: number, ch: number) => number, channels: number, values: Float32Array) => {
    let worst = 0
    for (let ch = 0; ch < channels; ch++)
      for (let i = 0; i < w * h; i++) worst = Math.max(worst, Math.abs(values[ch * w * h + i]! * 255 - plane(i, ch)))
    return worst
  }
  for (const k of [0, 1]) {
    const worst = diff((i, ch) => rgb[i * 3 + ch]!, 3, x.subarray(k * 3 * w * h, (k + 1) * 3 * w * h))
    t.true(worst <= 4, `image ${k}: largest difference ${worst} grey levels`)
  }
  // A grey JPEG read with --grayscale: one channel.
  const grey = Buffer.from(Array.from({ length: w * h }, (_, i) => 30 + (i % w) * 5 + Math.floor(i / w) * 2))
  mkdirSync(join(dir, 'grey'))
  await sharp(grey, { raw: { width: w, height: h, channels: 1 } })
    .jpeg({ quality: 100 })
    .toFile(join(dir, 'grey', 'g.jpg'))
  writeFileSync(join(dir, 'y1.npy'), npy('<i8', [1], new BigInt64Array([2n])))
  const g = await openImages(join(dir, 'grey'), join(dir, 'y1.npy'), {}, { channels: 1 })
  t.teardown(() => g.close())
  t.deepEqual(g.rowShape, [1, h, w])
  const worst = diff((i) => grey[i]!, 1, (await g.read(0, 1)).x)
  t.true(worst <= 4, `grey: largest difference ${worst} grey levels`)
})
