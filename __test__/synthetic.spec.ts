// The synthetic validation of Soundness and Completeness (TMLR 2024 §5.1, App. G.1) at a small
// scale, the Remove / Introduce modifications of App. G Table 3 (`modify`), the Hausdorff distance
// between curves of §5.2 / Table 1, and the ONNX step model written in code (`writeOnnx`).
// The full-size run with every variant is `npm run example:synthetic`.
import test, { type ExecutionContext } from 'ava'
import {
  Completeness,
  hausdorff,
  minimalHausdorff,
  modify,
  OnnxModel,
  Soundness,
  writeOnnx,
  XaiEvalError,
  type CompletenessResult,
  type ErrorCode,
  type Indicator,
  type SoundnessResult,
} from 'xai-eval'

import { dataset, FEATURES, groundTruth, labels, stepModelOnnx, synthetic, writeTemp } from '../examples/synthetic-data.js'

function expectError(t: ExecutionContext, run: () => unknown, code: ErrorCode, arg: string): void {
  const e = t.throws(run, { instanceOf: XaiEvalError }) as XaiEvalError | undefined
  t.is(e?.code, code, e?.message)
  t.is(e?.arg, arg, e?.message)
}

function close(t: ExecutionContext, actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  t.is(actual.length, expected.length)
  for (let i = 0; i < expected.length; i++) t.true(Math.abs(actual[i]! - expected[i]!) <= tol, `[${i}]: ${actual[i]} vs ${expected[i]}`)
}

// ---------------------------------------------------------------------------------------------
// modify: Table 3, worked by hand

const A = Float32Array.from([0, 0.2, 0.5, 0.9, 1.0])

test("modify constant: subtract / add 0.6, clipped to [0, 1] as the authors' uint8 maps", (t) => {
  close(t, modify.remove(A, [1, 5], { kind: 'constant' }), [0, 0, 0, 0.3, 0.4])
  close(t, modify.introduce(A, [1, 5], { kind: 'constant' }), [0.6, 0.8, 1, 1, 1])
  close(t, modify.remove(A, [1, 5], { kind: 'constant', clip: null }), [-0.6, -0.4, -0.1, 0.3, 0.4])
  close(t, modify.introduce(A, [1, 5], { kind: 'constant', amount: 0.1 }), [0.1, 0.3, 0.6, 1, 1])
  close(t, A, [0, 0.2, 0.5, 0.9, 1.0]) // the input is not touched
})

test('modify random: an independent uniform shift per pixel, seeded, keyed by sample', (t) => {
  const n = 50
  const a = Float32Array.from({ length: n * 200 }, (_, i) => 0.2 + (0.6 * ((i * 7919) % 200)) / 200)
  const up = modify.introduce(a, [n, 200], { kind: 'random', clip: null, seed: 3 })
  const down = modify.remove(a, [n, 200], { kind: 'random', clip: null, seed: 3 })
  let sumUp = 0
  let sumDown = 0
  for (let i = 0; i < a.length; i++) {
    const du = up[i]! - a[i]!
    const dd = a[i]! - down[i]!
    t.true(du >= -1e-6 && du < 0.6 + 1e-6 && dd >= -1e-6 && dd < 0.6 + 1e-6, `shift ${du}, ${dd}`)
    sumUp += du
    sumDown += dd
  }
  // U(0, 0.6) has mean 0.3 and std 0.173: the mean of 10,000 draws is within 0.01 (≈ 6σ).
  t.true(Math.abs(sumUp / a.length - 0.3) < 0.01, `mean shift ${sumUp / a.length}`)
  t.true(Math.abs(sumDown / a.length - 0.3) < 0.01, `mean shift ${sumDown / a.length}`)
  t.deepEqual(modify.introduce(a, [n, 200], { kind: 'random', clip: null, seed: 3 }), up)
  t.notDeepEqual(modify.introduce(a, [n, 200], { kind: 'random', clip: null, seed: 4 }), up)
  // Sample s draws stream s: the first 10 samples alone get exactly the same shifts.
  t.deepEqual(modify.introduce(a.slice(0, 2000), [10, 200], { kind: 'random', clip: null, seed: 3 }), up.slice(0, 2000))
  // Clipped (default [0, 1]).
  const clipped = modify.introduce(Float32Array.from([0.9, 1]), [1, 2], { kind: 'random', amount: 10, seed: 1 })
  close(t, clipped, [1, 1])
})

