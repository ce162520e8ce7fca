// Localisation metrics on large maps (200 × 224 × 224, no model involved) and the parameter
// randomization test on the demo (64 × 1 × 28 × 28, 3 layers, occlusion 4×4): wall time, median
// of 3 after a warm-up.
import { writeFileSync } from 'node:fs'

import {
  AUC,
  FunctionModel,
  ModelParameterRandomization,
  OnnxModel,
  occlusion,
  PointingGame,
  RelevanceMassAccuracy,
  RelevanceRankAccuracy,
} from 'xai-eval'

import { demoSubset, machine, rng } from './common.js'

export const name = 'localisation'

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
  const [n, h, w] = [200, 224, 224]
  const r = rng(7)
  const data = {
    x: new Float32Array(n * h * w),
    shape: [n, 1, h, w],
    y: new Array(n).fill(0),
    a: Float32Array.from({ length: n * h * w }, r),
    masks: Uint8Array.from({ length: n * h * w }, (_, j) => (j % (h * w) < 8000 ? 1 : 0)),
  }
  const none = new FunctionModel(async (_x, shape) => new Float32Array(shape[0] * 2), { maxBatchSize: 8 })
  const out = { machine: machine(), results: [] }
  for (const m of [new PointingGame({ tolerance: 15 }), new RelevanceMassAccuracy(), new RelevanceRankAccuracy(), new AUC()]) {
    const ms = await median(() => m.evaluate(none, data))
    out.results.push({ what: `${m.meta.name}, ${n}×224×224`, ms: Math.round(ms) })
  }
  const { modelPath, data: demo } = await demoSubset(64, 'occlusion')
  const model = await OnnxModel.load(modelPath)
  const mprt = new ModelParameterRandomization({ explainer: occlusion({ patch: 4 }), onnx: modelPath, modelOptions: { workers: 1 } })
  const ms = await median(() => mprt.evaluate(model, demo), 1)
  out.results.push({ what: 'ModelParameterRandomization, demo 64×1×28×28, 3 stages, occlusion 4×4', ms: Math.round(ms) })
  await model.close()
  console.table(out.results)
  writeFileSync(new URL('./results/localisation.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`)
}
