// Property tests: on random small data sets, random linear models and random options, every metric
// equals the plain reference in reference.ts (scores and curves) to 1e-9.
import test from 'ava'
import { Deletion, FunctionModel, Insertion, PixelFlipping, SymmetricRelevanceGain } from 'xai-eval'

import {
  batched,
  deletionRef,
  insertionRef,
  linearRowModel,
  pixelFlippingRef,
  prng,
  stableDescending,
  srgRef,
  type RefCurve,
  type RefData,
  type RowModel,
} from './reference.js'

const TOL = 1e-9
const CASES = 20

interface Case {
  id: number
  data: RefData & { shape: [number, number, number, number] }
  row: RowModel
  model: () => FunctionModel
  softmax: boolean
  featuresInStep: number
  steps: number
  baseline: number
  abs: boolean
  target: 'label' | 'predicted'
  describe: string
}

function makeCase(id: number): Case {
  const rand = prng(0x5eed + 7919 * id)
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  const n = int(1, 5)
  const c = int(1, 3)
  const h = int(2, 6)
  const w = int(2, 6)
  const k = int(2, 5)
  const rowLen = c * h * w
  const ac = rand() < 0.5 ? 1 : c
  // A third of the cases draw attributions from a few values, so ties (and their order) matter.
  const ties = id % 3 === 0
  const x = Float32Array.from({ length: n * rowLen }, () => rand() * 2 - 1)
  const a = Float32Array.from({ length: n * ac * h * w }, () => (ties ? int(-2, 2) : rand() * 2 - 1))
  const y = Array.from({ length: n }, () => int(0, k - 1))
  const weights = Float64Array.from({ length: k * rowLen }, () => rand() * 4 - 2)
  const bias = Float64Array.from({ length: k }, () => rand() - 0.5)
  const row = linearRowModel(weights, bias)
  const output = rand() < 0.75 ? ('probabilities' as const) : ('logits' as const)
  const maxBatchSize = int(1, 12)
  const concurrency = int(1, 3)
  const featuresInStep = int(1, rowLen)
  const steps = int(1, h * w)
  const baseline = rand() < 0.5 ? 0 : Math.round((rand() * 2 - 1) * 100) / 100
  const abs = rand() < 0.3
  const target = rand() < 0.5 ? ('label' as const) : ('predicted' as const)
  return {
    id,
    data: { x, shape: [n, c, h, w], y, a, aShape: [n, ac, h, w] },
    row,
    model: () => new FunctionModel(batched(row), { output, maxBatchSize, concurrency }),
    softmax: output === 'probabilities',
    featuresInStep,
    steps,
    baseline,
    abs,
    target,
    describe:
      `case ${id}: x [${n},${c},${h},${w}] a [${n},${ac},${h},${w}] K=${k} ${output} batch=${maxBatchSize}x${concurrency}` +
      ` fis=${featuresInStep} steps=${steps} baseline=${baseline} abs=${abs} target=${target}${ties ? ' ties' : ''}`,
  }
}

function near(t: import('ava').ExecutionContext, actual: ArrayLike<number>, expected: readonly number[], what: string): void {
  t.is(actual.length, expected.length, `${what}: length`)
  let worst = 0
  let at = -1
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!)
    if (!(d <= worst)) {
      worst = d
      at = i
    }
  }
  t.true(worst <= TOL, `${what}: max |Δ| = ${worst} at ${at} (got ${actual[at]}, expected ${expected[at]})`)
}

function sameCurve(
  t: import('ava').ExecutionContext,
  got: { x: Float64Array; values: Float64Array; points: number },
  ref: RefCurve,
  what: string,
): void {
  t.is(got.points, ref.x.length, `${what}: points`)
  near(t, got.x, ref.x, `${what}: x`)
  near(t, got.values, ref.values.flat(), `${what}: values`)
}

const cases = Array.from({ length: CASES }, (_, i) => makeCase(i))

