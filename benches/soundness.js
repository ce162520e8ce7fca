// Soundness on the demo set and on a ResNet-18-sized model: where the time goes. Imputation alone (a model that costs nothing),
// the bare forward passes alone (same rows, same batches, same pool), and end to end, where the
// engine imputes batch k+1 while the model runs batch k.
import { existsSync } from 'node:fs'
import os from 'node:os'
import b from 'benny'
import { FunctionModel, OnnxModel, Soundness } from 'xai-eval'

import { demoSubset, randomArray } from './common.js'

const RESNET = 'benches/models/resnet18.onnx'

export const name = 'soundness'

export async function run() {
  // BENCH_MODELS=small,resnet18 (default both), as in compare.js.
  const only = (process.env.BENCH_MODELS ?? 'small,resnet18').split(',')
  const resnet = only.includes('resnet18') ? await resnet18() : undefined
  if (!only.includes('small')) return { resnet }
  const { modelPath, data } = await demoSubset(64, 'occlusion')
  data.a = data.a.map(Math.abs)
  const model = await OnnxModel.load(modelPath, { maxBatchSize: 256 })
  const free = new FunctionModel((_, shape) => new Float32Array(shape[0] * 4), { maxBatchSize: 256, concurrency: model.concurrency })
  const soundness = new Soundness()
  const rows = (await soundness.evaluate(model, data)).forwardPasses
  const rowShape = data.shape.slice(1)
  const rowLen = rowShape.reduce((p, d) => p * d, 1)

  async function bareForwards() {
    let next = 0
    const batches = Math.ceil(rows / 256)
    await Promise.all(
      Array.from({ length: Math.min(batches, model.concurrency + 1) }, async () => {
        while (next < batches) {
          const n = Math.min(256, rows - 256 * next++)
          await model.forward(new Float32Array(n * rowLen).fill(0.5), n, rowShape)
        }
      }),
    )
  }

  const describe = `64×1×28×28, ${rows} rows (${soundness.ratios.length} steps), batch 256 × ${model.concurrency} workers`
  const summary = await b.suite(
    `Soundness time split: ${describe}`,
    b.add('end to end (imputation overlapped with inference)', async () => {
      await soundness.evaluate(model, data)
    }),
    b.add('imputation only (free model)', async () => {
      await soundness.evaluate(free, data)
    }),
    b.add('forward passes only', async () => {
      await bareForwards()
    }),
    b.cycle(),
    b.complete((s) => {
      const [all, imputation, forwards] = s.results.map((r) => r.details.median * 1000)
      console.log(
        `  median ms: end to end ${all.toFixed(0)}, imputation ${imputation.toFixed(0)}, forwards ${forwards.toFixed(0)}; hidden by overlap: ${(imputation + forwards - all).toFixed(0)} ms`,
      )
    }),
    b.save({ file: name, folder: 'benches/results', format: 'json', details: true }),
  )
  await model.close()
  return { summary, describe, resnet }
}

/** `rows` bare forward passes of `model` in batches of `size`, as many in flight as the engine keeps. */
async function bareForwards(model, rows, size, rowShape) {
  const rowLen = rowShape.reduce((p, d) => p * d, 1)
  let next = 0
  const batches = Math.ceil(rows / size)
  await Promise.all(
    Array.from({ length: Math.min(batches, model.concurrency + 1) }, async () => {
      while (next < batches) {
        const n = Math.min(size, rows - size * next++)
        await model.forward(new Float32Array(n * rowLen).fill(0.5), n, rowShape)
      }
    }),
  )
}

/**
 * Soundness on the ResNet-18-sized model (`python scripts/make_resnet18.py`; skipped without it),
 * N random 3×224×224 images (BENCH_SOUNDNESS_N, default 4), one 1-thread session: a core is spare
 * for imputation on 2 cores. End to end against imputation alone (a free model) and the bare
 * forward passes alone, interleaved rounds (BENCH_SOUNDNESS_ROUNDS, default 3), medians.
 */
async function resnet18() {
  if (!existsSync(RESNET)) {
    console.log(`  (${RESNET} missing: python scripts/make_resnet18.py; ResNet-18 soundness skipped)`)
    return undefined
  }
  const n = Number(process.env.BENCH_SOUNDNESS_N ?? 4)
  const rounds = Number(process.env.BENCH_SOUNDNESS_ROUNDS ?? 3)
  const size = 16
  const data = {
    x: randomArray(n * 3 * 224 * 224, 1).map((v) => (v + 1) / 2),
    shape: [n, 3, 224, 224],
    y: new Int32Array(n),
    a: randomArray(n * 224 * 224, 2).map(Math.abs),
    aShape: [n, 1, 224, 224],
  }
  const rowShape = data.shape.slice(1)
  const model = await OnnxModel.load(RESNET, { workers: 1, threads: 1, maxBatchSize: size })
  const free = new FunctionModel((_, shape) => new Float32Array(shape[0] * 4), { maxBatchSize: size, concurrency: model.concurrency })
  const soundness = new Soundness()
  const rows = (await soundness.evaluate(free, data)).forwardPasses
  const times = { all: [], imputation: [], forwards: [] }
  // Process CPU time over wall time: the cores in use on average (> 1 while imputation and
  // inference overlap).
  const cores = { all: [], imputation: [], forwards: [] }
  const time = async (key, f) => {
    const [t, cpu] = [performance.now(), process.cpuUsage()]
    await f()
    const wall = performance.now() - t
    const used = process.cpuUsage(cpu)
    times[key].push(wall)
    cores[key].push((used.user + used.system) / 1000 / wall)
  }
  const load = () =>
    os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')
  console.log(`Soundness, ResNet-18 ${n}×3×224×224, ${rows} rows, batch ${size}, 1 session × 1 thread; load average ${load()}`)
  for (let r = 0; r < rounds; r++) {
    await time('all', () => soundness.evaluate(model, data))
    await time('imputation', () => soundness.evaluate(free, data))
    await time('forwards', () => bareForwards(model, rows, size, rowShape))
  }
  await model.close()
  const median = (v) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)]
  const [all, imputation, forwards] = [median(times.all), median(times.imputation), median(times.forwards)]
  const ratio = all / Math.max(imputation, forwards)
  const busy = (key) => median(cores[key]).toFixed(2)
  console.log(
    `  cores in use (CPU time ÷ wall time, median): end to end ${busy('all')}, imputation ${busy('imputation')}, forwards ${busy('forwards')}`,
  )
  console.log(
    `  median ms: end to end ${all.toFixed(0)}, imputation ${imputation.toFixed(0)}, forwards ${forwards.toFixed(0)}; end to end ÷ max(imputation, forwards) ${ratio.toFixed(2)}, ÷ their sum ${(all / (imputation + forwards)).toFixed(2)}; load average after ${load()}`,
  )
  return { n, rows, all, imputation, forwards, ratio, times, cores }
}
