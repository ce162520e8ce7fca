// FaithfulnessCorrelation, FaithfulnessEstimate, Monotonicity and MonotonicityCorrelation:
// agreement with the plain references, hand-worked values on linear models, the shard property,
// parity with quantus 0.6.0 (fixtures) and the typed errors of every option.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import test from 'ava'
import {
  createMetric,
  type Dataset,
  FaithfulnessCorrelation,
  FaithfulnessEstimate,
  FunctionModel,
  type FunctionModelOptions,
  type Metric,
  type MetricResult,
  Monotonicity,
  MonotonicityCorrelation,
  OnnxModel,
  XaiEvalError,
} from 'xai-eval'

import { batched, linearRowModel, prng, type RowModel } from './reference.js'
import {
  faithfulnessCorrelationRef,
  faithfulnessEstimateRef,
  KeyedRng,
  monotonicityCorrelationRef,
  monotonicityRef,
  PERTURBATION,
  quantusMonotonicityUniformRef,
} from './reference-faithfulness.js'

type Shape = [number, number, number, number]

function randomSetup(seed: number, shape: Shape, k = 3, aChannels = shape[1]) {
  const rand = prng(seed)
  const [n, c, h, w] = shape
  const rowLen = c * h * w
  const x = Float32Array.from({ length: n * rowLen }, () => rand() * 2 - 1)
  const a = Float32Array.from({ length: n * aChannels * h * w }, () => rand() * 2 - 1)
  const y = Array.from({ length: n }, () => Math.floor(rand() * k))
  const row = linearRowModel(
    Float64Array.from({ length: k * rowLen }, () => rand() * 4 - 2),
    Float64Array.from({ length: k }, () => rand() - 0.5),
  )
  const data: Dataset & { shape: Shape } = { x, shape, y, a, aShape: [n, aChannels, h, w] }
  return { data, row, model: (o: FunctionModelOptions = {}) => new FunctionModel(batched(row), { maxBatchSize: 5, ...o }) }
}

function close(t: import('ava').ExecutionContext, actual: ArrayLike<number>, expected: readonly number[], tol: number, what: string) {
  t.is(actual.length, expected.length, `${what}: length`)
  let worst = 0
  for (let i = 0; i < expected.length; i++) {
    const [p, q] = [actual[i]!, expected[i]!]
    if (Number.isNaN(q)) t.true(Number.isNaN(p), `${what}[${i}]: expected NaN, got ${p}`)
    else worst = Math.max(worst, Math.abs(p - q))
  }
  t.true(worst <= tol, `${what}: max |Δ| = ${worst}`)
}

// ---------------------------------------------------------------------------------------------
// (1) Agreement with the plain references on random inputs

