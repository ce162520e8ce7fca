import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import test from 'ava'
import {
  AvgSensitivity,
  type Dataset,
  type Explainer,
  ExplanationCache,
  FunctionModel,
  LocalLipschitzEstimate,
  MaxSensitivity,
  named,
  OnnxModel,
  RelativeInputStability,
  SensitivityN,
  XaiEvalError,
} from 'xai-eval'

import { batched, linearRowModel, prng } from './reference.js'
import { checkShards } from './shards.js'

const C = 2
const H = 3
const W = 4
const K = 3
const D = C * H * W
const N = 9
const rand = prng(5)
const weights = Float64Array.from({ length: K * D }, () => rand() * 2 - 1)
const model = () => new FunctionModel(batched(linearRowModel(weights, new Float64Array(K))), { maxBatchSize: 16 })
const x = Float32Array.from({ length: N * D }, () => rand())
const y = Array.from({ length: N }, (_, i) => i % K)

/** The gradient of a linear logit: W[target] whatever the input (saliency of a linear model). */
const gradient: Explainer = async (_m, xs, shape, targets) => {
  const out = new Float32Array(xs.length)
  for (let r = 0; r < shape[0]; r++) out.set(Float32Array.from(weights.subarray(targets[r]! * D, (targets[r]! + 1) * D)), r * D)
  return out
}
/** Gradient × input of a linear logit: W[target] ⊙ x. */
const gradientTimesInput: Explainer = async (m, xs, shape, targets, o) => {
  const g = await gradient(m, xs, shape, targets, o)
  return g.map((v, i) => v * xs[i]!)
}
const gradData: Dataset = {
  x,
  shape: [N, C, H, W],
  y,
  a: Float32Array.from({ length: N * D }, (_, i) => weights[y[Math.floor(i / D)]! * D + (i % D)]!),
}
const gxiData: Dataset = { ...gradData, a: gradData.a.map((v, i) => v * x[i]!) }

test('the gradient of a linear model does not move under noise: every sensitivity is exactly 0', async (t) => {
  for (const m of [
    new SensitivityN({ explainer: gradient, nSamples: 5 }),
    new MaxSensitivity({ explainer: gradient, nrSamples: 5 }),
    new AvgSensitivity({ explainer: gradient, nrSamples: 5 }),
  ]) {
    const r = await m.evaluate(model(), gradData)
    t.deepEqual(Array.from(r.scores), new Array(N).fill(0), m.meta.name)
  }
})