// Ascending order of B: 0.0 (i9), 0.1 (i1), 0.2 (i5), 0.3 (i3), 0.4 (i7), 0.5 (i0), 0.6 (i8), 0.7 (i4), 0.8 (i6), 0.9 (i2).
const B = Float32Array.from([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])

test('modify partial Remove: ascending positions [0.6N, 0.8N) set to 0', (t) => {
  const r = modify.remove(B, [1, 10], { kind: 'partial' })
  close(t, r, [0.5, 0.1, 0.9, 0.3, 0, 0.2, 0.8, 0.4, 0, 0.0]) // 0.6 (i8) and 0.7 (i4)
  // The authors' script default: the top 20 % set to the 0-quantile (the minimum).
  close(t, modify.remove(B, [1, 10], { kind: 'partial', range: [0.8, 1], quantile: 0 }), [0.5, 0.1, 0, 0.3, 0.7, 0.2, 0, 0.4, 0.6, 0.0])
})

test('modify partial Introduce: ascending positions [0, 0.4N) set to the 0.8-quantile', (t) => {
  // numpy.quantile(B, 0.8): position 0.8 · 9 = 7.2 between 0.7 and 0.8 → 0.72.
  const q = 0.72
  close(t, modify.introduce(B, [1, 10], { kind: 'partial' }), [0.5, q, 0.9, q, 0.7, q, 0.8, 0.4, 0.6, q])
  close(t, modify.introduce(B, [1, 10], { kind: 'partial', value: 2 }), [0.5, 2, 0.9, 2, 0.7, 2, 0.8, 0.4, 0.6, 2])
  // Two maps: each gets its own order and quantile.
  const two = modify.introduce(Float32Array.from([...B, ...B.map((v) => 10 * v)]), [2, 10], { kind: 'partial' })
  close(t, two.subarray(10), [5, 7.2, 9, 7.2, 7, 7.2, 8, 4, 6, 7.2], 1e-5)
})