for (const [name, shape, aChannels] of [
  ['gray', [4, 1, 4, 5], 1],
  ['rgb, per-pixel attribution', [3, 3, 3, 3], 1],
  ['rgb, per-entry attribution', [3, 2, 3, 3], 2],
] as const) {
  test(`FaithfulnessCorrelation = reference (${name})`, async (t) => {
    const { data, row, model } = randomSetup(11, [...shape], 3, aChannels)
    for (const [opts, ref] of [
      [
        { nrRuns: 12, subsetSize: 5, seed: 3 },
        { baseline: 0, softmax: true },
      ],
      [
        { nrRuns: 7, subsetSize: 2, compat: 'quantus' as const },
        { baseline: 'min', softmax: false },
      ],
    ] as const) {
      const r = await new FaithfulnessCorrelation(opts).evaluate(model(), data, { firstSample: 4 })
      const expected = faithfulnessCorrelationRef(row, data, { seed: 0, ...opts, ...ref, firstSample: 4 })
      close(t, r.scores, expected, 1e-9, JSON.stringify(opts))
      t.is(r.forwardPasses, data.shape[0] * (1 + opts.nrRuns))
    }
  })

  test(`FaithfulnessEstimate = reference (${name})`, async (t) => {
    const { data, row, model } = randomSetup(12, [...shape], 3, aChannels)
    const F = shape[1] * shape[2] * shape[3]
    for (const [opts, ref] of [
      [{}, { featuresInStep: 1, baseline: 0, abs: false, softmax: true }],
      [
        { featuresInStep: 4, abs: true, baseline: -0.5 },
        { featuresInStep: 4, baseline: -0.5, abs: true, softmax: true },
      ],
      [
        { featuresInStep: 1, compat: 'quantus' as const },
        { featuresInStep: 1, baseline: 'min', abs: false, softmax: false },
      ],
    ] as const) {
      const r = await new FaithfulnessEstimate(opts).evaluate(model(), data)
      close(t, r.scores, faithfulnessEstimateRef(row, data, ref), 1e-9, JSON.stringify(opts))
      t.is(r.forwardPasses, data.shape[0] * (1 + Math.ceil(F / ref.featuresInStep)))
    }
  })

  test(`MonotonicityCorrelation = reference (${name})`, async (t) => {
    const { data, row, model } = randomSetup(13, [...shape], 3, aChannels)
    const F = shape[1] * shape[2] * shape[3]
    for (const opts of [
      { featuresInStep: 2, nrSamples: 3, seed: 5 },
      { featuresInStep: 1, nrSamples: 4, baseline: { uniform: [-1, 2] as [number, number] }, seed: 1 },
      { featuresInStep: 3, nrSamples: 5, baseline: 0.25 },
    ]) {
      const r = await new MonotonicityCorrelation(opts).evaluate(model(), data, { firstSample: 2 })
      const baseline = opts.baseline ?? { uniform: [0, 1] as [number, number] }
      close(t, r.scores, monotonicityCorrelationRef(row, data, { ...opts, baseline, firstSample: 2 }), 1e-9, JSON.stringify(opts))
      const reps = typeof baseline === 'number' ? 1 : opts.nrSamples
      t.is(r.forwardPasses, data.shape[0] * (1 + Math.ceil(F / opts.featuresInStep) * reps), 'fixed baselines: one row per group')
    }
  })

  test(`Monotonicity = reference (${name})`, async (t) => {
    const { data, row, model } = randomSetup(14, [...shape], 3, aChannels)
    for (const [opts, ref] of [
      [{}, { featuresInStep: 1, baseline: 0, abs: false }],
      [
        { featuresInStep: 3, baseline: 'min' as const, abs: true },
        { featuresInStep: 3, baseline: 'min', abs: true },
      ],
    ] as const) {
      const r = await new Monotonicity(opts).evaluate(model(), data)
      t.deepEqual(Array.from(r.scores), monotonicityRef(row, data, ref), JSON.stringify(opts))
    }
    const q = await new Monotonicity({ compat: 'quantus', baseline: 'uniform', featuresInStep: 1, seed: 9 }).evaluate(model(), data, {
      firstSample: 3,
    })
    t.deepEqual(Array.from(q.scores), quantusMonotonicityUniformRef(row, data, { featuresInStep: 1, seed: 9, firstSample: 3 }))
  })
}

test('keyed draws: the TS mirror reproduces the pinned Rust values', (t) => {
  t.deepEqual(KeyedRng.keyed(7, 3, 4n, 2).subset(10, 4), [9, 4, 5, 1])
  t.is(KeyedRng.keyed(0, 0, 1n, 0).nextU64(), 17_620_060_956_121_287_104n)
  t.true(KeyedRng.keyed(0, 0, PERTURBATION, 0).uniform() < 1)
})

// ---------------------------------------------------------------------------------------------
// (2) Hand-worked values on linear models

/** A `[1, 1, 1, d]` data set for a linear model with weights `w` (class 0) and gradient×input attributions. */
function linearCase(w: number[], x: number[]) {
  const d = w.length
  const row: RowModel = (r) => {
    let z = 0
    for (let i = 0; i < d; i++) z += w[i]! * r[i]!
    return Float32Array.of(z, 0)
  }
  const data: Dataset = { x: Float32Array.from(x), shape: [1, 1, 1, d], y: [0], a: Float32Array.from(w, (wi, i) => wi * x[i]!) }
  return { data, row }
}