test('gradient × input of a linear model: changes are |W ⊙ ε| and ‖W ⊙ ε‖/‖W ⊙ x‖ of the noise the explainer saw', async (t) => {
  // Record the noisy inputs the metric hands the explainer; recompute every draw by hand from them.
  const seen: Float32Array[] = []
  const recording = named(
    'recording',
    async (m, xs, shape, targets, o) => {
      seen.push(xs.slice())
      t.is(o.samples, undefined, 'noisy inputs are not the data set’s own: no sample indices')
      return gradientTimesInput(m, xs, shape, targets, o)
    },
    10,
  )
  const draws = 4
  const r = await new SensitivityN({ explainer: recording, nSamples: draws, noiseLevel: 0.3, seed: 2 }).evaluate(model(), gxiData)
  t.is(seen.length, Math.ceil((N * draws) / 10), 'explained in calls of the explainer’s batch size')
  const noisy = new Float32Array(N * draws * D)
  let off = 0
  for (const s of seen) {
    noisy.set(s, off)
    off += s.length
  }
  let sumAbsNoise = 0
  for (let s = 0; s < N; s++) {
    const w = weights.subarray(y[s]! * D, (y[s]! + 1) * D)
    const changes: number[] = []
    for (let k = 0; k < draws; k++) {
      let c = 0
      for (let i = 0; i < D; i++) {
        const eps = noisy[(s * draws + k) * D + i]! - x[s * D + i]!
        sumAbsNoise += Math.abs(eps)
        c += Math.abs(Math.fround(Math.fround(w[i]!) * x[s * D + i]!) - Math.fround(Math.fround(w[i]!) * noisy[(s * draws + k) * D + i]!))
      }
      changes.push(c / D)
    }
    const mean = changes.reduce((a, b) => a + b, 0) / draws
    t.true(Math.abs(r.sensitivity[s]! - mean) < 1e-9)
    t.true(Math.abs(r.maxChange[s]! - Math.max(...changes)) < 1e-9)
    t.true(Math.abs(r.changeStd[s]! - Math.sqrt(changes.reduce((a, b) => a + (b - mean) ** 2, 0) / draws)) < 1e-9)
    changes.forEach((c, k) => {
      t.true(Math.abs(r.changes[s * draws + k]! - c) < 1e-9)
    })
  }
  // Gaussian noise of σ = 0.3: E|ε| = σ·√(2/π) ≈ 0.239 (864 draws: within 10 %).
  const meanAbs = sumAbsNoise / (N * draws * D)
  t.true(Math.abs(meanAbs - 0.3 * Math.sqrt(2 / Math.PI)) < 0.024, `mean |ε| = ${meanAbs}`)

  const max = await new MaxSensitivity({ explainer: gradientTimesInput, nrSamples: 6, lowerBound: 0.1, seed: 4 }).evaluate(model(), gxiData)
  const avg = await new AvgSensitivity({ explainer: gradientTimesInput, nrSamples: 6, lowerBound: 0.1, seed: 4 }).evaluate(model(), gxiData)
  for (let s = 0; s < N; s++) {
    const row = max.sensitivities.subarray(s * 6, (s + 1) * 6)
    t.is(max.scores[s], Math.max(...row))
    t.true(Math.abs(avg.scores[s]! - row.reduce((a, b) => a + b, 0) / 6) < 1e-12)
    // |ε| ≤ 0.1 per entry: ‖W ⊙ ε‖ ≤ 0.1·‖W‖.
    const w = weights.subarray(y[s]! * D, (y[s]! + 1) * D)
    const a = gxiData.a.subarray(s * D, (s + 1) * D)
    const bound = (0.1 * Math.hypot(...w)) / Math.hypot(...a)
    for (const v of row) t.true(v > 0 && v <= bound * (1 + 1e-6))
  }
})

test('LocalLipschitzEstimate: the identity explainer has ratio 1 (to 1e-10 relative), the gradient 0, gradient × input at most max |W|', async (t) => {
  const identity: Explainer = async (_m, xs) => xs.slice()
  const idData: Dataset = { ...gradData, a: x.slice() }
  const r1 = await new LocalLipschitzEstimate({ explainer: identity, nrSamples: 4, normalise: false }).evaluate(model(), idData)
  for (const v of r1.ratios) t.true(Math.abs(v - 1) < 1e-8, String(v))
  const r0 = await new LocalLipschitzEstimate({ explainer: gradient, nrSamples: 4 }).evaluate(model(), gradData)
  t.deepEqual(Array.from(r0.scores), new Array(N).fill(0))
  const r2 = await new LocalLipschitzEstimate({
    explainer: gradientTimesInput,
    nrSamples: 4,
    normalise: false,
    uniform: [-0.1, 0.1],
  }).evaluate(model(), gxiData)
  for (let s = 0; s < N; s++) {
    const w = weights.subarray(y[s]! * D, (y[s]! + 1) * D)
    const bound = Math.max(...Array.from(w, Math.abs))
    t.true(r2.scores[s]! > 0 && r2.scores[s]! <= bound * (1 + 1e-5))
    t.is(r2.scores[s], Math.max(...r2.ratios.subarray(s * 4, (s + 1) * 4)))
  }
  // normalise: each map divided by its own max |value| — invariant to scaling the explainer.
  const scaled: Explainer = async (m, xs, sh, tg, o) => (await gradientTimesInput(m, xs, sh, tg, o)).map((v) => 8 * v)
  const n1 = await new LocalLipschitzEstimate({ explainer: gradientTimesInput, nrSamples: 3 }).evaluate(model(), gxiData)
  const n8 = await new LocalLipschitzEstimate({ explainer: scaled, nrSamples: 3 }).evaluate(model(), {
    ...gxiData,
    a: gxiData.a.map((v) => 8 * v),
  })
  n1.scores.forEach((v, i) => {
    t.true(Math.abs(v - n8.scores[i]!) < 1e-9 * Math.max(1, v))
  })
  await checkShards(t, new LocalLipschitzEstimate({ explainer: gradientTimesInput, nrSamples: 3 }), model, gxiData, n1, prng(8))
  t.is(
    t.throws(() => new LocalLipschitzEstimate({ explainer: gradient, uniform: [1, 0] }), { instanceOf: XaiEvalError }).code,
    'INVALID_OPTION',
  )
  t.is(
    t.throws(() => new LocalLipschitzEstimate({ explainer: gradient, perturbStd: -1 }), { instanceOf: XaiEvalError }).code,
    'INVALID_OPTION',
  )
})