test('modify partial: ties are ordered by the seed, reproducibly', (t) => {
  const map = Float32Array.from([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
  const chosen = (seed: number) => Array.from(modify.introduce(map, [1, 10], { kind: 'partial', seed }).subarray(0, 6)).join('')
  for (let seed = 0; seed < 5; seed++) {
    t.is(chosen(seed), chosen(seed))
    t.is(chosen(seed).split('1').length - 1, 4, 'exactly 0.4 N of the tied zeros get q0.8 = 1')
  }
  t.true(new Set(Array.from({ length: 20 }, (_, s) => chosen(s))).size > 1, 'different seeds pick different tied pixels')
})

test('modify: bad arguments are typed errors', (t) => {
  const a = Float32Array.from([0, 1, 0.5, 0.2])
  expectError(t, () => modify.remove(a, [1, 4], { kind: 'shift' as 'constant' }), 'INVALID_OPTION', 'kind')
  expectError(t, () => modify.remove(a, [1, 4], { kind: 'constant', amount: -1 }), 'INVALID_OPTION', 'amount')
  expectError(t, () => modify.remove(a, [1, 4], { kind: 'constant', clip: [1, 0] }), 'INVALID_OPTION', 'clip')
  expectError(t, () => modify.remove(a, [1, 4], { kind: 'constant', range: [0, 1] }), 'INVALID_OPTION', 'range')
  expectError(t, () => modify.remove(a, [1, 4], { kind: 'partial', amount: 1 }), 'INVALID_OPTION', 'amount')
  expectError(t, () => modify.remove(a, [1, 4], { kind: 'partial', range: [0.5, 0.2] }), 'INVALID_OPTION', 'range')
  expectError(t, () => modify.remove(a, [1, 4], { kind: 'partial', range: [0, 2] }), 'INVALID_OPTION', 'range')
  expectError(t, () => modify.remove(a, [1, 4], { kind: 'partial', value: 0, quantile: 0.5 }), 'INVALID_OPTION', 'value')
  expectError(t, () => modify.introduce(a, [1, 4], { kind: 'partial', quantile: 1.5 }), 'INVALID_OPTION', 'quantile')
  expectError(t, () => modify.introduce(a, [1, 4], { kind: 'random', seed: -1 }), 'INVALID_OPTION', 'seed')
  expectError(t, () => modify.introduce(a, [1, 4], { kind: 'random', sed: 1 } as never), 'INVALID_OPTION', 'sed')
  expectError(t, () => modify.introduce(Float64Array.from(a) as never, [1, 4], { kind: 'random' }), 'INVALID_OPTION', 'a')
  expectError(t, () => modify.introduce(a, [2, 4], { kind: 'random' }), 'SHAPE_MISMATCH', 'a')
  expectError(t, () => modify.introduce(a, [4], { kind: 'random' }), 'SHAPE_MISMATCH', 'shape')
  expectError(t, () => modify.introduce(new Float32Array(0), [0, 4], { kind: 'random' }), 'EMPTY_INPUT', 'a')
  expectError(t, () => modify.introduce(Float32Array.from([0, Number.NaN]), [1, 2], { kind: 'constant' }), 'NON_FINITE', 'a')
})

// ---------------------------------------------------------------------------------------------
// Hausdorff distance between curves, worked by hand

test('hausdorff: the symmetric Hausdorff distance of point sets', (t) => {
  t.is(
    hausdorff(
      [
        [0, 0],
        [1, 0],
      ],
      [[0, 1]],
    ),
    Math.SQRT2,
  ) // (1, 0) is √2 from (0, 1)
  t.is(
    hausdorff(
      [[0, 1]],
      [
        [0, 0],
        [1, 0],
      ],
    ),
    Math.SQRT2,
  )
  t.is(
    hausdorff(
      [
        [0, 0],
        [1, 0],
        [2, 0],
      ],
      [[0, 0]],
    ),
    2,
  ) // Q ⊂ P: only P → Q counts
  t.is(hausdorff({ x: [0, 1, 2], y: [0, 0, 0] }, [[0, 0]]), 2) // { x, y } = points
  t.is(hausdorff({ x: [0.1, 0.5, 0.9], y: [0.2, 0.4, 0.8] }, { x: [0.9, 0.1, 0.5], y: [0.8, 0.2, 0.4] }), 0)
  t.is(
    hausdorff(
      [
        [0, 0],
        [3, 4],
      ],
      [[0, 0]],
    ),
    5,
  )
})

test('minimalHausdorff: the least distance over the pairs of curves (Table 1)', (t) => {
  const x = [0.1, 0.5, 0.9]
  const r = minimalHausdorff({ original: { x, y: [0, 0, 0] }, remove: { x, y: [0.1, 0.1, 0.1] }, introduce: { x, y: [1, 1, 1] } })
  t.true(Math.abs(r.distance - 0.1) < 1e-12)
  t.deepEqual(r.pair, ['original', 'remove'])
  t.deepEqual(Object.keys(r.pairs), ['original|remove', 'original|introduce', 'remove|introduce'])
  t.true(Math.abs(r.pairs['remove|introduce']! - 0.9) < 1e-12)
  t.is(r.pairs['original|introduce'], 1)
  // As a list; two identical curves overlap: 0.
  const l = minimalHausdorff([
    [
      [0, 0],
      [1, 1],
    ],
    [[0, 2]],
    [
      [1, 1],
      [0, 0],
    ],
  ])
  t.is(l.distance, 0)
  t.deepEqual(l.pair, ['0', '2'])
})

test('hausdorff: bad curves are typed errors', (t) => {
  expectError(t, () => hausdorff([], [[0, 0]]), 'EMPTY_INPUT', 'a')
  expectError(t, () => hausdorff([[0, 0]], { x: [0, 1], y: [0] }), 'SHAPE_MISMATCH', 'b')
  expectError(t, () => hausdorff([[0, Number.NaN]], [[0, 0]]), 'NON_FINITE', 'a')
  expectError(t, () => minimalHausdorff({ only: [[0, 0]] }), 'EMPTY_INPUT', 'curves')
  expectError(t, () => minimalHausdorff({ a: [[0, 0]], b: [[0, Infinity]] }), 'NON_FINITE', 'curves.b')
})

// ---------------------------------------------------------------------------------------------
// The ONNX step model written in code

const small = synthetic(200, 7)

test('the linear step model written by writeOnnx runs in onnxruntime: logits (−Σx, Σx), argmax = sign(Σx)', async (t) => {
  const model = await OnnxModel.load(writeTemp(stepModelOnnx()), { maxBatchSize: 64 })
  t.teardown(() => model.close())
  t.is(model.rawOutput, 'logits')
  t.deepEqual(model.inputShape, [null, 1, 1, FEATURES])
  const out = await model.forward(small.x.slice(), 200, [1, 1, FEATURES])
  t.is(out.length, 400)
  const predicted = Int32Array.from({ length: 200 }, (_, s) => Number(out[2 * s + 1]! > out[2 * s]!))
  t.deepEqual(predicted, labels(small.x, 200))
  t.true(small.y.some((y) => y === 0) && small.y.some((y) => y === 1))
  for (let s = 0; s < 200; s++) {
    const sum = small.x.subarray(s * FEATURES, (s + 1) * FEATURES).reduce((a, b) => a + b, 0)
    t.true(Math.abs(out[2 * s + 1]! - sum) < 1e-4 && out[2 * s] === -out[2 * s + 1]!)
  }
})

test('writeOnnx: bad graphs are typed errors', (t) => {
  const io = { inputs: [{ name: 'x', dims: [1] }], outputs: [{ name: 'y', dims: [1] }] }
  expectError(t, () => writeOnnx({ ...io, nodes: [{ op: 'Identity' } as never] }), 'INVALID_OPTION', 'nodes[0]')
  expectError(
    t,
    () => writeOnnx({ ...io, nodes: [], initializers: [{ name: 'w', dims: [2], data: new Float32Array(3) }] }),
    'SHAPE_MISMATCH',
    'initializer w',
  )
  expectError(t, () => writeOnnx({ nodes: [], inputs: [{ name: 'x', dims: [-1] }], outputs: [] }), 'INVALID_OPTION', 'inputs[0]')
  t.true(writeOnnx({ ...io, nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }] }) instanceof Uint8Array)
})

