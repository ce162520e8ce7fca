// compat: 'quantus' against numbers recorded from quantus 0.6.0 by scripts/make_quantus_fixture.py.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import test from 'ava'
import { loadDemo, OnnxModel, PixelFlipping, Road, SymmetricRelevanceGain } from 'xai-eval'

interface Run {
  metric: 'PixelFlipping' | 'SRG-equivalent'
  params: { features_in_step: number; perturb_baseline: 'black' | number; abs: boolean }
  curves?: number[][]
  auc?: number[]
  mif?: number[][]
  lif?: number[][]
  srg?: number[]
}
interface Fixture {
  shape: [number, number, number, number]
  aShape: number[]
  model: string
  x: number[]
  a: number[]
  y: number[]
  runs: Run[]
}

const dir = join(import.meta.dirname, 'fixtures', 'quantus')
const TOL = 1e-5

function close(t: import('ava').ExecutionContext, actual: ArrayLike<number>, expected: number[], what: string): void {
  t.is(actual.length, expected.length, `${what}: length`)
  let worst = 0
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!))
  t.true(worst <= TOL, `${what}: max |Δ| = ${worst}`)
}

for (const name of ['pf-gray', 'pf-rgb']) {
  const f = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Fixture
  const data = { x: Float32Array.from(f.x), shape: f.shape, y: f.y, a: Float32Array.from(f.a), aShape: f.aShape }

  for (const run of f.runs) {
    const { features_in_step: featuresInStep, perturb_baseline: baseline, abs } = run.params
    test(`${name}: ${run.metric} featuresInStep=${featuresInStep} baseline=${baseline}`, async (t) => {
      const model = await OnnxModel.load(join(dir, f.model), { output: 'logits', maxBatchSize: 7 })
      t.teardown(() => model.close())
      if (run.metric === 'PixelFlipping') {
        const r = await new PixelFlipping({ featuresInStep, baseline, abs, compat: 'quantus' }).evaluate(model, data)
        close(t, r.curves.morf!.values, run.curves!.flat(), 'curves')
        close(t, r.scores, run.auc!, 'auc')
        // Quantus makes ceil(F/fis) passes per batch; rows are the same, batching is ours.
        t.is(r.forwardPasses, f.shape[0] * run.curves![0]!.length)
      } else {
        const r = await new SymmetricRelevanceGain({ featuresInStep, baseline, abs, compat: 'quantus' }).evaluate(model, data)
        close(t, r.curves.mif!.values, run.mif!.flat(), 'mif')
        close(t, r.curves.lif!.values, run.lif!.flat(), 'lif')
        close(t, r.scores, run.srg!, 'srg')
      }
    })
  }
}

// ROAD against quantus.ROAD 0.6.0 on the embedded demo (scripts/make_quantus_road_fixture.py).
interface RoadFixture {
  samples: number
  runs: { method: string; params: { percentages: number[]; noise: number; abs: boolean }; accuracy: Record<string, number> }[]
}
const road = JSON.parse(readFileSync(join(dir, 'road-demo.json'), 'utf8')) as RoadFixture
for (const run of road.runs) {
  test(`demo: ROAD ${run.method} percentages ${run.params.percentages.slice(0, 3).join(', ')}, …`, async (t) => {
    const demo = await loadDemo()
    const n = road.samples
    const model = await OnnxModel.load(demo.modelPath, { maxBatchSize: 64 })
    t.teardown(() => model.close())
    const data = {
      x: demo.x.subarray(0, n * 784),
      shape: [n, 1, 28, 28] as const,
      y: demo.y.subarray(0, n),
      a: demo.attributions[run.method]!.subarray(0, n * 784),
    }
    const r = await new Road({
      compat: 'quantus',
      percentages: run.params.percentages,
      noise: run.params.noise,
      abs: run.params.abs,
    }).evaluate(model, data)
    t.deepEqual(
      Array.from(r.accuracy),
      run.params.percentages.map((p) => run.accuracy[String(p)]),
    )
  })
}
