// The Quality Gap Estimator: the paper's identities, Quantus's InverseEstimation (fixture made with
// the branch's code by scripts/make_qge_fixture.py), shared rows, shards and typed errors.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import test from 'ava'
import {
  createMetric,
  FunctionModel,
  invert,
  latentQuality,
  loadDemo,
  OnnxModel,
  PixelFlipping,
  QualityGapEstimator,
  RandomBaselineGap,
  Road,
  SymmetricRelevanceGain,
  type Dataset,
  XaiEvalError,
} from 'xai-eval'

import { batched, linearRowModel, prng } from './reference.js'
import { checkShards } from './shards.js'

const dir = join(import.meta.dirname, 'fixtures', 'quantus')

test('inverses: the spec’s worked example; sign-flip; ranking needs [0, 1]', (t) => {
  const a = Float32Array.of(0.3, -1.2, 0.8, 0.0, 2.5, -0.4)
  t.deepEqual([...invert(a, 1, 'value-swap')], [0.0, 2.5, -0.4, 0.3, -1.2, 0.8].map(Math.fround))
  t.deepEqual(
    [...invert(a, 1, 'sign-flip')],
    [...a].map((v) => -v),
  )
  // per sample: two samples of 3 values each are inverted separately
  t.deepEqual([...invert(Float32Array.of(1, 2, 3, 30, 10, 20), 2, 'value-swap')], [3, 2, 1, 10, 30, 20])
  t.deepEqual([...invert(Float32Array.of(0, 0.25, 1), 1, 'ranking')], [1, 0.75, 0])
  const e = t.throws(() => invert(a, 1, 'ranking')) as XaiEvalError
  t.is(e.code, 'INVALID_OPTION')
})

function linearData(seed: number, n = 5) {
  const rand = prng(seed)
  const [c, h, w, k] = [2, 3, 4, 3]
  const f = c * h * w
  const data: Dataset = {
    x: Float32Array.from({ length: n * f }, () => rand() - 0.5),
    shape: [n, c, h, w],
    y: Array.from({ length: n }, (_, i) => i % k),
    // tie-free attributions
    a: Float32Array.from({ length: n * f }, () => rand() - 0.5),
  }
  const weights = Float64Array.from({ length: k * f }, () => rand() - 0.5)
  const model = () => new FunctionModel(batched(linearRowModel(weights, new Float64Array(k))), { maxBatchSize: 7 })
  return { data, model, rand }
}

test('QGE of pixel flipping with sign-flip is −SRG bit for bit, on no more rows than SRG', async (t) => {
  for (const seed of [1, 2, 3]) {
    const { data, model } = linearData(seed)
    for (const featuresInStep of [1, 5]) {
      const srg = await new SymmetricRelevanceGain({ featuresInStep }).evaluate(model(), data)
      const qge = await new QualityGapEstimator({ metric: new PixelFlipping({ featuresInStep }) }).evaluate(model(), data)
      t.deepEqual(
        qge.scores,
        srg.scores.map((v) => -v),
        `seed ${seed}, featuresInStep ${featuresInStep}`,
      )
      // PF alone costs K + 1 rows per sample; the inverse's MoRF rows are the LeRF rows, sharing both ends.
      t.true(qge.forwardPasses <= srg.forwardPasses, `${qge.forwardPasses} rows vs SRG's ${srg.forwardPasses}`)
      const pf = await new PixelFlipping({ featuresInStep }).evaluate(model(), data)
      t.true(qge.forwardPasses < 2 * pf.forwardPasses)
      t.false(qge.higherIsBetter, 'inherits pixel flipping’s direction')
    }
  }
})

test('QGE on the demo model: −SRG exactly, and the all-baseline rows shared across samples', async (t) => {
  const demo = await loadDemo()
  const model = await OnnxModel.load(demo.modelPath)
  t.teardown(() => model.close())
  const n = 8
  const [, c, h, w] = demo.shape
  const data: Dataset = {
    x: demo.x.subarray(0, n * c * h * w),
    shape: [n, c, h, w],
    y: demo.y.subarray(0, n),
    a: demo.attributions['integrated-gradients']!.subarray(0, n * h * w),
    aShape: [n, 1, h, w],
  }
  const srg = await new SymmetricRelevanceGain({ featuresInStep: 16 }).evaluate(model, data)
  const qge = await new QualityGapEstimator({ metric: new PixelFlipping({ featuresInStep: 16 }) }).evaluate(model, data)
  t.deepEqual(
    qge.scores,
    srg.scores.map((v) => -v),
  )
  t.true(qge.forwardPasses <= srg.forwardPasses)
  const oriented = await new QualityGapEstimator({ metric: new PixelFlipping({ featuresInStep: 16 }), orient: true }).evaluate(model, data)
  t.true(oriented.higherIsBetter)
  t.deepEqual(oriented.scores, srg.scores)
})

test('QGE works over an exact-reduce metric and a per-percentage one, and its shards reduce exactly', async (t) => {
  const { data, model, rand } = linearData(7, 6)
  for (const metric of [new Road({ percentages: [0.2, 0.6], noise: 0.3 }), new SymmetricRelevanceGain({ featuresInStep: 4 })]) {
    const qge = new QualityGapEstimator({ metric, inverse: 'value-swap' })
    const whole = await qge.evaluate(model(), data)
    t.deepEqual(
      whole.scores,
      whole.original.map((v, i) => v - whole.inverse[i]!),
    )
    await checkShards(t, qge, model, data, whole, rand)
  }
})

