// ROAD, soundness and completeness over the public API: the imputer on its own, ROAD's removal
// semantics, determinism under seeds and batching, and the map + reduce shard invariance.
import test from 'ava'
import { Completeness, FunctionModel, impute, loadDemo, OnnxModel, Road, Soundness, XaiEvalError, type Dataset } from 'xai-eval'

import { argmax, batched, linearRowModel, prng } from './reference.js'

test('noisyLinear: nothing masked is an exact copy; everything masked is zeros plus noise', async (t) => {
  const r = prng(1)
  const x = Float32Array.from({ length: 2 * 3 * 4 }, () => r())
  t.deepEqual(await impute.noisyLinear(x, new Uint8Array(12), { shape: [2, 3, 4], noise: 0.5 }), x)
  t.deepEqual(await impute.noisyLinear(x, new Uint8Array(12).fill(1), { shape: [2, 3, 4], noise: 0 }), new Float32Array(24))
})

test('noisyLinear: a hole is the weighted mean of its 8 neighbours (1/6 direct, 1/12 diagonal)', async (t) => {
  // 3×3 image, centre masked: v = (4·(1/6)·direct + 4·(1/12)·diagonal) / 1.
  const x = Float32Array.from([1, 2, 3, 4, 100, 6, 7, 8, 9])
  const mask = Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0])
  const out = await impute.noisyLinear(x, mask, { shape: [1, 3, 3], noise: 0 })
  const expected = (2 + 4 + 6 + 8) / 6 + (1 + 3 + 7 + 9) / 12
  t.true(Math.abs(out[4]! - expected) < 1e-6, `${out[4]} vs ${expected}`)
  t.deepEqual([...out.slice(0, 4), ...out.slice(5)], [1, 2, 3, 4, 6, 7, 8, 9])
})

test('noisyLinear: same seed same noise, other seed other noise; batch = one by one', async (t) => {
  const r = prng(2)
  const x = Float32Array.from({ length: 3 * 5 * 5 }, () => r())
  const masks = Uint8Array.from({ length: 3 * 25 }, () => Number(r() < 0.4))
  const batch = await impute.noisyLinearBatch(x, masks, { shape: [3, 1, 5, 5], seed: 7 })
  t.deepEqual(await impute.noisyLinearBatch(x, masks, { shape: [3, 1, 5, 5], seed: 7 }), batch)
  t.notDeepEqual(await impute.noisyLinearBatch(x, masks, { shape: [3, 1, 5, 5], seed: 8 }), batch)
  const first = await impute.noisyLinear(x.subarray(0, 25), masks.subarray(0, 25), { shape: [1, 5, 5], seed: 7 })
  t.deepEqual(batch.subarray(0, 25), first)
})

test('noisyLinear: typed errors', async (t) => {
  const x = new Float32Array(12)
  const codeOf = async (p: Promise<unknown>) => {
    const e = await t.throwsAsync(p)
    t.true(e instanceof XaiEvalError, String(e))
    return [(e as XaiEvalError).code, (e as XaiEvalError).arg]
  }
  t.deepEqual(await codeOf(impute.noisyLinear(x, new Uint8Array(5), { shape: [1, 3, 4] })), ['SHAPE_MISMATCH', 'masks'])
  t.deepEqual(await codeOf(impute.noisyLinear(x, new Uint8Array(12).fill(2), { shape: [1, 3, 4] })), ['INVALID_OPTION', 'masks'])
  t.deepEqual(await codeOf(impute.noisyLinear(x, new Uint8Array(12), { shape: [1, 3, 4], noise: -1 })), ['INVALID_OPTION', 'noise'])
  t.deepEqual(
    await codeOf(
      impute.noisyLinear(
        Float32Array.from(x, () => NaN),
        new Uint8Array(12),
        { shape: [1, 3, 4] },
      ),
    ),
    ['NON_FINITE', 'x'],
  )
  t.deepEqual(await codeOf(impute.noisyLinear(x, new Uint8Array(12), { shape: [1, 3, 4], seed: -1 })), ['INVALID_OPTION', 'seed'])
})

