// ROAD's noisy linear imputation through the public API: ms per 3×224×224 image with 50 % of the
// pixels masked at random (ROAD's noise 0.01), min and median over many repetitions. One image
// per call runs on one core (one row is one task of the core's pool); a batch of 16 uses the whole
// pool. `node benches/run.js impute [repetitions]`; pin to one core with `taskset -c 1` on a
// shared machine. The Rust-only figures (CPU time, other masks) come from
// `cargo run --release --example impute_bench -p xai-eval-core`.
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { impute } from 'xai-eval'

import { randomArray, rng } from './common.js'

export const name = 'impute'

const [C, H, W] = [3, 224, 224]

function minMedian(times) {
  const s = [...times].sort((a, b) => a - b)
  return { min: s[0], median: s[Math.floor(s.length / 2)] }
}

const load = () =>
  os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')

export async function run(reps = Number(process.argv[3] ?? 200)) {
  const x = randomArray(C * H * W, 1)
  const r = rng(2)
  const mask = Uint8Array.from({ length: H * W }, () => (r() < 0.5 ? 1 : 0))
  const options = { shape: [C, H, W], noise: 0.01, seed: 0 }
  console.log(`noisy linear imputation, ${C}×${H}×${W}, 50 % masked at random, noise 0.01, ${reps} repetitions; load average ${load()}`)
  for (let i = 0; i < 10; i++) await impute.noisyLinear(x, mask, options) // warm-up
  const single = []
  for (let i = 0; i < reps; i++) {
    const t = performance.now()
    await impute.noisyLinear(x, mask, options)
    single.push(performance.now() - t)
  }
  const n = 16
  const xs = new Float32Array(n * x.length)
  const masks = new Uint8Array(n * mask.length)
  for (let i = 0; i < n; i++) {
    xs.set(x, i * x.length)
    masks.set(mask, i * mask.length)
  }
  const batch = []
  for (let i = 0; i < Math.max(5, Math.floor(reps / n)); i++) {
    const t = performance.now()
    await impute.noisyLinearBatch(xs, masks, { ...options, shape: [n, C, H, W] })
    batch.push((performance.now() - t) / n)
  }
  const s = minMedian(single)
  const b = minMedian(batch)
  console.log(`  one image per call (one core): min ${s.min.toFixed(2)} ms, median ${s.median.toFixed(2)} ms per image`)
  console.log(
    `  batches of ${n} (the whole pool, ${os.availableParallelism()} cores): min ${b.min.toFixed(2)} ms, median ${b.median.toFixed(2)} ms per image`,
  )
  console.log(`  load average after: ${load()}`)
  const result = { shape: [C, H, W], masked: 0.5, noise: 0.01, reps, single: s, batch: { rows: n, ...b }, load: os.loadavg() }
  writeFileSync(`benches/results/${name}.json`, `${JSON.stringify(result, null, 2)}\n`)
  return result
}
