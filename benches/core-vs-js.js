// Rust core vs a plain-JS implementation of the same work: stable ranking, building every SRG row
// (MIF/LIF per step, incrementally) in model-sized batches as the engine does, and the
// trapezoidal AUC of the curves.
import b from 'benny'

import { areas, fillRows, rankFeatures } from '../dist/native.js'
import { randomArray } from './common.js'

const N = 16,
  C = 3,
  H = 32,
  W = 32
const ROW = C * H * W
const F = ROW
const STEP = 16
const K = Math.ceil(F / STEP)
const x = randomArray(N * ROW, 1)
const a = randomArray(N * ROW, 2)
const baselines = new Float32Array(N * ROW)
const layout = { channels: C, pixels: H * W, attrChannels: C, unit: 'entry' }

// (sample, count, flags) of SRG's 2K rows per sample.
const triples = []
for (let s = 0; s < N; s++) {
  for (let k = 1; k < K; k++) triples.push(s, k * STEP, 0, s, k * STEP, 1)
  triples.push(s, F, 0, s, 0, 0)
}
const rows = Uint32Array.from(triples)
const R = rows.length / 3
const grid = Float64Array.from({ length: K + 1 }, (_, k) => Math.min(k * STEP, F) / F)
const curves = Float64Array.from({ length: 2 * N * (K + 1) }, (_, i) => Math.sin(i))
const BATCH = 64

function plainJs() {
  const orders = []
  for (let s = 0; s < N; s++) {
    const idx = Array.from({ length: F }, (_, i) => i)
    const as = a.subarray(s * F, (s + 1) * F)
    idx.sort((i, j) => as[j] - as[i] || i - j)
    orders.push(idx)
  }
  for (let start = 0; start < R; start += BATCH) {
    const n = Math.min(BATCH, R - start)
    const out = new Float32Array(n * ROW)
    const latest = new Map()
    for (let i = 0; i < n; i++) {
      const r = start + i
      const [s, count, flags] = [rows[3 * r], rows[3 * r + 1], rows[3 * r + 2]]
      const row = out.subarray(i * ROW, (i + 1) * ROW)
      const prev = latest.get(s * 4 + flags)
      let from = 0
      if (prev !== undefined && rows[3 * (start + prev) + 1] <= count) {
        row.set(out.subarray(prev * ROW, (prev + 1) * ROW))
        from = rows[3 * (start + prev) + 1]
      } else row.set(x.subarray(s * ROW, (s + 1) * ROW))
      const order = orders[s]
      for (let k = from; k < count; k++) {
        const f = flags & 1 ? order[F - 1 - k] : order[k]
        row[f] = baselines[s * ROW + f]
      }
      latest.set(s * 4 + flags, i)
    }
  }
  const auc = new Float64Array(2 * N)
  for (let c = 0; c < 2 * N; c++) {
    for (let k = 1; k <= K; k++) {
      auc[c] += 0.5 * (grid[k] - grid[k - 1]) * (curves[c * (K + 1) + k] + curves[c * (K + 1) + k - 1])
    }
  }
  return auc
}

async function rustCore() {
  const order = await rankFeatures(a, N, layout, false)
  for (let start = 0; start < R; start += BATCH) {
    const n = Math.min(BATCH, R - start)
    const out = new Float32Array(n * ROW)
    await fillRows(x, baselines, order, N, layout, rows.subarray(3 * start, 3 * (start + n)), out)
  }
  return areas(curves, grid, K + 1)
}

export const name = 'core-vs-js'
export const describe = `rank + ${R} SRG rows + AUC, ${N}×${C}×${H}×${W}, featuresInStep ${STEP}`

export function run() {
  return b.suite(
    `Rust core vs plain JS: ${describe}`,
    b.add('rust core (napi, off-thread)', async () => {
      await rustCore()
    }),
    b.add('plain JS', () => {
      plainJs()
    }),
    b.cycle(),
    b.complete(),
    b.save({ file: name, folder: 'benches/results', format: 'json', details: true }),
  )
}
