// The comparison statistics: hand-worked ranks and paired differences, the bootstrap interval
// against normal theory, NaN handling, seeds, and typed errors.
import test from 'ava'
import { compareMethods, rankAgreement, XaiEvalError } from 'xai-eval'

test('a method better on every sample by exactly 1: rank 1, difference interval [−1, −1], significant, p = 0', (t) => {
  const a = [1, 2, 3, 4, 5, 6]
  const c = compareMethods('m', true, { a, b: a.map((v) => v + 1) }, { reps: 500 })
  const [ma, mb] = c.methods
  t.is(mb!.rank, 1)
  t.true(mb!.best)
  t.is(mb!.p, 1)
  t.is(ma!.rank, 2)
  t.false(ma!.best)
  t.is(ma!.difference, -1)
  t.true(Math.abs(ma!.differenceCi[0] + 1) < 1e-12 && Math.abs(ma!.differenceCi[1] + 1) < 1e-12)
  t.true(ma!.significant)
  t.is(ma!.p, 0)
  // Lower is better: the order flips.
  const low = compareMethods('m', false, { a, b: a.map((v) => v + 1) }, { reps: 500 })
  t.is(low.methods[0]!.rank, 1)
  t.true(low.methods[1]!.significant)
})

test('identical methods tie: shared rank, both best, nothing significant', (t) => {
  const a = [0.1, 0.5, 0.2, 0.9]
  const c = compareMethods('m', true, { a, b: [...a], r: a.map((v) => v - 10) }, { reps: 200 })
  t.deepEqual(
    c.methods.map((m) => [m.rank, m.best, m.significant]),
    [
      [1.5, true, false],
      [1.5, true, false],
      [3, false, true],
    ],
  )
})

test('the 95 % interval of a mean agrees with normal theory on 400 samples, and is keyed by the seed', (t) => {
  // A fixed pseudo-normal sample (sum of 12 uniforms from an LCG).
  let s = 12345
  const u = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 2 ** 32
  }
  const v = Array.from({ length: 400 }, () => Array.from({ length: 12 }, u).reduce((p, q) => p + q, 0) - 6)
  const mean = v.reduce((p, q) => p + q, 0) / v.length
  const sd = Math.sqrt(v.reduce((p, q) => p + (q - mean) ** 2, 0) / v.length)
  const c = compareMethods('m', true, { a: v }, { reps: 4000, seed: 3 })
  const [lo, hi] = c.methods[0]!.ci
  const half = (1.96 * sd) / Math.sqrt(v.length)
  t.true(lo < mean && mean < hi)
  t.true(Math.abs(hi - lo - 2 * half) < 0.15 * 2 * half, `${hi - lo} vs ${2 * half}`)
  t.deepEqual(compareMethods('m', true, { a: v }, { reps: 4000, seed: 3 }), c)
  t.notDeepEqual(compareMethods('m', true, { a: v }, { reps: 4000, seed: 4 }).methods[0]!.ci, c.methods[0]!.ci)
})

test('samples where any method is undefined are left out of every method (paired)', (t) => {
  const c = compareMethods('m', true, { a: [1, Number.NaN, 3, 5], b: Float64Array.from([2, 2, Number.NaN, 6]) }, { reps: 100 })
  t.is(c.pairedSamples, 2)
  t.is(c.droppedSamples, 2)
  t.is(c.methods[0]!.mean, 3)
  t.is(c.methods[1]!.mean, 4)
})

test("rank agreement: Spearman's ρ of the methods' ranks between metrics", (t) => {
  const x = compareMethods('x', true, { a: [1, 1], b: [2, 2], c: [3, 3] }, { reps: 100 })
  const same = compareMethods('same', false, { a: [3, 3], b: [2, 2], c: [1, 1] }, { reps: 100 })
  const rev = compareMethods('rev', true, { a: [3, 3], b: [2, 2], c: [1, 1] }, { reps: 100 })
  const r = rankAgreement([x, same, rev])
  t.deepEqual(r.metrics, ['x', 'same', 'rev'])
  t.deepEqual(r.rho[0], [1, 1, -1])
})

test('bad input is a typed error', (t) => {
  for (const [args, code] of [
    [['m', true, {}], 'EMPTY_INPUT'],
    [['m', true, { a: [1, 2], b: [1] }], 'SHAPE_MISMATCH'],
    [['m', true, { a: [Number.NaN] }], 'EMPTY_INPUT'],
    [['m', 'yes', { a: [1] }], 'INVALID_OPTION'],
    [[Symbol('m'), true, { a: [1] }], 'INVALID_OPTION'],
    [['m', true, { a: 'abc' }], 'INVALID_OPTION'],
    [['m', true, { a: [1] }, { reps: 5 }], 'INVALID_OPTION'],
  ] as const) {
    const e = t.throws(() => compareMethods(...(args as unknown as Parameters<typeof compareMethods>)), { instanceOf: XaiEvalError })
    t.is(e?.code, code)
  }
  t.throws(() => rankAgreement([{ metric: 3 }] as never), { instanceOf: XaiEvalError })
})

test('one paired sample: no interval, no test, nothing significant', (t) => {
  const c = compareMethods('m', true, { a: [0.9, Number.NaN], b: [0.1, 0.5] }, { reps: 200 })
  t.is(c.pairedSamples, 1)
  t.is(c.droppedSamples, 1)
  const [a, b] = c.methods
  t.true(a!.best)
  t.deepEqual(a!.differenceCi, [0, 0])
  t.is(a!.p, 1)
  t.false(b!.significant)
  t.true(Number.isNaN(b!.p))
  t.true(b!.ci.every(Number.isNaN))
  t.true(b!.differenceCi.every(Number.isNaN))
  t.is(b!.difference, 0.1 - 0.9)
})

test('two paired samples are tested', (t) => {
  const c = compareMethods('m', true, { a: [0.9, 0.8], b: [0.1, 0.2] }, { reps: 200 })
  t.true(c.methods[1]!.significant)
})
