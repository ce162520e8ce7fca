// Which explanation method is best on the embedded demo model, and is that real? The built-in
// gradient-free explainers (occlusion, RISE, permutation Shapley) and the demo's precomputed maps
// through the `ExplanationMetrics` facade: every method × deletion, insertion, sensitivity-N,
// parameter and data randomization, pointing game (the demo's object masks), with 95 % bootstrap
// intervals, ranks and paired tests against the best method. Precomputed maps cannot explain new
// inputs, so their sensitivity and randomization cells are n/a.
//
//   npm run example:compare [-- --samples 64 --resamples 2000]
import { ExplanationMetrics, loadDemo, OnnxModel, occlusion, rise, shapley } from 'xai-eval'

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const samples = arg('samples', 64)
const resamples = arg('resamples', 2000)

const t0 = performance.now()
const demo = await loadDemo()
const [, c, h, w] = demo.shape
const model = await OnnxModel.load(demo.modelPath, { output: 'probabilities' })
const pick = (a: Float32Array) => a.subarray(0, samples * h * w)
const metrics = new ExplanationMetrics(model, {
  explainers: {
    occlusion: occlusion({ patch: 4, stride: 4 }),
    rise: rise({ masks: 200, cell: 7, seed: 0 }),
    shapley: shapley({ patch: 7, permutations: 4, seed: 0 }),
    'integrated-gradients (maps)': pick(demo.attributions['integrated-gradients']!),
    'random (maps)': pick(demo.attributions.random!),
  },
  onnx: demo.modelPath,
  modelOptions: { workers: 1 },
})
const table = await metrics.compareMethods(
  {
    x: demo.x.subarray(0, samples * c * h * w),
    shape: [samples, c, h, w],
    y: demo.y.subarray(0, samples),
    masks: demo.masks.subarray(0, samples * h * w),
  },
  { resamples, sensitivity: { nSamples: 10 }, deletion: { steps: 20 }, insertion: { steps: 20 } },
)
console.log(
  `xai-eval compare: ${samples} demo samples, 95 % paired bootstrap intervals over ${resamples} resamples, differences to the best tested by the same bootstrap`,
)
console.log("'#k' = rank by the metric's direction; '=' = not significantly different from the best (p ≥ 0.05)\n")
console.log(table.toString())
console.log(
  `\n${table.explanations.computed} explanations computed, ${table.explanations.reused} reused from the cache; ${model.stats.rows} model rows; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
)
await model.close()
