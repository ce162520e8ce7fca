// Randomization sanity checks on a tiny linear-softmax ONNX model, where every explanation is
// known in closed form: the test explainer's attribution of input i for class c is
// z_c(x) − z_c(x with x_i = 0) = W[i, c]·x_i (the bias cancels). So randomizing the bias layer
// leaves explanations unchanged, randomizing W gives W'[i, c]·x_i with W' read back from the
// randomized model, and the explanation of another class c' is W[i, c']·x_i.
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { fromBinary } from '@bufbuild/protobuf'
import test, { type ExecutionContext } from 'ava'
import { ModelProtoSchema } from 'onnx-buf'
import {
  DataRandomization,
  countingModel,
  type Dataset,
  EfficientMPRT,
  ExplanationCache,
  FunctionModel,
  type ErrorCode,
  type Explainer,
  type Model,
  ModelParameterRandomization,
  type ModelParameterRandomizationResult,
  OnnxModel,
  onnxLayers,
  precomputed,
  RandomLogit,
  randomizeLayers,
  SensitivityN,
  SmoothMPRT,
  type SmoothMPRTOptions,
  underlyingModel,
  writeOnnx,
  XaiEvalError,
} from 'xai-eval'

import { prng } from './reference.js'
import { checkShards, slice } from './shards.js'

const [N, C, H, W, K] = [10, 1, 3, 3, 4]
const P = C * H * W
const rand = prng(17)
const weights = Float32Array.from({ length: P * K }, () => rand() * 2 - 1) // [P, K]: MatMul's B
const bias = Float32Array.from({ length: K }, () => rand() - 0.5)

const dir = mkdtempSync(join(tmpdir(), 'xai-eval-randomization-'))
test.after.always(() => rmSync(dir, { recursive: true, force: true }))

/** x → Flatten → MatMul(W) → Add(b) [→ BatchNormalization] → logits. */
function linearOnnx(name: string, withNorm = false): string {
  const path = join(dir, name)
  const norm = withNorm
    ? [{ op: 'BatchNormalization', inputs: ['z', 'scale', 'shift', 'mean', 'var'], outputs: ['logits'], name: 'norm' }]
    : []
  const bytes = writeOnnx({
    nodes: [
      { op: 'Flatten', inputs: ['x'], outputs: ['flat'], name: 'flatten' },
      { op: 'MatMul', inputs: ['flat', 'W'], outputs: ['mm'], name: 'dense' },
      { op: 'Add', inputs: ['mm', 'b'], outputs: [withNorm ? 'z' : 'logits'], name: 'bias' },
      ...norm,
    ],
    inputs: [{ name: 'x', dims: ['N', C, H, W] }],
    outputs: [{ name: 'logits', dims: ['N', K] }],
    initializers: [
      { name: 'W', dims: [P, K], data: weights },
      { name: 'b', dims: [K], data: bias },
      ...(withNorm
        ? ['scale', 'shift', 'mean', 'var'].map((n, i) => ({
            name: n,
            dims: [K],
            data: new Float32Array(K).fill(i === 3 ? 1 : i === 0 ? 1 : 0),
          }))
        : []),
    ],
  })
  writeFileSync(path, bytes)
  return path
}

/** The test explainer: W[i, c]·x_i from P + 1 forward rows per input (raw logits). */
const linearExplainer: Explainer = async (model, x, shape, targets) => {
  const [n] = shape
  const rows = new Float32Array(n * (P + 1) * P)
  for (let s = 0; s < n; s++) {
    for (let r = 0; r <= P; r++) {
      const row = rows.subarray((s * (P + 1) + r) * P, (s * (P + 1) + r + 1) * P)
      row.set(x.subarray(s * P, (s + 1) * P))
      if (r < P) row[r] = 0
    }
  }
  const z = await model.forward(rows, n * (P + 1), [C, H, W])
  const out = new Float32Array(n * P)
  for (let s = 0; s < n; s++) {
    const full = z[(s * (P + 1) + P) * K + targets[s]!]!
    for (let i = 0; i < P; i++) out[s * P + i] = full - z[(s * (P + 1) + i) * K + targets[s]!]!
  }
  return out
}
const explainer = { name: 'linear-occlusion', explain: linearExplainer }

