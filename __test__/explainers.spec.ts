import test from 'ava'
import {
  checkExplainer,
  ExplanationCache,
  FunctionModel,
  mapAttributions,
  named,
  occlusion,
  precomputed,
  rise,
  type Shape4,
  shapley,
  XaiEvalError,
} from 'xai-eval'

import { batched, linearRowModel, prng } from './reference.js'

const model = new FunctionModel((x, shape) => new Float32Array(shape[0]! * 2).fill(x.length > 0 ? 0 : 1))
const shape: Shape4 = [2, 1, 2, 2]
const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8])
const targets = Int32Array.from([0, 1])

test('an explainer is checked on return: length and finiteness, errors naming it', async (t) => {
  const ok = checkExplainer(async (_m, xs) => xs.map((v) => 2 * v))
  const { a, channels } = await ok.explain(model, x, shape, targets)
  t.is(channels, 1)
  t.deepEqual(Array.from(a), [2, 4, 6, 8, 10, 12, 14, 16])
  const short = named('short', async () => new Float32Array(3))
  const e1 = await t.throwsAsync(checkExplainer(short).explain(model, x, shape, targets), { instanceOf: XaiEvalError })
  t.is(e1.code, 'SHAPE_MISMATCH')
  t.is(e1.arg, "explainer 'short'")
  const nan = named('nan', async () => Float32Array.from([0, 0, 0, Number.NaN, 0, 0, 0, 0]))
  const e2 = await t.throwsAsync(checkExplainer(nan).explain(model, x, shape, targets), { instanceOf: XaiEvalError })
  t.is(e2.code, 'NON_FINITE')
  t.regex(e2.message, /row 0/)
  const boom = named('boom', async () => {
    throw new Error('service down')
  })
  const e3 = await t.throwsAsync(checkExplainer(boom).explain(model, x, shape, targets), { instanceOf: XaiEvalError })
  t.is(e3.code, 'EXPLAINER')
  t.regex(e3.message, /service down/)
  const wrong = named('wrong', async () => 'maps' as unknown as Float32Array)
  t.is((await t.throwsAsync(checkExplainer(wrong).explain(model, x, shape, targets), { instanceOf: XaiEvalError })).code, 'EXPLAINER')
  for (const bad of [
    undefined,
    3,
    {},
    { name: 'x' },
    { name: '', explain: async () => x },
    { name: 'b', explain: async () => x, batchSize: 0 },
  ]) {
    t.is(t.throws(() => checkExplainer(bad), { instanceOf: XaiEvalError }).code, 'INVALID_OPTION')
  }
})

test('precomputed maps answer by sample index and refuse new inputs', async (t) => {
  const maps = Float32Array.from({ length: 12 }, (_, i) => i)
  const p = checkExplainer(precomputed(maps, [3, 1, 2, 2], 'saved'))
  const { a } = await p.explain(model, x, shape, targets, { samples: Int32Array.from([2, 0]) })
  t.deepEqual(Array.from(a), [8, 9, 10, 11, 0, 1, 2, 3])
  const e = await t.throwsAsync(p.explain(model, x, shape, targets), { instanceOf: XaiEvalError })
  t.is(e.code, 'EXPLAINER')
  t.is(e.arg, "explainer 'saved'")
  t.throws(() => precomputed(maps, [2, 1, 2, 2]), { instanceOf: XaiEvalError })
})

test('the explanation cache computes each (explainer, input, target) once, within its memory bound', async (t) => {
  let rows = 0
  const e = named('count', async (_m, xs, s) => {
    rows += s[0]
    return xs.map((v) => v + 1)
  })
  const cache = new ExplanationCache(1024)
  const c = checkExplainer(cache.wrap(e))
  const first = await c.explain(model, x, shape, targets)
  const again = await c.explain(model, x, shape, targets)
  t.deepEqual(first.a, again.a)
  t.is(rows, 2)
  t.is(cache.hits, 2)
  await c.explain(model, x, shape, Int32Array.from([1, 1]))
  t.is(rows, 3, 'another target of row 0 is a new entry')
  const tiny = new ExplanationCache(16)
  const ct = checkExplainer(tiny.wrap(e))
  await ct.explain(model, x, shape, targets)
  t.true(tiny.heldBytes <= 16)
  t.is(tiny.size, 1)
  const inverted = checkExplainer(mapAttributions(e, (a) => a.map((v) => -v), 'inverted'))
  t.deepEqual(Array.from((await inverted.explain(model, x.subarray(0, 4), [1, 1, 2, 2], Int32Array.of(0))).a), [-2, -3, -4, -5])
  t.throws(() => new ExplanationCache(-1), { instanceOf: XaiEvalError })
})

// ---------------------------------------------------------------------------------------------
// Built-in explainers on a linear model (scores are logits): closed forms.

const C = 2
const H = 4
const W = 6
const K = 3
const D = C * H * W
const rand = prng(11)
const weights = Float64Array.from({ length: K * D }, () => rand() * 2 - 1)
const linear = () => new FunctionModel(batched(linearRowModel(weights, new Float64Array(K))), { output: 'logits', maxBatchSize: 7 })
const N = 5
const xs = Float32Array.from({ length: N * D }, () => rand() * 2 - 1)
const shape5: Shape4 = [N, C, H, W]
const tgt = Int32Array.from({ length: N }, (_, i) => i % K)

