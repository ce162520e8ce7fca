// §5.2 / Table 1 of Li, Zhang et al. (TMLR 2024) on the embedded demo: how far apart are a
// metric's curves for an attribution map and its Remove / Introduce modifications (App. G
// Table 3)? Order-based metrics (Deletion, ROAD) barely move when values change but the order
// mostly does not; soundness and completeness see the values.
//
//   npm run example:table1 [-- --method occlusion]
import { Completeness, Deletion, loadDemo, minimalHausdorff, modify, OnnxModel, Road, Soundness, type CurvePoints } from 'xai-eval'

const args = process.argv.slice(2)
const method = args.includes('--method') ? args[args.indexOf('--method') + 1]! : 'integrated-gradients'
const demo = await loadDemo()
const [n, , h, w] = demo.shape
const raw = demo.attributions[method]
if (!raw) throw new Error(`unknown method ${method}; one of ${Object.keys(demo.attributions).join(', ')}`)

// Table 3's modifications shift values by 0.6 within [0, 1]: use |a| divided by each map's max.
const original = new Float32Array(raw.length)
for (let s = 0; s < n; s++) {
  const map = raw.subarray(s * h * w, (s + 1) * h * w)
  const max = map.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1
  map.forEach((v, i) => {
    original[s * h * w + i] = Math.abs(v) / max
  })
}
const aShape = [n, 1, h, w]
const maps = {
  original,
  remove: modify.remove(original, aShape, { kind: 'constant', seed: 1 }),
  introduce: modify.introduce(original, aShape, { kind: 'constant', seed: 1 }),
}

/** Mean over samples of `[n, k]` curves. */
function mean(values: Float64Array, k: number): Float64Array {
  const m = new Float64Array(k)
  values.forEach((v, i) => {
    m[i % k] += v / (values.length / k)
  })
  return m
}

const model = await OnnxModel.load(demo.modelPath)
const metrics: [string, (a: Float32Array) => Promise<CurvePoints>][] = [
  [
    'Completeness',
    async (a) => {
      const r = await new Completeness().evaluate(model, { x: demo.x, shape: demo.shape, y: demo.y, a, aShape })
      return { x: r.curve.thresholds, y: r.curve.difference }
    },
  ],
  [
    'Soundness',
    async (a) => {
      const r = await new Soundness().evaluate(model, { x: demo.x, shape: demo.shape, y: demo.y, a, aShape })
      return { x: r.curve.indicator, y: r.curve.soundness }
    },
  ],
  [
    'Deletion',
    async (a) => {
      const r = await new Deletion({ baseline: 'blur' }).evaluate(model, { x: demo.x, shape: demo.shape, y: demo.y, a, aShape })
      const c = r.curves.scores!
      return { x: c.x, y: mean(c.values, c.points) }
    },
  ],
  [
    'ROAD (MoRF)',
    async (a) => {
      const r = await new Road().evaluate(model, { x: demo.x, shape: demo.shape, y: demo.y, a, aShape })
      return { x: Float64Array.from(r.params.percentages as number[]), y: r.accuracy }
    },
  ],
]

console.log(`Minimal Hausdorff distance between the Original / Remove / Introduce (constant) curves, demo model, |${method}|:\n`)
console.log(
  `${'metric'.padEnd(14)}${'min H'.padStart(8)}  closest pair          ${'O–R'.padStart(7)}${'O–I'.padStart(7)}${'R–I'.padStart(7)}`,
)
for (const [name, curveOf] of metrics) {
  const curves = {
    original: await curveOf(maps.original),
    remove: await curveOf(maps.remove),
    introduce: await curveOf(maps.introduce),
  }
  const m = minimalHausdorff(curves)
  const pair = (a: string, b: string) => (m.pairs[`${a}|${b}`] ?? m.pairs[`${b}|${a}`])!.toFixed(3).padStart(7)
  console.log(
    `${name.padEnd(14)}${m.distance.toFixed(3).padStart(8)}  ${m.pair.join(' – ').padEnd(22)}${pair('original', 'remove')}${pair('original', 'introduce')}${pair('remove', 'introduce')}`,
  )
}
await model.close()