test('hand-worked: gradient×input of a linear model is perfectly faithful (logits, baseline 0)', async (t) => {
  const { data, row } = linearCase([1, -2, 0.5, 3, -1, 2], [0.5, 1, -2, 0.25, 1.5, -0.75])
  // Logits: removing a set S drops the logit by Σ_S w_i x_i = Σ_S a_i exactly.
  const logits = () => new FunctionModel(batched(row), { output: 'logits' })
  const fc = await new FaithfulnessCorrelation({ nrRuns: 10, subsetSize: 3 }).evaluate(logits(), data)
  t.true(Math.abs(fc.scores[0]! - 1) < 1e-12, `${fc.scores[0]}`)
  const fe = await new FaithfulnessEstimate({ compat: 'quantus', baseline: 0 }).evaluate(logits(), data)
  t.true(Math.abs(fe.scores[0]! - 1) < 1e-12, `${fe.scores[0]}`)
  // A model returning its "probability" directly: the squared change of group k is a_k², a
  // monotone function of |a_k|, so Spearman's ρ is 1.
  const direct = new FunctionModel(batched(row), { returns: 'probabilities' })
  const mc = await new MonotonicityCorrelation({ baseline: 0 }).evaluate(direct, data)
  t.is(mc.scores[0], 1)
  // Putting features back in ascending order of a = w·x: the score rises exactly when a > 0.
  t.is((await new Monotonicity().evaluate(direct, data)).scores[0], 0)
  const positive = linearCase([1, 2, 3], [1, 1, 1])
  const pd = new FunctionModel(batched(positive.row), { returns: 'probabilities' })
  t.is((await new Monotonicity().evaluate(pd, positive.data)).scores[0], 1)
})

test('hand-worked: FaithfulnessEstimate on 3 features, by hand', async (t) => {
  // Quantus's FaithfulnessEstimate scores logits: logit = x0 + 2 x1 − x2, x = (1, 1, 1),
  // baseline 0 → removing feature i drops the logit by (1, 2, −1)_i; a = (3, 1, 2).
  const { row } = linearCase([1, 2, -1], [1, 1, 1])
  const data: Dataset = { x: Float32Array.of(1, 1, 1), shape: [1, 1, 1, 3], y: [0], a: Float32Array.of(3, 1, 2) }
  const r = await new FaithfulnessEstimate({ compat: 'quantus', baseline: 0 }).evaluate(new FunctionModel(batched(row)), data)
  // Sorted by a: groups (3 → drop 1), (2 → drop −1), (1 → drop 2); means 2 and 2/3;
  // Σ dx·dy = (1)(1/3) + (0)(−5/3) + (−1)(4/3) = −1; Σ dx² = 2; Σ dy² = 1/9 + 25/9 + 16/9 = 42/9.
  t.true(Math.abs(r.scores[0]! - -1 / Math.sqrt(2 * (42 / 9))) < 1e-12, `${r.scores[0]}`)
})

test('undefined correlations are NaN with a reason', async (t) => {
  const { row } = linearCase([1, 2, -1, 0.5], [1, 1, 1, 1])
  const data: Dataset = { x: Float32Array.of(1, 1, 1, 1), shape: [1, 1, 1, 4], y: [0], a: Float32Array.of(1, 1, 1, 1) }
  const r = await new FaithfulnessEstimate().evaluate(new FunctionModel(batched(row)), data, { firstSample: 7 })
  t.true(Number.isNaN(r.scores[0]!))
  t.is(r.skipped, 1)
  t.deepEqual(r.undefinedScores, [
    { sample: 7, reason: 'the attribution sums are constant over the feature groups: correlation undefined' },
  ])
  const flat: RowModel = () => Float32Array.of(0, 0)
  const m = await new MonotonicityCorrelation({ nrSamples: 2 }).evaluate(new FunctionModel(batched(flat)), {
    ...data,
    a: Float32Array.of(1, 2, 3, 4),
  })
  t.regex(m.undefinedScores[0]!.reason, /prediction changes are constant/)
  // A non-finite model output never reaches a correlation: the engine refuses it, typed.
  const infinite: RowModel = () => Float32Array.of(Number.POSITIVE_INFINITY, 0)
  await t.throwsAsync(
    new FaithfulnessEstimate({ compat: 'quantus' }).evaluate(new FunctionModel(batched(infinite)), {
      ...data,
      a: Float32Array.of(1, 2, 3, 4),
    }),
    { instanceOf: XaiEvalError, code: 'NON_FINITE' },
  )
})

// ---------------------------------------------------------------------------------------------
// (3) Shards: any split, in any order, reduces to the single evaluation bit for bit