test('RelativeInputStability: gradient × input of a linear model has (e − ẽ)/e = (x − x̃)/x, so every objective is 1', async (t) => {
  const r = await new RelativeInputStability({ explainer: gradientTimesInput, nrSamples: 4, nanWhenPredictionChanges: false }).evaluate(
    model(),
    gxiData,
  )
  for (const v of r.objectives) t.true(Math.abs(v - 1) < 1e-5, String(v))
  t.is(r.forwardPasses, 0)
  // With the prediction check: 1 + nrSamples model rows per sample; huge noise flips predictions → NaN with a reason.
  const checked = await new RelativeInputStability({ explainer: gradientTimesInput, nrSamples: 4 }).evaluate(model(), gxiData)
  t.is(checked.forwardPasses, N * 5)
  const wild = await new RelativeInputStability({ explainer: gradientTimesInput, nrSamples: 8, lowerBound: -50, upperBound: 50 }).evaluate(
    model(),
    gxiData,
  )
  t.true(wild.skipped > 0)
  t.is(wild.undefinedScores.length, wild.skipped)
  await checkShards(
    t,
    new RelativeInputStability({ explainer: gradientTimesInput, nrSamples: 3, lowerBound: -5, upperBound: 5 }),
    model,
    gxiData,
    await new RelativeInputStability({ explainer: gradientTimesInput, nrSamples: 3, lowerBound: -5, upperBound: 5 }).evaluate(
      model(),
      gxiData,
    ),
    prng(4),
  )
  t.is(
    t.throws(() => new RelativeInputStability({ explainer: gradient, lowerBound: 0.3, upperBound: 0.2 }), { instanceOf: XaiEvalError })
      .code,
    'INVALID_OPTION',
  )
  t.is(t.throws(() => new RelativeInputStability({ explainer: gradient, epsMin: 0 }), { instanceOf: XaiEvalError }).code, 'INVALID_OPTION')
})

test('seeds reproduce; another seed gives other noise', async (t) => {
  const a = await new AvgSensitivity({ explainer: gradientTimesInput, nrSamples: 3, seed: 9 }).evaluate(model(), gxiData)
  const b = await new AvgSensitivity({ explainer: gradientTimesInput, nrSamples: 3, seed: 9 }).evaluate(model(), gxiData)
  const c = await new AvgSensitivity({ explainer: gradientTimesInput, nrSamples: 3, seed: 10 }).evaluate(model(), gxiData)
  t.deepEqual(a.scores, b.scores)
  t.notDeepEqual(a.scores, c.scores)
})

