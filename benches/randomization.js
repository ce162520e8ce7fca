// Randomization sanity checks on the demo set (32 × 1 × 28 × 28, its ONNX model, occlusion with
// 4-pixel patches as the explainer): wall time of one evaluation, the model rows it sent (its
// `forwardPasses`, the explainer's rows included) and the rows per second. MPRT and SmoothMPRT
// also load one copy of the model per randomized stage; `bare` is the rate of the same number of
// plain forward rows, for scale.
import { writeFileSync } from 'node:fs'

import { EfficientMPRT, ModelParameterRandomization, OnnxModel, occlusion, RandomLogit, SmoothMPRT } from 'xai-eval'

import { demoSubset, machine } from './common.js'

export const name = 'randomization'

export async function run() {
  const { modelPath, data } = await demoSubset(32, 'occlusion')
  const modelOptions = { maxBatchSize: 256 }
  const model = await OnnxModel.load(modelPath, modelOptions)
  const explainer = occlusion({ patch: 4 })
  const out = { machine: machine(), data: '32×1×28×28 demo, occlusion(patch=4), batch 256', results: [] }
  const metrics = [
    ['RandomLogit', new RandomLogit({ explainer })],
    ['ModelParameterRandomization (top-down)', new ModelParameterRandomization({ explainer, onnx: modelPath, modelOptions })],
    ['EfficientMPRT', new EfficientMPRT({ explainer, onnx: modelPath, modelOptions })],
    ['SmoothMPRT (nrSamples=10)', new SmoothMPRT({ explainer, onnx: modelPath, modelOptions, nrSamples: 10 })],
  ]
  // Warm-up: the model's sessions and the native module.
  await metrics[0][1].evaluate(model, data)
  for (const [what, metric] of metrics) {
    const t0 = performance.now()
    const r = await metric.evaluate(model, data)
    const ms = performance.now() - t0
    out.results.push({
      what,
      layers: r.layers?.length,
      forwardPasses: r.forwardPasses,
      ms: Math.round(ms),
      rowsPerSecond: Math.round((r.forwardPasses / ms) * 1000),
      mean: Number(r.mean.toFixed(4)),
    })
  }
  const [, c, h, w] = data.shape
  const rows = 256
  const x = new Float32Array(rows * c * h * w)
  const t0 = performance.now()
  for (let i = 0; i < 20; i++) await model.forward(x.slice(), rows, [c, h, w])
  out.results.push({
    what: 'bare forward rows (256-row batches, one at a time)',
    rowsPerSecond: Math.round((20 * rows) / ((performance.now() - t0) / 1000)),
  })
  await model.close()
  console.log(JSON.stringify(out, null, 2))
  writeFileSync(new URL('./results/randomization.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`)
}