const shardCases: [string, () => Metric<object, MetricResult>][] = [
  ['FaithfulnessCorrelation', () => new FaithfulnessCorrelation({ nrRuns: 6, subsetSize: 4, seed: 2 })],
  ['FaithfulnessEstimate', () => new FaithfulnessEstimate({ featuresInStep: 2 })],
  ['MonotonicityCorrelation', () => new MonotonicityCorrelation({ featuresInStep: 3, nrSamples: 3, seed: 4 })],
  ['Monotonicity', () => new Monotonicity({ featuresInStep: 2, target: 'predicted' })],
  ['Monotonicity (quantus, uniform)', () => new Monotonicity({ compat: 'quantus', baseline: 'uniform', featuresInStep: 2 })],
]

for (const [name, make] of shardCases) {
  test(`${name}: 1…7 shards in random order reduce to the single evaluation exactly`, async (t) => {
    const { data, model } = randomSetup(21, [9, 2, 2, 3], 3, 1)
    const metric = make()
    const whole = await metric.evaluate(model({ maxBatchSize: 7 }), data)
    const rand = prng(5)
    const rowLen = 2 * 2 * 3
    const aLen = 2 * 3
    for (let k = 1; k <= 7; k++) {
      const cuts = new Set<number>()
      while (cuts.size < k - 1) cuts.add(1 + Math.floor(rand() * 8))
      const bounds = [0, ...[...cuts].sort((p, q) => p - q), 9]
      const parts = bounds.slice(1).map((end, i) => [bounds[i]!, end] as const)
      parts.sort(() => rand() - 0.5)
      const shards = await Promise.all(
        parts.map(([s0, s1]) =>
          make().map(
            model({ maxBatchSize: 1 + Math.floor(rand() * 6) }),
            {
              x: data.x.subarray(s0 * rowLen, s1 * rowLen),
              shape: [s1 - s0, 2, 2, 3],
              y: Array.from(data.y).slice(s0, s1),
              a: data.a.subarray(s0 * aLen, s1 * aLen),
              aShape: [s1 - s0, 1, 2, 3],
            },
            { firstSample: s0 },
          ),
        ),
      )
      const reduced = metric.reduce(shards)
      t.deepEqual(reduced.scores, whole.scores, `${k} shards`)
      t.is(reduced.forwardPasses, whole.forwardPasses)
    }
  })
}

// ---------------------------------------------------------------------------------------------
// (4) Parity with quantus 0.6.0 (scripts/make_quantus_faithfulness_fixture.py)

interface FixtureRun {
  metric: string
  params: Record<string, unknown>
  scores: (number | boolean)[]
  rngSeed?: number
}
const dir = join(import.meta.dirname, 'fixtures', 'quantus')
for (const name of ['faithfulness-gray', 'faithfulness-rgb']) {
  const f = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { data: string; model: string; runs: FixtureRun[] }
  const src = JSON.parse(readFileSync(join(dir, f.data), 'utf8')) as {
    x: number[]
    a: number[]
    y: number[]
    shape: Shape
    aShape: number[]
  }
  const data: Dataset = { x: Float32Array.from(src.x), a: Float32Array.from(src.a), y: src.y, shape: src.shape, aShape: src.aShape }
  const ours: Record<string, (p: Record<string, unknown>, seed: number) => Metric<object, MetricResult>> = {
    FaithfulnessCorrelation: (p, seed) =>
      new FaithfulnessCorrelation({
        compat: 'quantus',
        nrRuns: p.nr_runs as number,
        subsetSize: p.subset_size as number,
        baseline: p.perturb_baseline as 'black',
        seed,
      }),
    FaithfulnessEstimate: (p) =>
      new FaithfulnessEstimate({
        compat: 'quantus',
        featuresInStep: p.features_in_step as number,
        baseline: p.perturb_baseline as 'black',
        abs: p.abs as boolean,
      }),
    Monotonicity: (p, seed) =>
      new Monotonicity({
        compat: 'quantus',
        featuresInStep: p.features_in_step as number,
        baseline: p.perturb_baseline as 'black',
        abs: p.abs as boolean,
        seed,
      }),
    MonotonicityCorrelation: (p, seed) =>
      new MonotonicityCorrelation({
        compat: 'quantus',
        featuresInStep: p.features_in_step as number,
        nrSamples: p.nr_samples as number,
        baseline: p.perturb_baseline as 'black',
        abs: p.abs as boolean,
        seed,
      }),
  }
  for (const run of f.runs) {
    const make = ours[run.metric]
    if (!make) continue
    test(`${name}: ${run.metric} ${JSON.stringify(run.params).slice(0, 90)} matches quantus 0.6.0`, async (t) => {
      const model = await OnnxModel.load(join(dir, f.model), { output: 'logits', maxBatchSize: 64 })
      t.teardown(() => model.close())
      const r = await make(run.params, run.rngSeed ?? 0).evaluate(model, data)
      close(t, r.scores, run.scores.map(Number), 1e-5, 'scores')
    })
  }
}