// ---------------------------------------------------------------------------------------------
// Soundness and Completeness on the synthetic set (paper mode; removed features set to 0, the data
// mean). Observed values (N = 100 / 200, seed 7) are in the comments; the margins leave room for
// other seeds and sizes.

const N_SOUND = 100
const sound = synthetic(N_SOUND, 7)
const gtSound = groundTruth(sound)
const gtSmall = groundTruth(small)
const imputation = { constant: 0 }

let model: Promise<OnnxModel> | undefined
const stepModel = () => (model ??= OnnxModel.load(writeTemp(stepModelOnnx()), { maxBatchSize: 512 }))
test.after.always(async () => {
  if (model) await (await model).close()
})

const memo = new Map<string, Promise<unknown>>()
function once<T>(key: string, f: () => Promise<T>): Promise<T> {
  if (!memo.has(key)) memo.set(key, f())
  return memo.get(key) as Promise<T>
}

type Variant =
  | 'gt'
  | 'remove-constant'
  | 'remove-random'
  | 'remove-partial'
  | 'introduce-constant'
  | 'introduce-random'
  | 'introduce-partial'
function mapOf(a: Float32Array, shape: readonly number[], v: Variant): Float32Array {
  if (v === 'gt') return a
  const [direction, kind] = v.split('-') as ['remove' | 'introduce', 'constant' | 'random' | 'partial']
  return modify[direction](a, shape, { kind, seed: 1 })
}

