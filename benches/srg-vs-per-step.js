// SRG with featuresInStep = 1 on 16 samples of 1×28×28: xai-eval's packed batches against the
// same rows evaluated the way per-step loops do it (one forward call per occlusion step holding
// that step's MIF and LIF rows of all samples, awaited in turn).
import b from 'benny'
import { OnnxModel, SymmetricRelevanceGain } from 'xai-eval'

import { computeBaselines, fillRows, rankFeatures, scoreRows } from '../dist/native.js'
import { demoSubset } from './common.js'

export const name = 'srg-vs-per-step'

export async function run() {
  const { modelPath, data } = await demoSubset(16)
  const [n, c, h, w] = data.shape
  const F = c * h * w
  const layout = { channels: c, pixels: h * w, attrChannels: 1, unit: 'entry' }
  const batched = await OnnxModel.load(modelPath) // maxBatchSize 'auto'
  const perStep = await OnnxModel.load(modelPath, { maxBatchSize: 2 * n, workers: 1 })
  const srg = new SymmetricRelevanceGain({ featuresInStep: 1 })
  await srg.evaluate(batched, data)

  async function oneCallPerStep() {
    const order = await rankFeatures(data.a, n, layout, false)
    const baselines = await computeBaselines(data.x, data.shape, { kind: 'constant', value: 0 }, 0)
    const targets = new Int32Array(2 * n)
    for (let i = 0; i < 2 * n; i++) targets[i] = data.y[i % n]
    for (let k = 0; k <= F; k++) {
      const rows = new Uint32Array(6 * n)
      for (let s = 0; s < n; s++) {
        rows.set([s, k, 0], 3 * s)
        rows.set([s, k, 1], 3 * (n + s))
      }
      const x = new Float32Array(2 * n * F)
      await fillRows(data.x, baselines, order, n, layout, rows, x)
      scoreRows(await perStep.forward(x, 2 * n, [c, h, w]), 4, targets, true)
    }
  }

  const describe = `16×1×28×28, featuresInStep 1 (${2 * F} rows per sample)`
  let speedup
  const summary = await b.suite(
    `SRG packed batches vs one forward call per step: ${describe}`,
    b.add(`xai-eval SRG (batch ${batched.maxBatchSize} × ${batched.concurrency} workers)`, async () => {
      await srg.evaluate(batched, data)
    }),
    b.add('one forward call per step (32 rows)', async () => {
      await oneCallPerStep()
    }),
    b.cycle(),
    b.complete((s) => {
      const [ours, loop] = s.results
      speedup = loop.details.median / ours.details.median
      console.log(`  speed-up: ${speedup.toFixed(2)}×`)
    }),
    b.save({ file: name, folder: 'benches/results', format: 'json', details: true }),
  )
  await Promise.all([batched.close(), perStep.close()])
  return { summary, speedup, describe }
}
