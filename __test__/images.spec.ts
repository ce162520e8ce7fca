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
