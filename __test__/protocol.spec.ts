// The metric protocol: shards of any split reduce to the single pass bit for bit (randomness keyed
// by the global sample), the reduce refuses gaps, overlaps and foreign shards, costs are the
// evaluation's own, results survive JSON exactly, and the registry rebuilds every metric.
import test from 'ava'
import {
  Completeness,
  createMetric,
  Deletion,
  FunctionModel,
  Insertion,
  type Metric,
  type MetricResult,
  PixelFlipping,
  registry,
  Road,
  resultFromJSON,
  type Shard,
  Soundness,
  SymmetricRelevanceGain,
  XaiEvalError,
  type Dataset,
} from 'xai-eval'

import { batched, linearRowModel, prng } from './reference.js'
import { checkShards, slice } from './shards.js'

function setup(seed: number, n = 9) {
  const rand = prng(seed)
  const [c, h, w, k] = [2, 6, 6, 3]
  const f = c * h * w
  const data: Dataset = {
    x: Float32Array.from({ length: n * f }, () => rand() - 0.5),
    shape: [n, c, h, w],
    y: Array.from({ length: n }, (_, i) => i % k),
    a: Float32Array.from({ length: n * h * w }, () => rand()),
    aShape: [n, 1, h, w],
  }
  const weights = Float64Array.from({ length: k * f }, () => rand() - 0.5)
  const model = () => new FunctionModel(batched(linearRowModel(weights, new Float64Array(k))), { maxBatchSize: 5 })
  return { data, model, rand }
}

const uniform = { uniform: [-1, 1] as const }
const metrics = (): [string, Metric<object, MetricResult>][] => [
  ['pixel flipping, uniform baseline', new PixelFlipping({ featuresInStep: 7, baseline: uniform, seed: 3 })],
  ['SRG, uniform baseline', new SymmetricRelevanceGain({ featuresInStep: 9, baseline: uniform, seed: 4 })],
  ['Deletion, uniform substrate', new Deletion({ steps: 6, baseline: uniform })],
  ['Insertion, blur', new Insertion({ steps: 5 })],
  ['ROAD, noise 0.5', new Road({ noise: 0.5, percentages: [0.2, 0.5, 0.8] })],
  ['Soundness', new Soundness({ noise: 0.2 })],
  ['Completeness', new Completeness({ noise: 0.2 })],
]

for (const [name, metric] of metrics()) {
  test(`${name}: 1…7 shards in any order reduce to the single pass bit for bit`, async (t) => {
    const { data, model, rand } = setup(11)
    const whole = await metric.evaluate(model(), data)
    await checkShards(t, metric, model, data, whole, rand)
  })
}

test('a sample scores the same in any shard: ROAD noise and uniform baselines follow the global index', async (t) => {
  const { data, model } = setup(2, 6)
  for (const metric of [new Road({ noise: 0.5 }), new SymmetricRelevanceGain({ baseline: uniform, featuresInStep: 8 })]) {
    const whole = await metric.evaluate(model(), data)
    const part = await metric.evaluate(model(), slice(data, 2, 4), { firstSample: 2 })
    t.deepEqual(part.scores, whole.scores.subarray(2, 4))
    t.is(part.firstSample, 2)
    // Without firstSample, the same samples are samples 0 and 1 of another data set: other draws.
    const misplaced = await metric.evaluate(model(), slice(data, 2, 4))
    t.notDeepEqual(misplaced.scores, whole.scores.subarray(2, 4))
  }
})

test('reduce refuses gaps, overlaps, other parameters, other metrics and versions', async (t) => {
  const { data, model } = setup(3, 6)
  const srg = new SymmetricRelevanceGain({ featuresInStep: 12 })
  const at = (s0: number, s1: number, m: Metric<object, MetricResult> = srg) => m.map(model(), slice(data, s0, s1), { firstSample: s0 })
  const refuse = (shards: Shard[], pattern: RegExp, m: Metric<object, MetricResult> = srg) => {
    const e = t.throws(() => m.reduce(shards)) as XaiEvalError
    t.true(e instanceof XaiEvalError, String(e))
    t.regex(e.message, pattern)
  }
  refuse([await at(0, 2), await at(3, 6)], /samples 2…2 are in no shard/)
  refuse([await at(0, 4), await at(3, 6)], /overlap: samples 3…3/)
  refuse([await at(0, 3), await at(0, 3)], /overlap/)
  refuse([await at(0, 3), await at(3, 6, new SymmetricRelevanceGain({ featuresInStep: 6 }))], /other parameters/)
  refuse([await at(0, 3), await at(3, 6, new PixelFlipping({ featuresInStep: 12 }))], /shard of 'pixel-flipping'/)
  refuse([{ ...(await at(0, 3)), version: 99 }], /version 99/)
  refuse([], /non-empty/)
  const sound = new Soundness({ noise: 0 })
  const d = { ...data, a: data.a }
  const s1 = await sound.map(model(), slice(d, 0, 3))
  refuse([s1, s1], /overlap/, sound)
})