const soundness = (v: Variant, indicator: Indicator) =>
  once(
    `S ${v} ${indicator}`,
    async () =>
      new Soundness({ indicator, imputation }).evaluate(
        await stepModel(),
        dataset(sound, mapOf(gtSound, sound.shape, v)),
      ) as Promise<SoundnessResult>,
  )
const completeness = (v: Variant) =>
  once(
    `C ${v}`,
    async () =>
      new Completeness({ imputation }).evaluate(
        await stepModel(),
        dataset(small, mapOf(gtSmall, small.shape, v)),
      ) as Promise<CompletenessResult>,
  )

test('soundness, accuracy indicator: accuracy saturates after the first step, so the ground truth scores ≈ 0.06', async (t) => {
  const r = await soundness('gt', 'accuracy')
  t.log(`ground truth: ${r.mean.toFixed(4)} ± ${r.std.toFixed(4)}, flags ${Array.from(r.curve.flags).join('')}`)
  // Observed 0.062: the share of the top 1 % of features (2 of 200) in each map's attribution.
  t.true(r.mean > 0.04 && r.mean < 0.09, `soundness ${r.mean}`)
  t.true(r.curve.indicator[0]! >= 0.98, 'accuracy ≈ 1 with only the top 2 features kept')
  t.is(r.curve.flags[0], 0, 'the first step raises accuracy from 0')
  t.true(r.curve.flags.filter((f) => f === 1).length >= 95, 'nearly every later step is flagged')
})

test('soundness, score indicator: ≈ 1 for the ground truth and every Remove, clearly less for every Introduce', async (t) => {
  const gt = await soundness('gt', 'score')
  const removes = await Promise.all((['remove-constant', 'remove-random', 'remove-partial'] as const).map((v) => soundness(v, 'score')))
  const introduces = await Promise.all(
    (['introduce-constant', 'introduce-random', 'introduce-partial'] as const).map((v) => soundness(v, 'score')),
  )
  t.log(`gt ${gt.mean.toFixed(3)}, remove ${removes.map((r) => r.mean.toFixed(3))}, introduce ${introduces.map((r) => r.mean.toFixed(3))}`)
  // Observed (N = 200): 1.000; 1.000 1.000 1.000; 0.608 0.645 0.546. A revealed feature with
  // positive attribution raises the true-class logit ±Σx by its x > 0; only zero-attribution
  // (negative-x) features lower it, and they add no mass to the false set.
  t.true(gt.mean > 0.99)
  for (const r of removes) t.true(r.mean > 0.99)
  for (const r of introduces) t.true(r.mean < gt.mean - 0.2)
  // The curves are told apart (§5.2): the minimal Hausdorff distance is clearly above 0.
  const curve = (r: SoundnessResult) => ({ x: r.curve.indicator, y: r.curve.soundness })
  t.true(minimalHausdorff({ gt: curve(gt), remove: curve(removes[0]!), introduce: curve(introduces[0]!) }).distance > 0.02)
})

test('completeness: Remove < Ground truth < Introduce (random)', async (t) => {
  const [gt, rc, rr, ir] = await Promise.all([
    completeness('gt'),
    completeness('remove-constant'),
    completeness('remove-random'),
    completeness('introduce-random'),
  ])
  t.log(`gt ${gt.mean.toFixed(3)}, remove c/r ${rc.mean.toFixed(3)}/${rr.mean.toFixed(3)}, introduce r ${ir.mean.toFixed(3)}`)
  // Observed (N = 200): gt 0.790, remove 0.439 / 0.675, introduce 0.989.
  t.true(rc.mean < gt.mean - 0.15)
  t.true(rr.mean < gt.mean - 0.04)
  t.true(ir.mean > gt.mean + 0.1)
  const d = (r: CompletenessResult) => r.curve.difference
  for (let k = 0; k < 9; k++) t.true(d(rc)[k]! <= d(gt)[k]! + 0.02, `remove-constant above gt at t = ${gt.curve.thresholds[k]}`)
  t.is(gt.curve.clean, 1, 'the model classifies the clean data perfectly')
})