test('1…7 shards reduce to the single evaluation bit for bit', async (t) => {
  const r = prng(3)
  for (const m of [
    new SensitivityN({ explainer: named('gxi', gradientTimesInput, 5), nSamples: 3 }),
    new MaxSensitivity({ explainer: gradientTimesInput, nrSamples: 4 }),
    new AvgSensitivity({ explainer: gradientTimesInput, nrSamples: 4, upperBound: 0.3, lowerBound: 0.1 }),
    // Quantus's batch normalisation: the data set's maximum and each batch's, found in the reduce.
    new MaxSensitivity({ explainer: gradientTimesInput, nrSamples: 3, normalise: true, compat: 'quantus', batchSize: 4 }),
    new LocalLipschitzEstimate({ explainer: gradientTimesInput, nrSamples: 3, compat: 'quantus', batchSize: 2 }),
    new LocalLipschitzEstimate({ explainer: gradientTimesInput, nrSamples: 3 }),
    new AvgSensitivity({ explainer: gradientTimesInput, nrSamples: 3, lowerBound: 0.5, nanWhenPredictionChanges: true }),
  ]) {
    await checkShards(t, m, model, gxiData, await m.evaluate(model(), gxiData), r)
  }
})

test('an all-zero reference attribution is a NaN with its reason', async (t) => {
  const a = gxiData.a.slice()
  a.fill(0, 2 * D, 3 * D)
  const r = await new MaxSensitivity({ explainer: gradientTimesInput, nrSamples: 2 }).evaluate(model(), { ...gxiData, a })
  t.true(Number.isNaN(r.scores[2]))
  t.is(r.skipped, 1)
  t.deepEqual(
    r.undefinedScores.map((u) => u.sample),
    [2],
  )
})

test('compat: an all-zero reference is ∞ (a noisy map moved) or NaN (0/0 at every draw), as Quantus; batchSize defaults to 64', async (t) => {
  const a = gxiData.a.slice()
  a.fill(0, 2 * D, 3 * D)
  const r = await new MaxSensitivity({ explainer: gradientTimesInput, nrSamples: 2, compat: 'quantus' }).evaluate(model(), {
    ...gxiData,
    a,
  })
  t.is(r.scores[2], Number.POSITIVE_INFINITY)
  t.is(r.params.batchSize, 64)
  const zero = named('zero', async (_m, xs) => new Float32Array(xs.length))
  const z = await new AvgSensitivity({ explainer: zero, nrSamples: 2, compat: 'quantus' }).evaluate(model(), { ...gxiData, a })
  t.true(Number.isNaN(z.scores[2]))
  t.deepEqual(
    z.undefinedScores.map((u) => u.sample),
    [2],
  )
  t.regex(z.undefinedScores[0]!.reason, /0\/0/)
})

test('normalise: scaling every map (reference and explainer) by 4 changes nothing, per map or with Quantus’s batch maxima (SensitivityN too)', async (t) => {
  // Powers of two: the scaled float32 maps are exact, so only the normalisation could tell them apart.
  const scaled = named('gxi×4', async (m, xs, shape, targets, o) => (await gradientTimesInput(m, xs, shape, targets, o)).map((v) => 4 * v))
  const big = { ...gxiData, a: gxiData.a.map((v) => 4 * v) }
  for (const o of [{}, { compat: 'quantus' as const, batchSize: 4 }]) {
    for (const Cls of [MaxSensitivity, LocalLipschitzEstimate] as const) {
      const one = await new Cls({ explainer: gradientTimesInput, nrSamples: 3, normalise: true, ...o }).evaluate(model(), gxiData)
      const four = await new Cls({ explainer: scaled, nrSamples: 3, normalise: true, ...o }).evaluate(model(), big)
      const d = Math.max(...one.scores.map((v, i) => Math.abs(v - four.scores[i]!) / Math.abs(v)))
      t.true(d < 1e-12, `${Cls.name} ${JSON.stringify(o)}: ${d}`)
    }
  }
  // SensitivityN's changes: in units of the peak with normalise, in the map's units without.
  const sn = (e: Explainer, d: Dataset, normalise: boolean) =>
    new SensitivityN({ explainer: e, nSamples: 3, normalise }).evaluate(model(), d).then((r) => r.scores)
  const [n1, n4] = [await sn(gradientTimesInput, gxiData, true), await sn(scaled, big, true)]
  t.true(Math.max(...n1.map((v, i) => Math.abs(v - n4[i]!) / v)) < 1e-12)
  const [u1, u4] = [await sn(gradientTimesInput, gxiData, false), await sn(scaled, big, false)]
  t.true(Math.max(...u1.map((v, i) => Math.abs(u4[i]! / v - 4))) < 1e-9)
  // Without normalisation the Lipschitz ratio scales with the maps.
  const raw = await new LocalLipschitzEstimate({ explainer: scaled, nrSamples: 3, normalise: false }).evaluate(model(), big)
  const raw1 = await new LocalLipschitzEstimate({ explainer: gradientTimesInput, nrSamples: 3, normalise: false }).evaluate(
    model(),
    gxiData,
  )
  t.true(Math.abs(raw.scores[0]! / raw1.scores[0]! - 4) < 1e-9)
})