test('costs are per evaluation: 8 concurrent evaluations on one model each report their own rows', async (t) => {
  const { data, model } = setup(4, 6)
  const m = new FunctionModel(
    async (x, shape) => {
      await new Promise((r) => setTimeout(r, 1))
      return batched(linearRowModel(new Float64Array(3 * 72).fill(0.01), new Float64Array(3)))(x, shape)
    },
    { maxBatchSize: 7, concurrency: 3 },
  )
  const alone = await new SymmetricRelevanceGain({ featuresInStep: 8 }).evaluate(model(), data)
  const results = await Promise.all(Array.from({ length: 8 }, () => new SymmetricRelevanceGain({ featuresInStep: 8 }).evaluate(m, data)))
  for (const r of results) t.is(r.forwardPasses, alone.forwardPasses)
  t.is(m.stats.rows, 8 * alone.forwardPasses)
})

test('results and metrics survive JSON exactly: typed arrays, NaN and the metric’s identity', async (t) => {
  const { data, model } = setup(5, 4)
  for (const [, metric] of metrics()) {
    const r = await metric.evaluate(model(), data)
    const text = JSON.stringify(r)
    const back = resultFromJSON(text)
    t.deepEqual({ ...back }, { ...r })
    t.is(JSON.stringify(back), text)
    const again = createMetric(JSON.parse(JSON.stringify(metric)))
    t.deepEqual(again.params, metric.params)
    t.is(again.meta, metric.meta)
  }
  // NaN scores (a zero original score) stay NaN
  const zero = new FunctionModel(async (_x, shape) => new Float32Array(shape[0]! * 2), {
    returns: 'probabilities',
    output: 'probabilities',
  })
  const del = await new Deletion({ steps: 4 }).evaluate(zero, { ...data, y: [0, 0, 0, 0] })
  t.true(Number.isNaN(del.finalDrop[0]))
  t.true(Number.isNaN(resultFromJSON<typeof del>(JSON.stringify(del)).finalDrop[0]))
})

test('the registry: every metric has a stable id, a direction, a version, its needs and its cost', (t) => {
  t.true(registry.size >= 8)
  for (const [id, cls] of registry) {
    t.is(cls.meta.id, id)
    t.is(typeof cls.meta.higherIsBetter, 'boolean')
    t.true(Number.isInteger(cls.meta.version) && cls.meta.version >= 1)
    t.true(cls.meta.needs.length > 0)
    t.true(cls.meta.cost.length > 0 && cls.meta.reference.length > 0)
  }
  const e = t.throws(() => createMetric({ id: 'deleton' })) as XaiEvalError
  t.regex(e.message, /did you mean 'deletion'/)
  t.throws(() => createMetric({ id: 'srg', version: 2 }), { message: /version/ })
})

test('map options are checked: a non-signal, a non-function progress, a negative firstSample', async (t) => {
  const { data, model } = setup(6, 3)
  const srg = new SymmetricRelevanceGain({ featuresInStep: 12 })
  for (const [options, arg] of [
    [{ signal: {} }, 'signal'],
    [{ signal: 'abc' }, 'signal'],
    [{ onProgress: 3 }, 'onProgress'],
    [{ firstSample: -1 }, 'firstSample'],
    [{ firstSample: 1.5 }, 'firstSample'],
    [{ signall: new AbortController().signal }, 'signall'],
  ] as const) {
    const e = await t.throwsAsync(srg.evaluate(model(), data, options as never))
    t.true(e instanceof XaiEvalError && e.code === 'INVALID_OPTION' && e.arg === arg, `${JSON.stringify(options)}: ${String(e)}`)
  }
})