for (const c of cases) {
  test(`PixelFlipping MIF and LIF — ${c.describe}`, async (t) => {
    for (const order of ['mif', 'lif'] as const) {
      const model = c.model()
      const curve = order === 'mif' ? 'morf' : 'lerf'
      const r = await new PixelFlipping({ order: curve, featuresInStep: c.featuresInStep, baseline: c.baseline, abs: c.abs }).evaluate(
        model,
        c.data,
      )
      const ref = pixelFlippingRef(c.row, c.data, {
        order,
        featuresInStep: c.featuresInStep,
        baseline: c.baseline,
        abs: c.abs,
        softmax: c.softmax,
      })
      near(t, r.scores, ref.auc, `${order} scores`)
      sameCurve(t, r.curves[curve]!, ref, `${order} curve`)
    }
  })

  test(`SRG — ${c.describe}`, async (t) => {
    const r = await new SymmetricRelevanceGain({ featuresInStep: c.featuresInStep, baseline: c.baseline, abs: c.abs }).evaluate(
      c.model(),
      c.data,
    )
    const ref = srgRef(c.row, c.data, { featuresInStep: c.featuresInStep, baseline: c.baseline, abs: c.abs, softmax: c.softmax })
    near(t, r.scores, ref.scores, 'scores')
    sameCurve(t, r.curves.mif!, ref.mif, 'mif')
    sameCurve(t, r.curves.lif!, ref.lif, 'lif')
  })

  test(`Deletion — ${c.describe}`, async (t) => {
    const r = await new Deletion({ steps: c.steps, baseline: c.baseline, target: c.target }).evaluate(c.model(), c.data)
    const ref = deletionRef(c.row, c.data, { steps: c.steps, baseline: c.baseline, target: c.target, softmax: c.softmax })
    near(t, r.scores, ref.auc, 'scores')
    near(t, r.auc, ref.auc, 'auc')
    sameCurve(t, r.curves.scores!, ref, 'curve')
    near(
      t,
      r.originalScore,
      ref.values.map((v) => v[0]!),
      'originalScore',
    )
    near(
      t,
      r.baselineScore,
      ref.values.map((v) => v[v.length - 1]!),
      'baselineScore',
    )
  })

  test(`Insertion — ${c.describe}`, async (t) => {
    const r = await new Insertion({ steps: c.steps, baseline: c.baseline, target: c.target }).evaluate(c.model(), c.data)
    const ref = insertionRef(c.row, c.data, { steps: c.steps, baseline: c.baseline, target: c.target, softmax: c.softmax })
    near(t, r.scores, ref.auc, 'scores')
    sameCurve(t, r.curves.scores!, ref, 'curve')
    near(
      t,
      r.baselineScore,
      ref.values.map((v) => v[0]!),
      'baselineScore',
    )
    near(
      t,
      r.originalScore,
      ref.values.map((v) => v[v.length - 1]!),
      'originalScore',
    )
  })
}

test('the random cases cover the interesting corners', (t) => {
  // Guards the generator itself: a change of seed must not silently lose coverage.
  t.true(
    cases.some((c) => c.data.shape[1] > 1 && c.data.aShape![1] === 1),
    'broadcast attribution over channels',
  )
  t.true(
    cases.some((c) => c.data.shape[1] > 1 && c.data.aShape![1] === c.data.shape[1]),
    'per-channel attribution',
  )
  t.true(
    cases.some((c) => c.featuresInStep > 1 && (c.data.x.length / c.data.shape[0]) % c.featuresInStep !== 0),
    'short last step',
  )
  t.true(cases.some((c) => c.abs) && cases.some((c) => !c.abs), 'abs both ways')
  t.true(cases.some((c) => c.target === 'predicted') && cases.some((c) => c.target === 'label'), 'both targets')
  t.true(cases.some((c) => !c.softmax) && cases.some((c) => c.softmax), 'logits and probabilities')
  t.true(
    cases.some((c) => c.baseline !== 0),
    'non-zero baseline',
  )
  t.true(
    cases.some((c) => c.data.shape[0] > 1),
    'several samples',
  )
})

test('the reference itself: ordering contract and a hand-worked curve', (t) => {
  t.deepEqual(stableDescending([0.5, 2, 0.5, -1, 2]), [1, 4, 0, 2, 3])
  t.deepEqual(stableDescending([-0, 0, -0]), [0, 1, 2])
  // One class whose raw output is the sum of the row: MIF over [1, 2, 4, 9] removes 9, 4, 2, 1.
  const data: RefData = { x: Float32Array.of(1, 2, 4, 9), shape: [1, 1, 2, 2], y: [0], a: Float32Array.of(1, 2, 4, 9) }
  const sum: RowModel = (row) => Float32Array.of(row.reduce((p, q) => p + q, 0))
  const pf = pixelFlippingRef(sum, data, { order: 'mif', featuresInStep: 1, softmax: false })
  t.deepEqual(pf.values, [[16, 7, 3, 1, 0]])
  t.deepEqual(pf.x, [0, 0.25, 0.5, 0.75, 1])
  t.is(pf.auc[0], (0.25 * (23 + 10 + 4 + 1)) / 2) // trapezoids on a 0.25 grid
  const del = deletionRef(sum, data, { steps: 2, baseline: -1, target: 'label', softmax: false })
  t.deepEqual(del.values, [[16, 1 + 2 - 1 - 1, -4]])
  const ins = insertionRef(sum, data, { steps: 2, baseline: -1, target: 'label', softmax: false })
  t.deepEqual(ins.values, [[-4, 11, 16]])
})