test('nanWhenPredictionChanges: only draws that flip the prediction make a sample NaN, with its reason; the check costs 1 + draws rows per sample', async (t) => {
  for (const Cls of [MaxSensitivity, AvgSensitivity, LocalLipschitzEstimate] as const) {
    const noise = Cls === LocalLipschitzEstimate ? { uniform: [-0.5, 0.5] as [number, number] } : { lowerBound: 0.5 }
    const off = await new Cls({ explainer: gradientTimesInput, nrSamples: 4, ...noise }).evaluate(model(), gxiData)
    const on = await new Cls({ explainer: gradientTimesInput, nrSamples: 4, ...noise, nanWhenPredictionChanges: true }).evaluate(
      model(),
      gxiData,
    )
    t.is(on.forwardPasses, N * (1 + 4))
    t.is(off.forwardPasses, 0)
    const nan = Array.from(on.scores, Number.isNaN)
    t.true(nan.some((v) => v) && nan.some((v) => !v), `${Cls.name}: noise ±0.5 flips some samples, not all (${nan})`)
    on.scores.forEach((v, i) => {
      if (!Number.isNaN(v)) t.is(v, off.scores[i]!)
    })
    t.deepEqual(
      on.undefinedScores.map((u) => u.sample),
      nan.flatMap((v, i) => (v ? [i] : [])),
    )
    for (const u of on.undefinedScores) t.regex(u.reason, /changed the predicted class/)
  }
})

test('typed errors: missing or bad explainer, options out of range, explainer answers of the wrong shape', async (t) => {
  for (const make of [
    () => new SensitivityN(undefined as never),
    () => new SensitivityN({} as never),
    () => new SensitivityN({ explainer: 'saliency' as never }),
    () => new SensitivityN({ explainer: gradient, nSamples: 0 }),
    () => new SensitivityN({ explainer: gradient, noiseLevel: -1 }),
    () => new MaxSensitivity({ explainer: gradient, nrSamples: 1e6 }),
    () => new AvgSensitivity({ explainer: gradient, lowerBound: 0.5, upperBound: 0.1 }),
    () => new AvgSensitivity({ explainer: gradient, nope: 1 } as never),
    // Quantus's batch size only means something with its batch normalisation (compat).
    () => new MaxSensitivity({ explainer: gradient, batchSize: 8 }),
    () => new LocalLipschitzEstimate({ explainer: gradient, batchSize: 8 }),
    () => new LocalLipschitzEstimate({ explainer: gradient, compat: 'quantus', batchSize: 0 }),
    () => new AvgSensitivity({ explainer: gradient, compat: 'captum' as never }),
  ]) {
    t.is(t.throws(make, { instanceOf: XaiEvalError }).code, 'INVALID_OPTION')
  }
  const short = named('short', async () => new Float32Array(1))
  const e1 = await t.throwsAsync(new SensitivityN({ explainer: short, nSamples: 2 }).evaluate(model(), gxiData), {
    instanceOf: XaiEvalError,
  })
  t.is(e1.code, 'SHAPE_MISMATCH')
  t.is(e1.arg, "explainer 'short'")
  const pixel = named('pixel', async (_m, xs, shape) => new Float32Array(shape[0] * H * W).fill(xs[0]!))
  const e2 = await t.throwsAsync(new MaxSensitivity({ explainer: pixel, nrSamples: 2 }).evaluate(model(), gxiData), {
    instanceOf: XaiEvalError,
  })
  t.is(e2.code, 'SHAPE_MISMATCH')
  const ac = new AbortController()
  ac.abort()
  const e3 = await t.throwsAsync(
    new AvgSensitivity({ explainer: gradient, nrSamples: 2 }).evaluate(model(), gxiData, { signal: ac.signal }),
    {
      instanceOf: XaiEvalError,
    },
  )
  t.is(e3.code, 'ABORTED')
  t.is(new SensitivityN({ explainer: named('mine', gradient) }).params.explainer, 'mine')
})

