// Array reader bench: time and RSS to read a [N, 1, 28, 28] float32 array chunk by chunk (1024 rows)
// as C-order .npy, Fortran-order .npy, and the same two as compressed .npz members. Fortran order
// reads one run per element of a row (784 small reads per chunk); a compressed Fortran member
// re-inflates from the start for every chunk (deflate has no random access).
//
//   node benches/npy-read.js [N=10240] [DIR=/tmp/xai-eval-npy-read]
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

import { NpySource } from '../dist/index.js'
import { npyHeader, writeNpy, writeNpz } from './npy-files.js'

const N = Number(process.argv[2] ?? 10240)
const DIR = process.argv[3] ?? '/tmp/xai-eval-npy-read'
const ROW = 784
mkdirSync(DIR, { recursive: true })
const c = Float32Array.from({ length: N * ROW }, (_, i) => (i % 1000) / 7)
// Fortran order: element (n, k) at k·N + n.
const f = new Float32Array(N * ROW)
for (let n = 0; n < N; n++) for (let k = 0; k < ROW; k++) f[k * N + n] = c[n * ROW + k]
const bytes = (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)
const shape = [N, 1, 28, 28]
writeNpy(join(DIR, 'c.npy'), [npyHeader('<f4', shape), bytes(c)])
writeNpy(join(DIR, 'f.npy'), [npyHeader('<f4', shape, true), bytes(f)])
writeNpz(join(DIR, 'c.npz'), { x: [npyHeader('<f4', shape), bytes(c)] })
writeNpz(join(DIR, 'f.npz'), { x: [npyHeader('<f4', shape, true), bytes(f)] })

for (const spec of ['c.npy', 'f.npy', 'c.npz:x', 'f.npz:x']) {
  const src = await NpySource.open(join(DIR, spec), 'x')
  const t0 = performance.now()
  let same = true
  for (let i = 0; i < N; i += 1024) {
    const end = Math.min(N, i + 1024)
    const rows = await src.readRows(i, end)
    same &&= rows[0] === c[i * ROW] && rows.at(-1) === c[end * ROW - 1]
  }
  const ms = performance.now() - t0
  await src.close()
  console.log(
    JSON.stringify({
      file: spec,
      samples: N,
      ms: Math.round(ms),
      mbPerS: Math.round((N * ROW * 4) / 2 ** 20 / (ms / 1000)),
      same,
      rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
    }),
  )
}
