import { FunctionModel, OnnxModel, PixelFlipping, SymmetricRelevanceGain } from 'xai-eval'
import { demoSubset } from './common.js'
const { modelPath, data } = await demoSubset(64)
const fm = new FunctionModel((x, shape) => new Float32Array(shape[0] * 10), { maxBatchSize: 512 })
const model = await OnnxModel.load(modelPath, { workers: Number(process.env.XW ?? 1), threads: 1 })
const orig = model.forward.bind(model)
let t0,
  ev = []
model.forward = async (x, rows, rs) => {
  const s = performance.now() - t0
  const r = await orig(x, rows, rs)
  ev.push([s, performance.now() - t0, rows])
  return r
}
for (const metric of [new PixelFlipping({ featuresInStep: 28 }), new SymmetricRelevanceGain({ featuresInStep: 28 })]) {
  for (let rep = 0; rep < 30; rep++) await metric.evaluate(fm, data)
  const t = performance.now()
  for (let rep = 0; rep < 30; rep++) await metric.evaluate(fm, data)
  console.log(metric.constructor.name, 'instant model ms/run', ((performance.now() - t) / 30).toFixed(2))
  for (let rep = 0; rep < 40; rep++) {
    if (process.env.XP) await new Promise((r) => setTimeout(r, Number(process.env.XP)))
    ev = []
    t0 = performance.now()
    const r = await metric.evaluate(model, data)
    const end = performance.now() - t0
    if (rep >= 36)
      console.log(
        metric.constructor.name,
        'first send',
        ev[0][0].toFixed(2),
        'first back',
        ev[0][1].toFixed(2),
        'last back',
        Math.max(...ev.map((e) => e[1])).toFixed(2),
        'end',
        end.toFixed(2),
        'calls',
        ev.length,
        'rows',
        ev.map((e) => e[2]).join(','),
        'batch',
        r.batchSize,
      )
  }
}
await model.close()
