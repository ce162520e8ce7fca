// Built-in explainers and a robustness metric on the demo set (64 × 1 × 28 × 28, ONNX model):
// wall time per call (median of 3 after a warm-up), rows sent to the model, and a cached repeat.
import { writeFileSync } from 'node:fs'

import { checkExplainer, ExplanationCache, MaxSensitivity, OnnxModel, occlusion, rise, SensitivityN, shapley } from 'xai-eval'

import { demoSubset, machine } from './common.js'

export const name = 'explainers'

async function median(f, times = 3) {
  await f()
  const t = []
  for (let i = 0; i < times; i++) {
    const t0 = performance.now()
    await f()
    t.push(performance.now() - t0)
  }
  return t.sort((a, b) => a - b)[Math.floor(times / 2)]
}

export async function run() {
  const { modelPath, data } = await demoSubset(64, 'occlusion')
  const model = await OnnxModel.load(modelPath, { maxBatchSize: 256 })
  const targets = Int32Array.from(data.y)
  const out = { machine: machine(), data: '64×1×28×28 demo, batch 256', results: [] }
  for (const e of [
    occlusion({ patch: 4 }),
    occlusion({ patch: 4, stride: 2 }),
    rise({ masks: 500, cell: 7 }),
    shapley({ patch: 7, permutations: 8 }),
  ]) {
    const c = checkExplainer(e)
    const before = model.stats.rows
    await c.explain(model, data.x, data.shape, targets)
    const rows = model.stats.rows - before
    const ms = await median(() => c.explain(model, data.x, data.shape, targets))
    out.results.push({ what: e.name, rows, ms: Math.round(ms), rowsPerSecond: Math.round((rows / ms) * 1000) })
  }
  const cache = new ExplanationCache()
  const cached = checkExplainer(cache.wrap(occlusion({ patch: 4 })))
  await cached.explain(model, data.x, data.shape, targets)
  out.results.push({
    what: 'occlusion(patch=4) again through ExplanationCache',
    ms: Number((await median(() => cached.explain(model, data.x, data.shape, targets))).toFixed(2)),
    hits: cache.hits,
  })
  const sens = new SensitivityN({ explainer: occlusion({ patch: 4 }), nSamples: 10 })
  out.results.push({
    what: 'SensitivityN(nSamples=10, occlusion patch 4)',
    ms: Math.round(await median(() => sens.evaluate(model, data), 1)),
  })
  const max = new MaxSensitivity({ explainer: occlusion({ patch: 7 }), nrSamples: 10 })
  out.results.push({
    what: 'MaxSensitivity(nrSamples=10, occlusion patch 7)',
    ms: Math.round(await median(() => max.evaluate(model, data), 1)),
  })
  await model.close()
  console.log(JSON.stringify(out, null, 2))
  writeFileSync(new URL('./results/explainers.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`)
}