// Parity with quantus 0.6.0 (scripts/make_quantus_robustness_fixture.py): gradient × input of a
// fixed linear map as the explainer on both sides, Quantus handed our keyed noise.
test('MaxSensitivity, AvgSensitivity, LocalLipschitzEstimate and RelativeInputStability match quantus 0.6.0 to 1e-5', async (t) => {
  const dir = join(import.meta.dirname, 'fixtures', 'quantus')
  const f = JSON.parse(readFileSync(join(dir, 'robustness-gray.json'), 'utf8')) as {
    data: string
    weights: number[]
    T: number
    runs: {
      metric: string
      explainer: 'w*x' | 'w*x*x' | 'relu(x-T)'
      params: Record<string, unknown>
      scores: (number | 'Infinity' | null)[]
    }[]
  }
  const src = JSON.parse(readFileSync(join(dir, f.data), 'utf8')) as { x: number[]; y: number[]; shape: [number, number, number, number] }
  const fx = Float32Array.from(src.x)
  const F = fx.length / src.shape[0]
  const w = Float32Array.from(f.weights)
  /** W[t] ⊙ x (float32 product), W[t] ⊙ x ⊙ x or W[t] ⊙ max(x − T, 0)·[t ≠ 0] computed in float64 and rounded: as the fixture script. */
  const explainers: Record<string, Explainer> = {
    'w*x': async (_m, xs, shape, targets) => {
      const out = new Float32Array(xs.length)
      for (let r = 0; r < shape[0]; r++) for (let i = 0; i < F; i++) out[r * F + i] = w[targets[r]! * F + i]! * xs[r * F + i]!
      return out
    },
    'w*x*x': async (_m, xs, shape, targets) => {
      const out = new Float32Array(xs.length)
      for (let r = 0; r < shape[0]; r++) {
        for (let i = 0; i < F; i++) out[r * F + i] = w[targets[r]! * F + i]! * xs[r * F + i]! * xs[r * F + i]!
      }
      return out
    },
    'relu(x-T)': async (_m, xs, shape, targets) => {
      const out = new Float32Array(xs.length)
      for (let r = 0; r < shape[0]; r++) {
        if (targets[r] === 0) continue
        for (let i = 0; i < F; i++) out[r * F + i] = w[targets[r]! * F + i]! * Math.max(xs[r * F + i]! - f.T, 0)
      }
      return out
    },
  }
  const onnx = await OnnxModel.load(join(dir, 'pf-gray.onnx'))
  // Every Quantus robustness metric xai-eval has, with the compat runs (batch normalisation at two batch sizes, division by a zero norm) and return_nan_when_prediction_changes.
  t.is(f.runs.length, 15)
  t.deepEqual([...new Set(f.runs.map((r) => r.metric))].sort(), [
    'AvgSensitivity',
    'LocalLipschitzEstimate',
    'MaxSensitivity',
    'RelativeInputStability',
  ])
  try {
    for (const run of f.runs) {
      const explain = explainers[run.explainer]!
      const a = await explain(onnx, fx, src.shape, Int32Array.from(src.y), {})
      const data: Dataset = { x: fx, shape: src.shape, y: src.y, a }
      const Cls = { MaxSensitivity, AvgSensitivity, LocalLipschitzEstimate, RelativeInputStability }[run.metric as 'MaxSensitivity']
      const r = await new Cls({ explainer: named(run.explainer, explain, 7), ...run.params }).evaluate(onnx, data)
      const q = run.scores.map((v) => (v === null ? Number.NaN : Number(v)))
      t.deepEqual(Array.from(r.scores, Number.isNaN), q.map(Number.isNaN), `${run.metric}: NaN where Quantus has NaN`)
      t.deepEqual(
        Array.from(r.scores, (v) => v === Number.POSITIVE_INFINITY),
        q.map((v) => v === Number.POSITIVE_INFINITY),
        `${run.metric}: ∞ where Quantus has ∞`,
      )
      // Relative to max(1, |q|): RelativeInputStability's objectives divide by small attributions, and Quantus does so in float32.
      const d = Math.max(...q.map((v, i) => (Number.isFinite(v) ? Math.abs(v - r.scores[i]!) / Math.max(1, Math.abs(v)) : 0)))
      t.true(d < 1e-5, `${run.metric} ${JSON.stringify(run.params)}: max diff ${d}`)
      t.log(`${run.metric}${run.params.compat ? ` (compat, batch ${run.params.batchSize})` : ''}: max diff ${d.toExponential(1)}`)
      if (run.params.compat && run.params.normalise) {
        // Quantus's batch normalisation is what compat adds: each map by its own maximum gives other numbers.
        const { compat: _, batchSize: __, ...own } = run.params
        const mine = await new Cls({ explainer: named(run.explainer, explain, 7), ...own }).evaluate(onnx, data)
        t.true(Math.max(...q.map((v, i) => Math.abs(v - mine.scores[i]!))) > 1e-3, `${run.metric}: per-map normalisation differs`)
      }
    }
    // The same Quantus metric at two batch sizes gives other numbers (the fixture exercises the batch dependence).
    const lle = f.runs.filter((r) => r.metric === 'LocalLipschitzEstimate' && r.params.compat)
    t.is(lle.length, 2)
    t.notDeepEqual(lle[0]!.scores, lle[1]!.scores)
  } finally {
    await onnx.close()
  }
})

test('metrics sharing one cached explainer explain each (input, target) once', async (t) => {
  let rows = 0
  const counting = named('counting', async (m, xs, shape, targets, o) => {
    rows += shape[0]
    return gradientTimesInput(m, xs, shape, targets, o)
  })
  const cache = new ExplanationCache()
  const shared = cache.wrap(counting)
  // One model: the cache keys explanations by model too (another model explains afresh).
  const m = model()
  const max = await new MaxSensitivity({ explainer: shared, nrSamples: 3, seed: 1 }).evaluate(m, gxiData)
  t.is(rows, N * 3)
  // Same seed and noise: AvgSensitivity's noisy inputs are MaxSensitivity's, all answered by the cache.
  const avg = await new AvgSensitivity({ explainer: shared, nrSamples: 3, seed: 1 }).evaluate(m, gxiData)
  t.is(rows, N * 3)
  t.is(cache.hits, N * 3)
  await new AvgSensitivity({ explainer: shared, nrSamples: 3, seed: 1 }).evaluate(model(), gxiData)
  t.is(rows, 2 * N * 3)
  t.deepEqual(avg.sensitivities, max.sensitivities)
})