/** Σ over channels of W[t]·x at each pixel: what occluding that pixel alone removes from the logit. */
function contributions(s: number): number[] {
  const t = tgt[s]!
  return Array.from({ length: H * W }, (_, p) => {
    let v = 0
    for (let c = 0; c < C; c++) v += weights[t * D + c * H * W + p]! * xs[s * D + c * H * W + p]!
    return v
  })
}

test('occlusion of single pixels on a linear model is each pixel’s contribution W·x', async (t) => {
  const { a, channels } = await checkExplainer(occlusion({ patch: 1 })).explain(linear(), xs, shape5, tgt)
  t.is(channels, 1)
  for (let s = 0; s < N; s++) {
    contributions(s).forEach((v, p) => {
      t.true(Math.abs(a[s * H * W + p]! - v) < 1e-5)
    })
  }
})

test('overlapping occlusion windows average the drops of the windows covering a pixel', async (t) => {
  const { a } = await checkExplainer(occlusion({ patch: 2, stride: 1 })).explain(linear(), xs, shape5, tgt)
  const s = 1
  const v = contributions(s)
  // Plain reference: every 2×2 window (stride 1), drop = sum of its pixels' contributions.
  const sum = new Float64Array(H * W)
  const cnt = new Float64Array(H * W)
  for (let r = 0; r + 2 <= H; r++) {
    for (let c = 0; c + 2 <= W; c++) {
      const px = [r * W + c, r * W + c + 1, (r + 1) * W + c, (r + 1) * W + c + 1]
      const drop = px.reduce((acc, p) => acc + v[p]!, 0)
      for (const p of px) {
        sum[p] += drop
        cnt[p]++
      }
    }
  }
  for (let p = 0; p < H * W; p++) t.true(Math.abs(a[s * H * W + p]! - sum[p]! / cnt[p]!) < 1e-5)
})

test('permutation Shapley of patches on a linear model is exact: each patch’s W·x, whatever the permutations', async (t) => {
  for (const seed of [0, 5]) {
    const { a } = await checkExplainer(shapley({ patch: 2, permutations: 3, seed })).explain(linear(), xs, shape5, tgt)
    for (let s = 0; s < N; s++) {
      const v = contributions(s)
      for (let p = 0; p < H * W; p++) {
        const [r, c] = [Math.floor(p / W), p % W]
        const r0 = r - (r % 2)
        const c0 = c - (c % 2)
        const patch = v[r0 * W + c0]! + v[r0 * W + c0 + 1]! + v[(r0 + 1) * W + c0]! + v[(r0 + 1) * W + c0 + 1]!
        t.true(Math.abs(a[s * H * W + p]! - patch / 4) < 1e-5)
      }
    }
  }
})

test('RISE: masks are keyed by (seed, mask index), so a sample’s map never depends on its batch; p = 1 gives f(x)', async (t) => {
  const e = checkExplainer(rise({ masks: 20, cell: 2, seed: 3 }))
  const whole = await e.explain(linear(), xs, shape5, tgt)
  const one = await e.explain(linear(), xs.subarray(2 * D, 3 * D), [1, C, H, W], tgt.subarray(2, 3))
  t.deepEqual(one.a, whole.a.subarray(2 * H * W, 3 * H * W))
  const other = await checkExplainer(rise({ masks: 20, cell: 2, seed: 4 })).explain(linear(), xs, shape5, tgt)
  t.notDeepEqual(other.a, whole.a)
  const full = await checkExplainer(rise({ masks: 4, cell: 2, p: 1 })).explain(linear(), xs, shape5, tgt)
  const logits = batched(linearRowModel(weights, new Float64Array(K)))(xs, [N, C, H, W])
  for (let s = 0; s < N; s++) t.true(Math.abs(full.a[s * H * W]! - logits[s * K + tgt[s]!]!) < 1e-5)
})

test('built-in explainers: option and input errors are typed', async (t) => {
  for (const make of [
    () => occlusion({ patch: 0 }),
    () => occlusion({ baseline: { uniform: [0, 1] } }),
    () => rise({ p: 0 }),
    () => rise({ masks: 1.5 }),
    () => shapley({ permutations: 0 }),
    () => shapley({ nope: 1 } as never),
  ]) {
    t.is(t.throws(make, { instanceOf: XaiEvalError }).code, 'INVALID_OPTION')
  }
  const big = checkExplainer(occlusion({ patch: 5 }))
  t.is((await t.throwsAsync(big.explain(linear(), xs, shape5, tgt), { instanceOf: XaiEvalError })).code, 'INVALID_OPTION')
  const bad = checkExplainer(occlusion({ patch: 1 }))
  t.is((await t.throwsAsync(bad.explain(linear(), xs, shape5, Int32Array.of(0, 1)), { instanceOf: XaiEvalError })).code, 'SHAPE_MISMATCH')
  // 1000 masks of 300×300 would take 360 MB: refused before any is drawn.
  const huge = checkExplainer(rise({ masks: 1000 })).explain(model, new Float32Array(300 * 300), [1, 1, 300, 300], Int32Array.of(0))
  t.is((await t.throwsAsync(huge, { instanceOf: XaiEvalError })).code, 'INVALID_OPTION')
})
