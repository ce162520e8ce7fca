// The ExplanationMetrics facade: autotimm's method names over several methods, explanations
// computed once per method and shared, single images, precomputed maps (n/a where they would have
// to explain new inputs), the comparison table (means, seeded bootstrap intervals, ranks by each
// metric's direction, paired tests), and typed errors.
import test, { type ExecutionContext } from 'ava'
import { DataRandomization, type ErrorCode, type Explainer, ExplanationMetrics, FunctionModel, PointingGame, XaiEvalError } from 'xai-eval'

import { batched, linearRowModel, prng } from './reference.js'

const [N, C, H, W, K] = [12, 1, 4, 4, 3]
const P = C * H * W
const rand = prng(41)
const weights = Float64Array.from({ length: K * P }, () => 8 * (rand() * 2 - 1)) // [K, P]: confident logits
const model = () => new FunctionModel(batched(linearRowModel(weights, new Float64Array(K))), { maxBatchSize: 16 })
const x = Float32Array.from({ length: N * P }, () => rand())
const y = Array.from({ length: N }, (_, i) => i % K)
const masks = Uint8Array.from({ length: N * P }, (_, j) => (j % P < 4 ? 1 : 0))

/** Gradient × input of the linear model (exact), counting the rows it explains (tests that count run serially). */
let explained = 0
const gradInput: Explainer = async (_m, xs, shape, targets) => {
  const [n] = shape
  explained += n
  const out = new Float32Array(n * P)
  for (let s = 0; s < n; s++) for (let i = 0; i < P; i++) out[s * P + i] = weights[targets[s]! * P + i]! * xs[s * P + i]!
  return out
}
const noise = Float32Array.from({ length: N * P }, () => rand() - 0.5)
const data = { x, shape: [N, C, H, W], y, masks }

test.serial(
  'evaluateAll: every metric for every method, explanations computed once per method; precomputed maps n/a where they must re-explain',
  async (t) => {
    const m = new ExplanationMetrics(model(), { explainers: { exact: gradInput, random: noise }, seed: 3 })
    explained = 0
    const progress: string[] = []
    const all = await m.evaluateAll(data, {
      sensitivity: { nSamples: 2 },
      deletion: { steps: 4, baseline: 0 },
      insertion: { steps: 4, baseline: 0 },
      onProgress: (p) => progress.push(`${p.metric} ${p.done}/${p.total}`),
    })
    t.deepEqual(progress, ['deletion 1/5', 'insertion 2/5', 'sensitivity 3/5', 'dataRandomization 4/5', 'pointingGame 5/5'])
    t.deepEqual(Object.keys(all), ['exact', 'random'])
    t.deepEqual(Object.keys(all.exact!).sort(), ['dataRandomization', 'deletion', 'insertion', 'pointingGame', 'sensitivity'])
    // N rows for the method's own explanations (once, shared), N·2 noisy rows, N random-class rows.
    t.is(explained, N + 2 * N + N)
    t.true('error' in all.random!.sensitivity!)
    t.regex((all.random!.dataRandomization as { error: string }).error, /precomputed maps/)
    t.false('error' in all.random!.deletion!)
    // The facade's numbers are the metric classes' on the method's explanations.
    const a = Float32Array.from({ length: N * P }, (_, j) => weights[y[Math.floor(j / P)]! * P + (j % P)]! * x[j]!)
    const direct = await new DataRandomization({ explainer: gradInput, seed: 3 }).evaluate(model(), {
      x,
      shape: [N, C, H, W],
      y,
      a,
      aShape: [N, 1, H, W],
    })
    t.deepEqual((all.exact!.dataRandomization as typeof direct).scores, direct.scores)
    const pg = await new PointingGame().evaluate(model(), { x, shape: [N, C, H, W], y, a: noise, aShape: [N, 1, H, W], masks })
    t.deepEqual((all.random!.pointingGame as typeof pg).scores, pg.scores)
    // Asking again reuses the explanations.
    explained = 0
    await m.deletion(data, { steps: 4 })
    t.is(explained, 0)
  },
)

test('single images are accepted (shape [C, H, W], y a number)', async (t) => {
  const m = new ExplanationMetrics(model(), { explainers: { exact: gradInput } })
  const one = await m.pointingGame({ x: x.slice(0, P), shape: [C, H, W], y: 1 }, { boxes: [0, 0, 2, 2] })
  t.is(one.exact!.samples, 1)
})

test('a single image through evaluateAll scores as the first sample of a data set, on every metric', async (t) => {
  // Every random draw is keyed by the global sample index: the image alone is sample 0.
  const m = new ExplanationMetrics(model(), { explainers: { exact: gradInput, maps: noise.slice(0, P) }, seed: 2 })
  const options = { sensitivity: { nSamples: 3 }, deletion: { steps: 4 }, insertion: { steps: 4 } }
  const one = await m.evaluateAll({ x: x.slice(0, P), shape: [C, H, W], y: y[0]!, masks: masks.slice(0, P) }, options)
  const m2 = new ExplanationMetrics(model(), { explainers: { exact: gradInput, maps: noise.slice(0, 2 * P) }, seed: 2 })
  const two = await m2.evaluateAll({ x: x.slice(0, 2 * P), shape: [2, C, H, W], y: y.slice(0, 2), masks: masks.slice(0, 2 * P) }, options)
  t.deepEqual(Object.keys(one.exact!).sort(), ['dataRandomization', 'deletion', 'insertion', 'pointingGame', 'sensitivity'])
  for (const method of ['exact', 'maps'] as const) {
    for (const [metric, r] of Object.entries(one[method]!)) {
      if ('error' in r) {
        t.true('error' in two[method]![metric as 'deletion']!, `${method} ${metric}`)
        continue
      }
      t.is(r.samples, 1)
      t.is(r.scores[0], (two[method]![metric as 'deletion'] as typeof r).scores[0], `${method} ${metric}`)
    }
  }
})