/** A random linear classifier over `[N, C, H, W]` data with attributions, for fast exact runs. */
function setup(seed: number, n = 6, c = 2, h = 5, w = 4, classes = 3) {
  const r = prng(seed)
  const row = c * h * w
  const weights = Float64Array.from({ length: classes * row }, () => r() * 2 - 1)
  const bias = Float64Array.from({ length: classes }, () => r() - 0.5)
  const rowModel = linearRowModel(weights, bias)
  const x = Float32Array.from({ length: n * row }, () => r())
  const y = Array.from({ length: n }, (_, s) => argmax(rowModel(x.subarray(s * row, (s + 1) * row))))
  const a = Float32Array.from({ length: n * row }, () => r())
  const data: Dataset = { x, shape: [n, c, h, w], y, a }
  return { data, rowModel, model: (maxBatchSize: number) => new FunctionModel(batched(rowModel), { maxBatchSize, concurrency: 2 }) }
}

test('ROAD: MoRF removes the top p of pixels ranked by channel-summed attribution, LeRF the bottom p', async (t) => {
  const { data, rowModel } = setup(3, 1, 1, 2, 5)
  const seen: Float32Array[] = []
  const model = new FunctionModel(async (x, shape) => {
    for (let i = 0; i < shape[0]!; i++) seen.push(x.slice(i * 10, (i + 1) * 10))
    return batched(rowModel)(x, shape)
  })
  data.a.set([9, 1, 8, 2, 7, 3, 6, 4, 5, 0])
  await new Road({ order: 'morf', percentages: [0.2], noise: 0 }).evaluate(model, data)
  await new Road({ order: 'lerf', percentages: [0.2], noise: 0 }).evaluate(model, data)
  const changed = (row: Float32Array) => [...row.keys()].filter((i) => row[i] !== data.x[i])
  t.deepEqual(changed(seen[0]!), [0, 2]) // the two most relevant pixels
  t.deepEqual(changed(seen[1]!), [1, 9]) // the two least relevant
})

test('ROAD: results are identical for any batch size and repeat with the seed', async (t) => {
  const { data, model } = setup(4)
  const road = new Road({ seed: 5 })
  const a = await road.evaluate(model(1), data)
  const b = await road.evaluate(model(5), data)
  t.deepEqual(a.curves.probability.values, b.curves.probability.values)
  t.deepEqual(a.accuracy, b.accuracy)
  t.is(a.forwardPasses, 6 * 7)
  const other = await new Road({ seed: 6 }).evaluate(model(5), data)
  t.notDeepEqual(other.curves.probability.values, a.curves.probability.values)
  // accuracy is the data-set mean of the per-sample correctness curve
  const k = road.params.percentages.length
  for (let j = 0; j < k; j++) {
    let sum = 0
    for (let s = 0; s < 6; s++) sum += a.curves.correct.values[s * k + j]!
    t.is(a.accuracy[j], sum / 6)
  }
})

test("ROAD compat 'quantus': per-cent percentages, MoRF only, single-channel inputs only", async (t) => {
  t.is((t.throws(() => new Road({ compat: 'quantus', order: 'lerf' })) as XaiEvalError).arg, 'order')
  t.is((t.throws(() => new Road({ compat: 'quantus', percentages: [150] })) as XaiEvalError).arg, 'percentages.0')
  t.deepEqual(new Road({ compat: 'quantus' }).params.percentages.slice(0, 3), [1, 3, 5])
  const { data, model } = setup(5) // C = 2
  const e = await t.throwsAsync(new Road({ compat: 'quantus' }).evaluate(model(4), data))
  t.is((e as XaiEvalError).arg, 'compat')
})

test('ROAD: typed errors for its options', (t) => {
  t.is(t.throws(() => new Road({ percentages: [0.5, 1.5] }))?.message.startsWith('percentages'), true)
  t.is((t.throws(() => new Road({ noise: -1 })) as XaiEvalError).arg, 'noise')
  t.is((t.throws(() => new Road({ order: 'up' as 'morf' })) as XaiEvalError).arg, 'order')
})