// ---------------------------------------------------------------------------------------------
// (5) Every option error is typed

const typed = { instanceOf: XaiEvalError, code: 'INVALID_OPTION' } as const

test('option errors are typed', (t) => {
  const bad: [new (o?: never) => unknown, unknown][] = [
    [FaithfulnessCorrelation, { nrRuns: 1 }],
    [FaithfulnessCorrelation, { nrRuns: 1e9 }],
    [FaithfulnessCorrelation, { subsetSize: 0 }],
    [FaithfulnessCorrelation, { subsetSize: 2.5 }],
    [FaithfulnessCorrelation, { baseline: 'black' }],
    [FaithfulnessCorrelation, { baseline: { uniform: [0, 1] }, compat: 'quantus' }],
    [FaithfulnessEstimate, { baseline: { uniform: [0, 1] }, compat: 'quantus' }],
    [FaithfulnessCorrelation, { seed: -1 }],
    [FaithfulnessCorrelation, { compat: 'captum' }],
    [FaithfulnessCorrelation, { nrRun: 3 }],
    [FaithfulnessEstimate, { featuresInStep: 0 }],
    [FaithfulnessEstimate, { baseline: 'white' }],
    [FaithfulnessEstimate, { baseline: { blur: 0 } }],
    [FaithfulnessEstimate, { abs: 1 }],
    [Monotonicity, { baseline: 'uniform' }],
    [Monotonicity, { baseline: { uniform: [0, 1] } }],
    [Monotonicity, { compat: 'quantus', baseline: 'min' }],
    [Monotonicity, { compat: 'quantus', target: 'predicted' }],
    [Monotonicity, { target: 'other' }],
    [MonotonicityCorrelation, { nrSamples: 0 }],
    [MonotonicityCorrelation, { nrSamples: 1e6 }],
    [MonotonicityCorrelation, { baseline: { uniform: [1, 0] } }],
    [MonotonicityCorrelation, { baseline: 'uniform' }],
    [MonotonicityCorrelation, { eps: 1e-5 }],
  ]
  for (const [cls, opts] of bad) t.throws(() => new cls(opts as never), typed, `${cls.name} ${JSON.stringify(opts)}`)
})

test('data-dependent option errors are typed', async (t) => {
  const { data, model } = randomSetup(31, [2, 1, 3, 3], 3)
  await t.throwsAsync(new FaithfulnessCorrelation({ subsetSize: 9 }).evaluate(model(), data), { ...typed, message: /subsetSize/ })
  const rgb = randomSetup(32, [2, 3, 3, 3], 3, 1)
  // Quantus's own rule: subsetSize < H·W (9), although F = 27.
  await t.notThrowsAsync(new FaithfulnessCorrelation({ subsetSize: 12 }).evaluate(rgb.model(), rgb.data))
  await t.throwsAsync(new FaithfulnessCorrelation({ subsetSize: 12, compat: 'quantus' }).evaluate(rgb.model(), rgb.data), typed)
  for (const metric of [
    new FaithfulnessEstimate({ featuresInStep: 10 }),
    new MonotonicityCorrelation({ featuresInStep: 10 }),
    new Monotonicity({ featuresInStep: 10 }),
    new FaithfulnessEstimate({ featuresInStep: 2, compat: 'quantus' }),
    new MonotonicityCorrelation({ featuresInStep: 2, compat: 'quantus' }),
    new Monotonicity({ featuresInStep: 2, compat: 'quantus' }),
  ]) {
    await t.throwsAsync(metric.evaluate(model(), data), { ...typed, message: /featuresInStep/ })
  }
})

test('registry: the four metrics rebuild from their JSON', (t) => {
  for (const m of [
    new FaithfulnessCorrelation({ nrRuns: 5 }),
    new FaithfulnessEstimate({ compat: 'quantus' }),
    new Monotonicity({ featuresInStep: 3 }),
    new MonotonicityCorrelation({ baseline: 'max' }),
  ]) {
    t.deepEqual(createMetric(m.toJSON()).toJSON(), m.toJSON())
  }
})
