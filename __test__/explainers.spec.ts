import test from 'ava'
import { checkExplainer, ExplanationCache, FunctionModel, mapAttributions, named, precomputed, type Shape4, XaiEvalError } from 'xai-eval'

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