for (const indicator of ['accuracy', 'score'] as const) {
  for (const compat of [undefined, 'soco'] as const) {
    test(`Soundness (${indicator}, ${compat ?? 'paper'}): 3 shards reduce to exactly the single-pass result`, async (t) => {
      const { data, model } = setup(10 + indicator.length, 9)
      const metric = new Soundness({ indicator, compat, seed: 3 })
      const whole = await metric.evaluate(model(4), data)
      const [, c, h, w] = data.shape
      const row = c * h * w
      const shard = (s0: number, s1: number) =>
        metric.map(
          model(s1 - s0 + 2),
          {
            x: data.x.subarray(s0 * row, s1 * row),
            shape: [s1 - s0, c, h, w],
            y: Array.from(data.y).slice(s0, s1),
            a: data.a.subarray(s0 * row, s1 * row),
          },
          { firstSample: s0 },
        )
      const parts = await Promise.all([shard(6, 9), shard(0, 2), shard(2, 6)])
      const sharded = metric.reduce(parts)
      t.deepEqual(sharded.scores, whole.scores)
      t.deepEqual(sharded.ratios, whole.ratios)
      t.deepEqual(sharded.curve, whole.curve)
      t.is(sharded.forwardPasses, whole.forwardPasses)
      t.is(whole.forwardPasses, 9 * metric.ratios.length)
    })
  }
}

test('Completeness: one clean pass per sample serves every threshold; 3 shards = single pass', async (t) => {
  const { data, model } = setup(21, 7)
  const metric = new Completeness({ indicator: 'score' })
  const whole = await metric.evaluate(model(3), data)
  t.is(whole.forwardPasses, 7 * (1 + metric.thresholds.length))
  const [, c, h, w] = data.shape
  const row = c * h * w
  const shard = (s0: number, s1: number) =>
    metric.map(
      model(2),
      {
        x: data.x.subarray(s0 * row, s1 * row),
        shape: [s1 - s0, c, h, w],
        y: Array.from(data.y).slice(s0, s1),
        a: data.a.subarray(s0 * row, s1 * row),
      },
      { firstSample: s0 },
    )
  const sharded = metric.reduce(await Promise.all([shard(4, 7), shard(0, 1), shard(1, 4)]))
  t.deepEqual(sharded.curve, whole.curve)
  t.deepEqual(sharded.scores, whole.scores)
  // the curve's difference is clean minus the indicator at each threshold
  whole.curve.difference.forEach((d, k) => {
    t.is(d, whole.curve.clean - whole.curve.indicator[k]!)
  })
})

test('Soundness rejects negative attributions in paper mode with a typed error', async (t) => {
  const { data, model } = setup(30)
  data.a[3] = -1
  const e = await t.throwsAsync(new Soundness().evaluate(model(4), data))
  t.true(e instanceof XaiEvalError, String(e))
  t.is((e as XaiEvalError).code, 'INVALID_OPTION')
})

test('Completeness on the demo model: occlusion maps are clearly more complete than random ones', async (t) => {
  const demo = await loadDemo()
  const model = await OnnxModel.load(demo.modelPath, { maxBatchSize: 128 })
  t.teardown(() => model.close())
  const n = 24
  const pick = (a: Float32Array) => ({
    x: demo.x.subarray(0, n * 784),
    shape: [n, 1, 28, 28] as const,
    y: demo.y.subarray(0, n),
    a: a.subarray(0, n * 784).map(Math.abs),
  })
  const completeness = new Completeness()
  const occlusion = await completeness.evaluate(model, pick(demo.attributions.occlusion!))
  const random = await completeness.evaluate(model, pick(demo.attributions.random!))
  t.true(occlusion.mean > random.mean + 0.05, `occlusion ${occlusion.mean} vs random ${random.mean}`)
})