test('compareMethods: ranks by direction, bootstrap intervals around the mean, paired tests, seeded', async (t) => {
  // On the object (pointing game 1 for every sample), off it (0), and random maps.
  const inside = Float32Array.from(masks, (v, j) => v + 0.01 * noise[j]!)
  const outside = Float32Array.from(masks, (v, j) => 1 - v + 0.01 * noise[j]!)
  const m = new ExplanationMetrics(model(), { explainers: { exact: gradInput, inside, outside }, seed: 1 })
  const table = await m.compareMethods(data, {
    metrics: ['deletion', 'insertion', 'pointingGame'],
    resamples: 500,
    deletion: { steps: 4 },
    insertion: { steps: 4 },
  })
  t.deepEqual(table.methods, ['exact', 'inside', 'outside'])
  t.deepEqual(table.metrics, [
    { id: 'deletion', higherIsBetter: false },
    { id: 'insertion', higherIsBetter: true },
    { id: 'pointingGame', higherIsBetter: true },
  ])
  for (const metric of ['deletion', 'insertion', 'pointingGame'] as const) {
    const cells = table.cells.filter((c) => c.metric === metric)
    const dir = table.metrics.find((x) => x.id === metric)!.higherIsBetter ? -1 : 1
    const sorted = [...cells].sort((p, q) => dir * (p.mean - q.mean) || p.rank - q.rank)
    t.deepEqual(
      sorted.map((c) => c.rank),
      [1, 2, 3],
      metric,
    )
    for (const c of cells) {
      t.true(c.ci[0] <= c.mean + 1e-12 && c.mean <= c.ci[1] + 1e-12, `${metric} ${c.method}`)
      t.is(c.n, N)
      if (c.rank === 1) t.true(Number.isNaN(c.pValue) && !c.significant)
      else t.true(c.pValue >= 0 && c.pValue <= 1)
    }
  }
  // Maps on the object win the pointing game; maps off it lose, significantly (every paired difference is 1).
  const pg = table.cells.filter((c) => c.metric === 'pointingGame')
  t.is(pg.find((c) => c.method === 'inside')!.mean, 1)
  t.is(pg.find((c) => c.method === 'inside')!.rank, 1)
  const off = pg.find((c) => c.method === 'outside')!
  t.is(off.rank, 3)
  t.deepEqual(off.ci, [0, 0])
  t.true(off.significant)
  t.is(off.pValue, 0) // every paired difference is 1: no bootstrap replicate crosses 0
  const again = await m.compareMethods(data, {
    metrics: ['deletion', 'insertion', 'pointingGame'],
    resamples: 500,
    deletion: { steps: 4 },
    insertion: { steps: 4 },
  })
  t.deepEqual(
    again.cells.map((c) => [c.ci, c.pValue]),
    table.cells.map((c) => [c.ci, c.pValue]),
  )
  t.regex(table.toString(), /insertion ↑/)
})

async function rejects(t: ExecutionContext, p: Promise<unknown> | (() => unknown), code: ErrorCode, arg?: string): Promise<void> {
  const e = typeof p === 'function' ? t.throws(p as () => unknown) : await t.throwsAsync(p)
  t.true(e instanceof XaiEvalError, String(e))
  t.is((e as XaiEvalError).code, code, (e as Error).message)
  if (arg !== undefined) t.is((e as XaiEvalError).arg, arg, (e as Error).message)
}

test('typed errors', async (t) => {
  await rejects(t, () => new ExplanationMetrics(model(), { explainers: {} }), 'INVALID_OPTION', 'explainers')
  await rejects(t, () => new ExplanationMetrics(model(), { explainers: { a: 3 as never } }), 'INVALID_OPTION', 'explainers.a')
  await rejects(t, () => new ExplanationMetrics({} as never, { explainers: { exact: gradInput } }), 'INVALID_OPTION', 'model')
  const m = new ExplanationMetrics(model(), { explainers: { exact: gradInput, short: new Float32Array(5) } })
  await rejects(t, m.modelParameterRandomizationTest(data), 'INVALID_OPTION', 'onnx')
  await rejects(t, m.deletion(data, { steps: 4 }), 'SHAPE_MISMATCH', 'explainers.short')
  await rejects(t, m.evaluateAll(data, { metrics: ['nope' as never] }), 'INVALID_OPTION', 'metrics.0')
  await rejects(t, m.compareMethods(data, { confidence: 1 }), 'INVALID_OPTION', 'confidence')
  await rejects(t, m.deletion({ ...data, shape: [N, C, H] }), 'SHAPE_MISMATCH')
  await rejects(t, m.deletion(null as never), 'INVALID_OPTION', 'data')
  // Options that are not an object are refused, not read as "all defaults".
  await rejects(t, m.deletion(data, 3 as never), 'INVALID_OPTION', 'options')
  await rejects(t, m.pointingGame(data, true as never), 'INVALID_OPTION', 'options')
  await rejects(t, m.deletion({ ...data, shape: [N, C, 2 ** 20, 2 ** 20] }), 'SHAPE_MISMATCH', 'x')
  await rejects(t, m.deletion({ ...data, shape: 'abc' as never }), 'SHAPE_MISMATCH', 'shape')
  const ac = new AbortController()
  ac.abort()
  await rejects(t, m.evaluateAll(data, { signal: ac.signal }), 'ABORTED')
})