const x = Float32Array.from({ length: N * P }, () => rand() * 2 - 1)
const y = Array.from({ length: N }, (_, i) => i % K)
/** W[:, c]·x of sample s, in float64. */
const closedForm = (w: ArrayLike<number>, s: number, c: number) => Array.from({ length: P }, (_, i) => w[i * K + c]! * x[s * P + i]!)
const a = Float32Array.from({ length: N * P }, (_, j) => closedForm(weights, Math.floor(j / P), y[Math.floor(j / P)]!)[j % P]!)
const data: Dataset = { x, shape: [N, C, H, W], y, a }

function pearson(u: number[], v: number[]): number {
  const mu = u.reduce((s, t) => s + t, 0) / u.length
  const mv = v.reduce((s, t) => s + t, 0) / v.length
  let [suv, suu, svv] = [0, 0, 0]
  u.forEach((t, i) => {
    suv += (t - mu) * (v[i]! - mv)
    suu += (t - mu) ** 2
    svv += (v[i]! - mv) ** 2
  })
  return suv / Math.sqrt(suu * svv)
}
/** Pearson of two maps after each is divided by its own max |v| (the metric's `normalise`; Pearson ignores it). */
const corr = (u: number[], v: number[]) => pearson(u, v)

/** W' of a randomized model, decoded independently with onnx-buf. */
function weightsOf(bytes: Uint8Array): Float32Array {
  const m = fromBinary(ModelProtoSchema, bytes)
  const t = m.graph!.initializer.find((i) => i.name === 'W')!
  return t.rawData.length ? new Float32Array(t.rawData.slice().buffer) : Float32Array.from(t.floatData)
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

let modelPath = ''
let model: OnnxModel
test.before(async () => {
  modelPath = linearOnnx('linear.onnx')
  model = await OnnxModel.load(modelPath, { workers: 1, threads: 1, maxBatchSize: 64 })
})
test.after.always(async () => {
  await model?.close()
})

test('the layers of the model: MatMul and Add, in graph order, read with onnx-buf', (t) => {
  const layers = onnxLayers(readFileSync(modelPath))
  t.deepEqual(
    layers.map((l) => [l.name, l.op, l.tensors, l.size]),
    [
      ['dense', 'MatMul', ['W'], P * K],
      ['bias', 'Add', ['b'], K],
    ],
  )
  // Randomized weights are U(−1/√fan_in, 1/√fan_in), fan_in = P for MatMul's B.
  const w = weightsOf(randomizeLayers(readFileSync(modelPath), [0], 3))
  t.true(w.every((v) => Math.abs(v) <= 1 / Math.sqrt(P)))
  t.notDeepEqual(Array.from(w), Array.from(weights))
})

test('MPRT top-down on the linear model: closed-form similarities per stage; the ONNX file stays byte-identical', async (t) => {
  const before = sha(modelPath)
  const mprt = new ModelParameterRandomization({
    explainer,
    onnx: modelPath,
    similarity: 'pearson',
    abs: false,
    seed: 5,
    modelOptions: { workers: 1 },
  })
  const r = (await mprt.evaluate(model, data)) as ModelParameterRandomizationResult
  t.is(sha(modelPath), before)
  t.deepEqual(
    r.layers.map((l) => [l.name, l.op]),
    [
      ['bias', 'Add'],
      ['dense', 'MatMul'],
    ],
  )
  // Stage 1 (bias randomized): the explanations do not change.
  t.true(r.layers[0]!.correlation > 1 - 1e-6, String(r.layers[0]!.correlation))
  t.true(r.layers[0]!.change < 1e-5)
  t.false(r.layers[0]!.passes)
  // Stage 2 (W randomized too): W'[:, y]·x against W[:, y]·x, W' decoded from the same randomized model.
  const w2 = weightsOf(randomizeLayers(readFileSync(modelPath), [1, 0], 5))
  for (let s = 0; s < N; s++) {
    const expected = corr(closedForm(weights, s, y[s]!), closedForm(w2, s, y[s]!))
    t.true(Math.abs(r.scores[s]! - expected) < 1e-4, `sample ${s}: ${r.scores[s]} vs ${expected}`)
  }
  t.is(r.correlation, r.layers[1]!.correlation)
  t.is(r.passes, r.correlation < 0.5)
  t.is(r.similarity.length, N * 2)
  // The cost counts the explainer's rows (P + 1 per sample and model): the trained model's
  // explanation, then per stage the NaN check (1 row per sample) and the explanation.
  t.is(r.forwardPasses, N * (P + 1) + 2 * (N + N * (P + 1)))
  t.is(r.original, undefined)
  // Quantus's return_average_correlation: the mean over the stages (no `original` here).
  for (let s = 0; s < N; s++) t.is(r.average[s], (r.similarity[2 * s]! + r.similarity[2 * s + 1]!) / 2)
})

test('MPRT bottom-up and independent orders; seeds reproduce; shards give the same numbers', async (t) => {
  const make = (o: object) => new ModelParameterRandomization({ explainer, onnx: modelPath, modelOptions: { workers: 1 }, ...o })
  const up = (await make({ layerOrder: 'bottom-up' }).evaluate(model, data)) as ModelParameterRandomizationResult
  t.deepEqual(
    up.layers.map((l) => l.name),
    ['dense', 'bias'],
  )
  // The bias never matters: stage 1 (W) and stage 2 (W and b) explain alike.
  for (let s = 0; s < N; s++) t.true(Math.abs(up.similarity[2 * s]! - up.similarity[2 * s + 1]!) < 1e-6)
  const ind = (await make({ layerOrder: 'independent' }).evaluate(model, data)) as ModelParameterRandomizationResult
  t.deepEqual(
    ind.layers.map((l) => l.name),
    ['dense', 'bias'],
  )
  t.true(ind.layers[1]!.correlation > 1 - 1e-6)
  // W's draws are keyed by (seed, layer, tensor): alone or with the bias, the same weights.
  for (let s = 0; s < N; s++) t.true(Math.abs(ind.similarity[2 * s]! - up.similarity[2 * s]!) < 1e-9)
  const again = await make({ layerOrder: 'bottom-up' }).evaluate(model, data)
  t.deepEqual(again.scores, up.scores)
  const other = await make({ layerOrder: 'bottom-up', seed: 9 }).evaluate(model, data)
  t.notDeepEqual(other.scores, up.scores)
  await checkShards(t, make({}), () => model, data, await make({}).evaluate(model, data), prng(3), 3)
})

test('MPRT with a cache-wrapped explainer: the cache keys by model, so randomized models are explained afresh', async (t) => {
  const cache = new ExplanationCache()
  const make = (e: object) => new ModelParameterRandomization({ explainer: e as never, onnx: modelPath, modelOptions: { workers: 1 } })
  const plain = await make(explainer).evaluate(model, data)
  const cached = await make(cache.wrap(explainer)).evaluate(model, data)
  t.deepEqual(cached.scores, plain.scores)
  t.true(plain.scores.every((v) => v < 0.999))
})

/** scipy.stats.entropy(np.histogram(v, 100)[0]), written from numpy's definition. */
function entropyRef(v: number[]): number {
  const [lo, hi] = [Math.min(...v), Math.max(...v)]
  if (lo === hi) return 0
  const counts = new Array(100).fill(0)
  for (const x of v) counts[Math.min(99, Math.floor(((x - lo) / (hi - lo)) * 100))]++
  return -counts.filter((c) => c > 0).reduce((s, c) => s + (c / v.length) * Math.log(c / v.length), 0)
}

test('EfficientMPRT: the entropy rise of W′[:, y]∘x over W[:, y]∘x, every layer randomized once', async (t) => {
  const r = await new EfficientMPRT({ explainer, onnx: modelPath, seed: 2, modelOptions: { workers: 1 } }).evaluate(model, data)
  t.true(r.higherIsBetter)
  const w2 = weightsOf(randomizeLayers(readFileSync(modelPath), [0, 1], 2))
  for (let s = 0; s < N; s++) {
    const h = entropyRef(closedForm(weights, s, y[s]!))
    const expected = (entropyRef(closedForm(w2, s, y[s]!)) - h) / h
    t.true(Math.abs(r.scores[s]! - expected) < 1e-9, `sample ${s}: ${r.scores[s]} vs ${expected}`)
  }
  t.is(r.forwardPasses, 2 * N * (P + 1) + N)
  // The data set's `a` is not what is compared by default (Quantus recomputes it too); with
  // reference: 'attributions' a constant `a` has no entropy.
  const junk = await new EfficientMPRT({ explainer, onnx: modelPath, seed: 2, modelOptions: { workers: 1 } }).evaluate(model, {
    ...data,
    a: new Float32Array(N * P),
  })
  t.deepEqual(junk.scores, r.scores)
  const constant = await new EfficientMPRT({
    explainer,
    onnx: modelPath,
    reference: 'attributions',
    modelOptions: { workers: 1 },
  }).evaluate(model, {
    ...data,
    a: new Float32Array(N * P),
  })
  t.true(constant.scores.every(Number.isNaN))
  t.regex(constant.undefinedScores[0]!.reason, /zero histogram entropy/)
  t.throws(() => new EfficientMPRT({ explainer, onnx: modelPath, layerOrder: 'top-down' } as never), { instanceOf: XaiEvalError })
})

test('MPRT: a randomized normalisation layer that makes outputs NaN is reported per stage, not a crash', async (t) => {
  const path = linearOnnx('norm.onnx', true)
  const m = await OnnxModel.load(path, { workers: 1, threads: 1 })
  try {
    const r = (await new ModelParameterRandomization({ explainer, onnx: path, modelOptions: { workers: 1 } }).evaluate(
      m,
      data,
    )) as ModelParameterRandomizationResult
    t.is(r.layers[0]!.op, 'BatchNormalization')
    t.is(r.layers[0]!.nonFinite, N)
    t.regex(r.layers[0]!.reason!, /NaN/)
    t.true(Number.isNaN(r.layers[0]!.correlation))
    t.true(r.scores.every(Number.isNaN))
    t.is(r.undefinedScores.length, N)
    t.regex(r.undefinedScores[0]!.reason, /randomized normalisation/)
  } finally {
    await m.close()
  }
})

test('RandomLogit / DataRandomization: keyed other classes, closed-form correlations, SSIM, shards', async (t) => {
  const dr = await new DataRandomization({ explainer, seed: 4 }).evaluate(model, data)
  // The class count (one forward pass), then the explanations for the label and the other class.
  t.is(dr.forwardPasses, 1 + 2 * N * (P + 1))
  const counts = new Array(K).fill(0)
  for (let s = 0; s < N; s++) {
    const c = dr.otherClass[s]!
    t.not(c, y[s])
    counts[c]++
    const expected = corr(closedForm(weights, s, y[s]!), closedForm(weights, s, c))
    t.true(Math.abs(dr.correlation[s]! - expected) < 1e-5, `sample ${s}`)
    t.is(dr.passes[s], dr.correlation[s]! < 0.5 ? 1 : 0)
  }
  t.deepEqual((await new DataRandomization({ explainer, seed: 4, numClasses: K }).evaluate(model, data)).otherClass, dr.otherClass)
  t.notDeepEqual((await new DataRandomization({ explainer, seed: 5, numClasses: K }).evaluate(model, data)).otherClass, dr.otherClass)
  // Every other class is reachable: over 200 samples, all K classes.
  const many = Array.from({ length: 200 }, (_, i) => i % K)
  const big: Dataset = { x: new Float32Array(200 * P).fill(1), shape: [200, C, H, W], y: many, a: new Float32Array(200 * P).fill(1) }
  const seen = new Set(
    (await new DataRandomization({ explainer: async (_m, xs) => xs.slice(), numClasses: K }).evaluate(model, big)).otherClass,
  )
  t.is(seen.size, K)
  const rl = await new RandomLogit({ explainer, numClasses: K, seed: 4 }).evaluate(model, data)
  t.deepEqual(rl.otherClass, dr.otherClass)
  for (let s = 0; s < N; s++) {
    const u = closedForm(weights, s, y[s]!)
    const v = closedForm(weights, s, rl.otherClass[s]!)
    const norm = (m: number[]) => {
      const max = Math.max(...m.map(Math.abs))
      return m.map((q) => q / max)
    }
    t.true(Math.abs(rl.scores[s]! - ssimRef(norm(u), norm(v))) < 1e-5, `ssim ${s}: ${rl.scores[s]} vs ${ssimRef(norm(u), norm(v))}`)
  }
  await checkShards(t, new RandomLogit({ explainer, numClasses: K, seed: 4 }), () => model, data, rl, prng(8))
})

test("the reference is the explainer on the trained model by default, the data set's a only when asked", async (t) => {
  const junk = Float32Array.from({ length: N * P }, () => rand() * 2 - 1)
  const make = (o: object) => new DataRandomization({ explainer, seed: 4, numClasses: K, ...o })
  const truth = await make({}).evaluate(model, data)
  // A gradient-like `a` that is not this explainer's answer changes nothing by default…
  t.deepEqual((await make({}).evaluate(model, { ...data, a: junk })).scores, truth.scores)
  // …and everything with reference: 'attributions'.
  const given = await make({ reference: 'attributions' }).evaluate(model, { ...data, a: junk })
  t.notDeepEqual(given.scores, truth.scores)
  for (let s = 0; s < N; s++) {
    const expected = corr(Array.from(junk.subarray(s * P, (s + 1) * P)), closedForm(weights, s, truth.otherClass[s]!))
    t.true(Math.abs(given.scores[s]! - expected) < 1e-5, `sample ${s}`)
  }
  t.is(given.forwardPasses, N * (P + 1)) // the class count was given: only the random class explained
  t.is(make({}).params.reference, 'explainer')
  t.is(new RandomLogit({ explainer, compat: 'quantus' }).params.reference, 'attributions')
  t.is(new EfficientMPRT({ explainer, onnx: modelPath, compat: 'quantus' }).params.reference, 'explainer')
  // Precomputed maps answer the reference by sample index (and refuse the random class).
  await rejects(t, make({ explainer: precomputed(a, [N, 1, H, W], 'maps') }).evaluate(model, data), 'EXPLAINER')
})

test('explanations are shared through the cache: a metric pays only for the rows it explains', async (t) => {
  const cache = new ExplanationCache()
  const e = cache.wrap(explainer)
  const dr = await new DataRandomization({ explainer: e, seed: 4, numClasses: K }).evaluate(model, data)
  t.is(dr.forwardPasses, 2 * N * (P + 1))
  t.is(cache.misses, 2 * N)
  const mprt = (await new ModelParameterRandomization({
    explainer: e,
    onnx: modelPath,
    layerOrder: 'bottom-up',
    modelOptions: { workers: 1 },
  }).evaluate(model, data)) as ModelParameterRandomizationResult
  // The trained model's explanations came from the cache: only the stages cost rows.
  t.is(cache.hits, N)
  t.is(mprt.forwardPasses, 2 * (N + N * (P + 1)))
  const plain = await new ModelParameterRandomization({
    explainer,
    onnx: modelPath,
    layerOrder: 'bottom-up',
    modelOptions: { workers: 1 },
  }).evaluate(model, data)
  t.deepEqual(mprt.scores, plain.scores)
  // The sensitivity metrics count their explainer's rows too.
  const sens = await new SensitivityN({ explainer, nSamples: 3 }).evaluate(model, data)
  t.is(sens.forwardPasses, 3 * N * (P + 1))
})

test('MPRT compat quantus: compares with a and reports original', async (t) => {
  const r = (await new ModelParameterRandomization({
    explainer,
    onnx: modelPath,
    compat: 'quantus',
    similarity: 'pearson',
    abs: false,
    modelOptions: { workers: 1 },
  }).evaluate(model, data)) as ModelParameterRandomizationResult
  t.is(r.params.reference, 'attributions')
  // `a` is this explainer's answer up to float32 round-off: original ≈ 1.
  t.true(r.original!.every((v) => v > 1 - 1e-6))
  // original (N·(P+1)) + 2 stages × (NaN check + explanation); no separate reference explanation.
  t.is(r.forwardPasses, N * (P + 1) + 2 * (N + N * (P + 1)))
  const metric = new ModelParameterRandomization({
    explainer,
    onnx: modelPath,
    compat: 'quantus',
    modelOptions: { workers: 1, threads: 1 },
  })
  const whole = (await metric.evaluate(model, data)) as ModelParameterRandomizationResult
  const [first, second] = [await metric.map(model, slice(data, 0, 4)), await metric.map(model, slice(data, 4, N), { firstSample: 4 })]
  const merged = metric.reduce([second, first])
  t.deepEqual(merged.scores, whole.scores)
  t.deepEqual(merged.original, whole.original)
  t.deepEqual(merged.average, whole.average)
})

test('countingModel: adds the rows and calls it serves to a cost, unwraps to the model, never closes it', async (t) => {
  // A model of its own: the shared ONNX model's counters move with the other tests running at once.
  const own = new FunctionModel((xs, shape) => new Float32Array(shape[0]! * K).fill(xs[0]!), { maxBatchSize: 8 })
  const cost = { forwardPasses: 0, batches: 0 }
  const counted = countingModel(own, cost)
  const twice = countingModel(counted, { forwardPasses: 0, batches: 0 })
  t.is(underlyingModel(twice), own)
  t.is(counted.maxBatchSize, 8)
  await twice.forward(x.slice(0, 3 * P), 3, [C, H, W])
  t.deepEqual(cost, { forwardPasses: 3, batches: 1 })
  t.is(own.stats.rows, 3)
  await counted.close()
  t.is((await own.forward(x.slice(0, P), 1, [C, H, W])).length, K)
  await rejects(t, () => countingModel(own, { forwardPasses: 'x' } as never), 'INVALID_OPTION', 'cost')
  // Everything the engine reads passes through (an ONNX model's pool shape and concurrency bound).
  const view = countingModel(model, { forwardPasses: 0, batches: 0 })
  t.deepEqual([view.pool, view.maxConcurrency, view.concurrency], [model.pool, model.maxConcurrency, model.concurrency])
})

/** An explainer that records every input row it is given, by the model it ran on. */
function recording(): { e: { name: string; explain: Explainer }; rows: Map<Model, Float32Array[]> } {
  const rows = new Map<Model, Float32Array[]>()
  const e = {
    name: 'recording-linear',
    explain: (async (m, xs, shape, targets, options) => {
      const key = underlyingModel(m)
      const list = rows.get(key) ?? []
      for (let r = 0; r < shape[0]; r++) list.push(xs.slice(r * P, (r + 1) * P))
      rows.set(key, list)
      return linearExplainer(m, xs, shape, targets, options)
    }) as Explainer,
  }
  return { e, rows }
}

test('SmoothMPRT: closed form on the linear model from the noisy rows; common noise across models; compat keeps one clean copy', async (t) => {
  const draws = 4
  const { e, rows } = recording()
  const opts: SmoothMPRTOptions = {
    explainer: e,
    onnx: modelPath,
    nrSamples: draws,
    noiseMagnitude: 0.2,
    similarity: 'pearson',
    abs: false,
    seed: 3,
    modelOptions: { workers: 1 },
  }
  const r = (await new SmoothMPRT(opts).evaluate(model, data)) as ModelParameterRandomizationResult
  t.deepEqual(
    r.layers.map((l) => l.name),
    ['dense', 'bias'],
  )
  const trained = rows.get(model)!
  t.is(trained.length, N * draws)
  const others = [...rows.entries()].filter(([m]) => m !== model)
  t.is(others.length, 2)
  // The same keyed noise on every model.
  for (const [, list] of others) t.deepEqual(list, trained)
  // The noise: σ_n·z with σ_n = 0.2·(max x_n − min x_n), z standard normal.
  const z: number[] = []
  for (let s = 0; s < N; s++) {
    const xs = Array.from(x.subarray(s * P, (s + 1) * P))
    const sigma = 0.2 * (Math.max(...xs) - Math.min(...xs))
    for (let k = 0; k < draws; k++) for (const [i, v] of trained[s * draws + k]!.entries()) z.push((v - xs[i]!) / sigma)
  }
  const mean = z.reduce((a2, v) => a2 + v, 0) / z.length
  const sd = Math.sqrt(z.reduce((a2, v) => a2 + (v - mean) ** 2, 0) / z.length)
  t.true(Math.abs(mean) < 0.15 && Math.abs(sd - 1) < 0.15, `mean ${mean}, sd ${sd}`)
  // Stage 1 randomizes W: the smoothed maps are W[:, y]∘x̄ and W′[:, y]∘x̄, x̄ the mean noisy input.
  const w1 = weightsOf(randomizeLayers(readFileSync(modelPath), [0], 3))
  for (let s = 0; s < N; s++) {
    const xbar = Array.from({ length: P }, (_, i) => trained.slice(s * draws, (s + 1) * draws).reduce((q, row) => q + row[i]!, 0) / draws)
    const c = y[s]!
    const expected = corr(
      xbar.map((v, i) => weights[i * K + c]! * v),
      xbar.map((v, i) => w1[i * K + c]! * v),
    )
    t.true(Math.abs(r.similarity[2 * s]! - expected) < 1e-4, `sample ${s}: ${r.similarity[2 * s]} vs ${expected}`)
    // The bias never matters.
    t.true(Math.abs(r.similarity[2 * s]! - r.similarity[2 * s + 1]!) < 1e-6)
  }
  // Cost: draws explanations of P + 1 rows per sample on 3 models, plus the NaN checks.
  t.is(r.forwardPasses, 3 * N * draws * (P + 1) + 2 * N)
  // compat: the last copy is the clean input.
  const q = recording()
  await new SmoothMPRT({ ...opts, explainer: q.e, compat: 'quantus' }).evaluate(model, data)
  const qt = q.rows.get(model)!
  for (let s = 0; s < N; s++) {
    t.deepEqual(qt[s * draws + draws - 1], x.slice(s * P, (s + 1) * P))
    t.deepEqual(qt[s * draws], trained[s * draws])
  }
})

test('SmoothMPRT: no noise is MPRT bottom-up bit for bit; seeds reproduce; shards give the same numbers', async (t) => {
  const base = { explainer, onnx: modelPath, modelOptions: { workers: 1, threads: 1 }, seed: 6 }
  const quiet = (await new SmoothMPRT({ ...base, nrSamples: 3, noiseMagnitude: 0 }).evaluate(
    model,
    data,
  )) as ModelParameterRandomizationResult
  const mprt = (await new ModelParameterRandomization({ ...base, layerOrder: 'bottom-up' }).evaluate(
    model,
    data,
  )) as ModelParameterRandomizationResult
  t.deepEqual(quiet.similarity, mprt.similarity)
  const smooth = new SmoothMPRT({ ...base, nrSamples: 3 })
  const whole = await smooth.evaluate(model, data)
  // (A second evaluation reproducing `whole` is checkShards' single shard.)
  t.notDeepEqual((await new SmoothMPRT({ ...base, nrSamples: 3, seed: 7 }).evaluate(model, data)).scores, whole.scores)
  await checkShards(t, smooth, () => model, data, whole, prng(11), 3)
})

/** scikit-image's structural_similarity on 1-D data (window 7, sample covariance, data range max − min of both). */
function ssimRef(u: number[], v: number[]): number {
  const range = Math.max(...u, ...v) - Math.min(...u, ...v)
  const [c1, c2] = [(0.01 * range) ** 2, (0.03 * range) ** 2]
  let total = 0
  const count = u.length - 6
  for (let i = 0; i < count; i++) {
    const wu = u.slice(i, i + 7)
    const wv = v.slice(i, i + 7)
    const mean = (q: number[]) => q.reduce((s, e) => s + e, 0) / 7
    const [mu, mv] = [mean(wu), mean(wv)]
    const cov = (p: number[], q: number[], mp: number, mq: number) => p.reduce((s, e, j) => s + (e - mp) * (q[j]! - mq), 0) / 6
    const [vu, vv, vuv] = [cov(wu, wu, mu, mu), cov(wv, wv, mv, mv), cov(wu, wv, mu, mv)]
    total += ((2 * mu * mv + c1) * (2 * vuv + c2)) / ((mu * mu + mv * mv + c1) * (vu + vv + c2))
  }
  return total / count
}

async function rejects(t: ExecutionContext, p: Promise<unknown> | (() => unknown), code: ErrorCode, arg?: string): Promise<void> {
  const e = typeof p === 'function' ? t.throws(p as () => unknown) : await t.throwsAsync(p)
  t.true(e instanceof XaiEvalError, String(e))
  t.is((e as XaiEvalError).code, code, (e as Error).message)
  if (arg !== undefined) t.is((e as XaiEvalError).arg, arg, (e as Error).message)
}

test('every error path is a typed error', async (t) => {
  await rejects(t, () => new RandomLogit({} as never), 'INVALID_OPTION', 'explainer')
  await rejects(t, () => new RandomLogit({ explainer, numClasses: 1 }), 'INVALID_OPTION', 'numClasses')
  await rejects(t, () => new DataRandomization({ explainer, threshold: 2 }), 'INVALID_OPTION', 'threshold')
  await rejects(t, () => new DataRandomization({ explainer, similarity: 'kendall' as never }), 'INVALID_OPTION', 'similarity')
  await rejects(t, () => new ModelParameterRandomization({ explainer } as never), 'INVALID_OPTION', 'onnx')
  await rejects(
    t,
    () => new ModelParameterRandomization({ explainer, onnx: modelPath, layerOrder: 'random' as never }),
    'INVALID_OPTION',
    'layerOrder',
  )
  // A label beyond numClasses.
  await rejects(t, new RandomLogit({ explainer, numClasses: 3 }).evaluate(model, data), 'INVALID_OPTION', 'y')
  // Precomputed maps cannot explain another class or another model.
  const maps = precomputed(a, [N, 1, H, W], 'maps')
  await rejects(t, new DataRandomization({ explainer: maps, numClasses: K }).evaluate(model, data), 'EXPLAINER')
  await rejects(t, new ModelParameterRandomization({ explainer: maps, onnx: modelPath }).evaluate(model, data), 'EXPLAINER')
  await rejects(
    t,
    new ModelParameterRandomization({ explainer, onnx: join(dir, 'missing.onnx') }).evaluate(model, data),
    'MODEL_LOAD',
    'onnx',
  )
  const junk = join(dir, 'junk.onnx')
  writeFileSync(junk, 'not a model')
  await rejects(t, new ModelParameterRandomization({ explainer, onnx: junk }).evaluate(model, data), 'MODEL_LOAD', 'onnx')
  await rejects(t, () => randomizeLayers(readFileSync(modelPath), [7], 0), 'INVALID_OPTION', 'layers')
  await rejects(t, () => new SmoothMPRT({ explainer, onnx: modelPath, nrSamples: 0 }), 'INVALID_OPTION', 'nrSamples')
  await rejects(t, () => new SmoothMPRT({ explainer, onnx: modelPath, nrSamples: 1e9 }), 'INVALID_OPTION', 'nrSamples')
  await rejects(t, () => new SmoothMPRT({ explainer, onnx: modelPath, noiseMagnitude: -1 }), 'INVALID_OPTION', 'noiseMagnitude')
  await rejects(t, () => new SmoothMPRT({ explainer, onnx: modelPath, compat: 'captum' as never }), 'INVALID_OPTION', 'compat')
  await rejects(t, () => new RandomLogit({ explainer, reference: 'gradient' as never }), 'INVALID_OPTION', 'reference')
  await rejects(t, () => new DataRandomization({ explainer, compat: 'quantus' } as never), 'INVALID_OPTION')
  await rejects(t, new SmoothMPRT({ explainer: maps, onnx: modelPath, nrSamples: 2 }).evaluate(model, data), 'EXPLAINER')
  // An explainer whose maps change channel count between calls.
  let calls = 0
  const fickle: Explainer = async (_m, xs, shape) => (calls++ === 0 ? xs.slice() : new Float32Array(shape[0] * 2 * H * W))
  await rejects(t, new RandomLogit({ explainer: fickle, numClasses: K }).evaluate(model, data), 'SHAPE_MISMATCH')
  const noWeights = join(dir, 'identity.onnx')
  writeFileSync(
    noWeights,
    writeOnnx({
      nodes: [{ op: 'Flatten', inputs: ['x'], outputs: ['logits'] }],
      inputs: [{ name: 'x', dims: ['N', C, H, W] }],
      outputs: [{ name: 'logits', dims: ['N', P] }],
    }),
  )
  await rejects(t, new ModelParameterRandomization({ explainer, onnx: noWeights }).evaluate(model as Model, data), 'INVALID_OPTION', 'onnx')
})
