// Does the Quality Gap Estimator rank explanations by quality better than the random baseline?
// The paper's experiment (Eiras-Franco, Hedström & Höhne, AAAI 2025, §4.1) on the embedded demo
// model: for each input, a metric's values over many random (chunky) rankings are the latent
// quality distribution; QGE (one more evaluation per explanation) and the random baseline QB_K
// (K more) are scored by how well they order those explanations as the metric does.
//
//   npm run example:qge [-- --samples 8 --explanations 200 --chunk 4]
import { latentQuality, loadDemo, OnnxModel, PixelFlipping, Deletion, SymmetricRelevanceGain, type Dataset } from 'xai-eval'

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const samples = arg('samples', 8)
const explanations = arg('explanations', 200)
const chunk = arg('chunk', 4)

const demo = await loadDemo()
const [, c, h, w] = demo.shape
const data: Dataset = {
  x: demo.x.subarray(0, samples * c * h * w),
  shape: [samples, c, h, w],
  y: demo.y.subarray(0, samples),
  a: new Float32Array(samples * h * w), // replaced by the random explanations
  aShape: [samples, 1, h, w],
}
const model = await OnnxModel.load(demo.modelPath)
const metrics = [
  ['pixel flipping (MoRF, 49 px/step)', new PixelFlipping({ featuresInStep: 49 })],
  ['SRG (49 px/step)', new SymmetricRelevanceGain({ featuresInStep: 49 })],
  ['Deletion (16 steps, blur)', new Deletion({ steps: 16, target: 'label' })],
] as const

console.log(
  `${samples} inputs × ${explanations} random rankings on ${chunk}×${chunk}-pixel cells (${Math.ceil(h / chunk)}×${Math.ceil(w / chunk)} grid)`,
)
console.log('agreement with the latent quality distribution, mean over inputs (τ-b · ρ · share of correctly ordered pairs)\n')
for (const [name, metric] of metrics) {
  const start = performance.now()
  const r = await latentQuality(model, data, { metric, explanations, chunk, inverse: 'ranking' })
  const seconds = (performance.now() - start) / 1000
  const meanStd = [...r.std].reduce((a, b) => a + b, 0) / r.std.length
  console.log(`${name}: std of the latent distribution ${meanStd.toFixed(4)}, ${r.forwardPasses} rows, ${seconds.toFixed(1)} s`)
  console.log(`  ${'estimator'.padEnd(9)} ${'cost'.padStart(5)}  ${'τ-b'.padStart(6)}  ${'ρ'.padStart(6)}  ${'pairs'.padStart(6)}`)
  for (const [est, a] of Object.entries(r.agreement)) {
    const cost = est === 'QGE' ? '2Ψ' : `${Number(est.slice(2)) + 1}Ψ`
    const f = (v: number) => v.toFixed(3).padStart(6)
    console.log(`  ${est.padEnd(9)} ${cost.padStart(5)}  ${f(a.mean.kendall)}  ${f(a.mean.spearman)}  ${f(a.mean.pairs)}`)
  }
  console.log()
}
await model.close()