test('QGE options: abs refused, unknown keys and methods typed, built from its JSON', async (t) => {
  const err = (f: () => unknown) => t.throws(f) as XaiEvalError
  let e = err(() => new QualityGapEstimator({ metric: new SymmetricRelevanceGain({ abs: true }) }))
  t.is(e.code, 'INVALID_OPTION')
  t.is(e.arg, 'metric')
  e = err(() => new QualityGapEstimator({ metric: new PixelFlipping(), inverse: 'flip' as never }))
  t.is(e.arg, 'inverse')
  e = err(() => new QualityGapEstimator({ metric: new PixelFlipping(), invers: 'sign-flip' } as never))
  t.is(e.arg, 'invers')
  t.regex(e.message, /did you mean 'inverse'/)
  e = err(() => new QualityGapEstimator({ metric: new PixelFlipping(), aggregate: 'auc' }))
  t.is(e.arg, 'aggregate')
  e = err(() => new QualityGapEstimator({ metric: { id: 'pixelflipping' } }))
  t.regex(e.message, /did you mean 'pixel-flipping'/)
  e = err(() => new QualityGapEstimator({ metric: 'srg' as never }))
  t.is(e.arg, 'metric')

  const qge = new QualityGapEstimator({ metric: new PixelFlipping({ featuresInStep: 4 }), inverse: 'value-swap' })
  const again = createMetric(JSON.parse(JSON.stringify(qge)))
  t.deepEqual(again.toJSON(), qge.toJSON())
  const { data, model } = linearData(3)
  t.deepEqual((await again.evaluate(model(), data)).scores, (await qge.evaluate(model(), data)).scores)
})

interface QgeRun {
  wrapped: { metric: string; params: { features_in_step?: number; perturb_baseline?: string } }
  inverse_method: 'sign-flip' | 'value-swap'
  return_auc_per_sample: boolean
  qge?: number[]
  original?: number[][]
  inverse?: number[][]
  raises?: string
}

const fixture = JSON.parse(readFileSync(join(dir, 'qge.json'), 'utf8')) as {
  cases: { data: string; model: string; runs: QgeRun[] }[]
}
for (const c of fixture.cases) {
  const f = JSON.parse(readFileSync(join(dir, c.data), 'utf8')) as {
    x: number[]
    a: number[]
    y: number[]
    shape: Dataset['shape']
    aShape: number[]
  }
  const data: Dataset = { x: Float32Array.from(f.x), shape: f.shape, y: f.y, a: Float32Array.from(f.a), aShape: f.aShape }
  for (const run of c.runs.filter((r) => r.wrapped.metric === 'PixelFlipping' && !r.raises)) {
    const agg = run.return_auc_per_sample ? 'auc' : 'mean'
    test(`compat 'quantus' = InverseEstimation(PixelFlipping fis=${run.wrapped.params.features_in_step}) ${c.data} ${run.inverse_method} ${agg}`, async (t) => {
      const model = await OnnxModel.load(join(dir, c.model), { output: 'logits', maxBatchSize: 16 })
      t.teardown(() => model.close())
      const metric = new PixelFlipping({ featuresInStep: run.wrapped.params.features_in_step!, compat: 'quantus' })
      const r = await new QualityGapEstimator({ metric, inverse: run.inverse_method, compat: 'quantus', aggregate: agg }).evaluate(
        model,
        data,
      )
      const worst = Math.max(...run.qge!.map((v, i) => Math.abs(v - r.scores[i]!)))
      t.true(worst <= 1e-5, `max |Δ| = ${worst}`)
    })
  }
}

test('random baseline gap: Ψ(e) − mean Ψ(random), keyed by sample, shard-exact; chunky rankings', async (t) => {
  const { data, model, rand } = linearData(9, 6)
  const m = new RandomBaselineGap({ metric: new SymmetricRelevanceGain({ featuresInStep: 4 }), k: 3, chunk: 2, seed: 5 })
  const whole = await m.evaluate(model(), data)
  for (let s = 0; s < 6; s++) {
    const mean = (whole.random[3 * s]! + whole.random[3 * s + 1]! + whole.random[3 * s + 2]!) / 3
    t.is(whole.scores[s], whole.original[s]! - mean)
  }
  t.deepEqual(whole.original, (await new SymmetricRelevanceGain({ featuresInStep: 4 }).evaluate(model(), data)).scores)
  await checkShards(t, m, model, data, whole, rand)
  t.throws(() => new RandomBaselineGap({ metric: new PixelFlipping(), k: 0 }), { instanceOf: XaiEvalError })
})

test('latent quality: QGE of SRG orders random explanations almost exactly as SRG does; QB_K improves with K', async (t) => {
  const { data, model } = linearData(10, 3)
  const r = await latentQuality(model(), data, { metric: new SymmetricRelevanceGain({ featuresInStep: 3 }), explanations: 40, k: [1, 20] })
  t.is(r.quality.length, 3 * 40)
  // SRG is antisymmetric under the ranking inverse up to the order of tied channel copies, so
  // QGE ≈ 2 SRG orders the explanations almost as SRG itself.
  t.true(r.agreement.QGE!.mean.kendall > 0.9, String(r.agreement.QGE!.mean.kendall))
  t.true(r.agreement.QGE!.mean.kendall > r.agreement.QB1!.mean.kendall)
  t.true(r.agreement.QB20!.mean.kendall > r.agreement.QB1!.mean.kendall)
  // z-scores have mean 0 per input
  const z0 = r.z.subarray(0, 40).reduce((a, b) => a + b, 0)
  t.true(Math.abs(z0) < 1e-9)
})
