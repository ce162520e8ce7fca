// Soundness on the demo set: where the time goes. Imputation alone (a model that costs nothing),
// the bare forward passes alone (same rows, same batches, same pool), and end to end, where the
// engine imputes batch k+1 while the model runs batch k.
import b from 'benny'
import { FunctionModel, OnnxModel, Soundness } from 'xai-eval'

import { demoSubset } from './common.js'

export const name = 'soundness'

export async function run() {
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
  return { summary, describe }
}
