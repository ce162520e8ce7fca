// No untyped error can escape the library: every public entry point is called with each argument
// replaced by null, strings, numbers, wrong typed arrays, BigInt64Array, functions and symbols.
// Whatever happens, a thrown error is an XaiEvalError with a code and the argument at fault.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

import test from 'ava'
import * as api from 'xai-eval'
import { type Dataset, FunctionModel, type Model, registry, XaiEvalError } from 'xai-eval'

import { batched, linearRowModel, prng } from './reference.js'

const rand = prng(5)
const [N, C, H, W, K] = [3, 2, 8, 8, 3]
const F = C * H * W
const data: Dataset = {
  x: Float32Array.from({ length: N * F }, () => rand()),
  shape: [N, C, H, W],
  y: [0, 1, 2],
  a: Float32Array.from({ length: N * F }, () => rand()),
  masks: Uint8Array.from({ length: N * H * W }, () => (rand() < 0.3 ? 1 : 0)),
}
const model = (): Model =>
  new FunctionModel(
    batched(
      linearRowModel(
        Float64Array.from({ length: K * F }, () => rand() - 0.5),
        new Float64Array(K),
      ),
    ),
    { maxBatchSize: 8 },
  )

/** A linear ONNX model of the fuzz's input shape, written once. */
let onnxPath: string | undefined
function mprtOnnx(): string {
  if (onnxPath) return onnxPath
  onnxPath = join(mkdtempSync(join(tmpdir(), 'xai-eval-fuzz-')), 'linear.onnx')
  writeFileSync(
    onnxPath,
    api.writeOnnx({
      nodes: [
        { op: 'Flatten', inputs: ['x'], outputs: ['flat'] },
        { op: 'MatMul', inputs: ['flat', 'W'], outputs: ['logits'] },
      ],
      inputs: [{ name: 'x', dims: ['N', C, H, W] }],
      outputs: [{ name: 'logits', dims: ['N', K] }],
      initializers: [{ name: 'W', dims: [F, K], data: Float32Array.from({ length: F * K }, () => rand() - 0.5) }],
    }),
  )
  return onnxPath
}
test.after.always(() => {
  if (onnxPath) rmSync(dirname(onnxPath), { recursive: true, force: true })
})

const identity = api.named('identity', async (_m, xs) => xs.slice())

const BAD: [string, unknown][] = [
  ['undefined', undefined],
  ['null', null],
  ['a string', 'abc'],
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['2^32 + 3', 2 ** 32 + 3],
  ['{}', {}],
  ['[]', []],
  ['a BigInt64Array', new BigInt64Array(N * F)],
  ['a Float64Array', new Float64Array(N * F)],
  ['an Int8Array', new Int8Array(3)],
  ['a function', () => 0],
  ['a symbol', Symbol('s')],
  ['true', true],
  ['a bigint', 3n],
]

/** Calls `f(args with args[i] = bad)` for every i and bad value; any error must be typed. */
async function fuzz(t: import('ava').ExecutionContext, name: string, args: unknown[], f: (...a: unknown[]) => unknown): Promise<void> {
  for (let i = 0; i < args.length; i++) {
    for (const [label, bad] of BAD) {
      const a = [...args]
      a[i] = bad
      try {
        await f(...a)
      } catch (e) {
        t.true(
          e instanceof XaiEvalError && typeof e.code === 'string' && typeof e.arg === 'string',
          `${name}: argument ${i} = ${label} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
        )
      }
    }
  }
}

/** The same for each field of an object argument. */
async function fuzzFields(
  t: import('ava').ExecutionContext,
  name: string,
  obj: Record<string, unknown>,
  f: (o: unknown) => unknown,
): Promise<void> {
  for (const key of Object.keys(obj)) {
    await fuzz(t, `${name}.${key}`, [obj[key]], (v) => f({ ...obj, [key]: v }))
  }
}

test('every registered metric: constructor options, map, evaluate and reduce arguments', async (t) => {
  for (const [id, cls] of registry) {
    const wraps = id === 'qge' || id === 'random-baseline-gap'
    // Metrics that re-explain inputs get a cheap explainer (the input itself) unless the fuzz replaces it.
    const explains = cls.meta.needs.includes('explainer')
    // MPRT also needs the model's ONNX file.
    const extra =
      id === 'model-parameter-randomization' || id === 'efficient-mprt'
        ? { onnx: mprtOnnx(), modelOptions: { workers: 1, threads: 1 } }
        : {}
    const make = (o: unknown) =>
      wraps
        ? new cls({ metric: new api.PixelFlipping(), ...(o as object) })
        : explains && (o === undefined || (o !== null && typeof o === 'object' && !('explainer' in o)))
          ? new cls({ explainer: identity, ...extra, ...(o as object) })
          : new cls(o)
    await fuzz(t, `new ${cls.meta.name}`, [{}], (o) => make(o))
    // every option of the class's defaults, one at a time
    await fuzzFields(t, `${cls.meta.name} option`, { ...make(undefined).params }, (o) => make(o))
    // Options the small data set needs: noise-free imputation, a subset smaller than its C·H·W = 128 entries.
    const small: Record<string, object> = {
      soundness: { noise: 0 },
      completeness: { noise: 0 },
      'faithfulness-correlation': { subsetSize: 16 },
      'top-k-intersection': { k: 10 },
      'sensitivity-n': { nSamples: 2 },
      'max-sensitivity': { nrSamples: 2 },
      'avg-sensitivity': { nrSamples: 2 },
      'local-lipschitz-estimate': { nrSamples: 2 },
      'relative-input-stability': { nrSamples: 2 },
    }
    const metric = make(small[id] ?? {})
    const d = id === 'soundness' || id === 'completeness' ? { ...data, a: data.a.map(Math.abs) } : data
    await fuzz(t, `${id}.evaluate`, [model(), d, {}], (m, dd, o) => metric.evaluate(m as Model, dd as Dataset, o as never))
    await fuzzFields(t, `${id}.evaluate data`, { ...d }, (dd) => metric.evaluate(model(), dd as Dataset))
    await fuzzFields(t, `${id}.evaluate options`, { signal: new AbortController().signal, onProgress: () => {}, firstSample: 0 }, (o) =>
      metric.evaluate(model(), d, o as never),
    )
    const shard = await metric.map(model(), d)
    await fuzz(t, `${id}.reduce`, [[shard]], (s) => metric.reduce(s as never))
    await fuzz(t, `${id}.reduce element`, [shard], (s) => metric.reduce([s] as never))
    await fuzzFields(t, `${id}.reduce shard field`, { ...shard }, (s) => metric.reduce([s] as never))
  }
})

test('models, registry, serialisation and utilities', async (t) => {
  await fuzz(t, 'OnnxModel.load', ['/nonexistent.onnx', {}], (p, o) => api.OnnxModel.load(p as string, o as never))
  await fuzzFields(
    t,
    'OnnxModel.load options',
    { executionProviders: ['cpu'], maxBatchSize: 4, workers: 1, threads: 1, output: 'logits' },
    (o) => api.OnnxModel.load('/nonexistent.onnx', o as never),
  )
  await fuzz(t, 'new FunctionModel', [() => new Float32Array(3), {}], (f, o) => new FunctionModel(f as never, o as never))
  await fuzz(t, 'createMetric', [{ id: 'srg', params: {} }], (s) => api.createMetric(s as never))
  await fuzz(t, 'metricClass', ['srg'], (s) => api.metricClass(s))
  await fuzz(t, 'resultFromJSON', ['{}'], (s) => api.resultFromJSON(s))
  await fuzz(t, 'new RowCache', [10], (n) => new api.RowCache(n as number))
  await fuzz(t, 'invert', [data.a, N, 'sign-flip'], (a, n, m) => api.invert(a as never, n as never, m as never))
  await fuzz(t, 'impute.noisyLinear', [new Float32Array(16), new Uint8Array(16), { shape: [1, 4, 4] }], (x, m, o) =>
    api.impute.noisyLinear(x as never, m as never, o as never),
  )
  await fuzz(t, 'modify.remove', [data.a, [N, C, H, W], { kind: 'constant', fraction: 0.5 }], (a, s, o) =>
    api.modify.remove(a as never, s as never, o as never),
  )
  await fuzz(
    t,
    'hausdorff',
    [
      { x: [0, 1], y: [0, 1] },
      { x: [0, 1], y: [1, 0] },
    ],
    (a, b) => api.hausdorff(a as never, b as never),
  )
  await fuzz(t, 'minimalHausdorff', [{ a: { x: [0, 1], y: [0, 1] } }], (c) => api.minimalHausdorff(c as never))
  await fuzz(t, 'loadDemo', [undefined], (d) => api.loadDemo(d as never))
})

test('explainers: built-in options, checks, precomputed maps and the cache', async (t) => {
  const shape = [N, C, H, W] as const
  const targets = Int32Array.from(data.y as number[])
  for (const [name, make, options] of [
    ['occlusion', api.occlusion, { patch: 2, stride: 2, baseline: 0 }],
    ['rise', api.rise, { masks: 3, cell: 2, p: 0.5, seed: 1, baseline: 'mean' }],
    ['shapley', api.shapley, { patch: 4, permutations: 2, seed: 0, baseline: 0 }],
  ] as const) {
    await fuzzFields(t, `${name} option`, { ...options }, (o) => (make as (o: unknown) => unknown)(o))
    const e = api.checkExplainer((make as (o: unknown) => api.NamedExplainer)(options))
    await fuzz(t, `${name}.explain`, [model(), data.x, shape, targets], (m, x, s, tg) =>
      e.explain(m as Model, x as Float32Array, s as api.Shape4, tg as Int32Array),
    )
  }
  await fuzz(t, 'checkExplainer', [identity], (e) => api.checkExplainer(e).explain(model(), data.x, shape, targets))
  await fuzz(t, 'named', ['x', identity.explain], (n, e) => api.named(n as string, e as api.Explainer))
  await fuzz(t, 'precomputed', [data.a, [N, C, H, W], 'p'], (a, s, n) => api.precomputed(a as Float32Array, s as number[], n as string))
  await fuzz(t, 'ExplanationCache', [1024], (b) => new api.ExplanationCache(b as number).wrap(identity))
  await fuzz(t, 'mapAttributions', [identity, (a: Float32Array) => a], (e, f) =>
    api
      .checkExplainer(api.mapAttributions(e as api.Explainer, f as (a: Float32Array) => Float32Array))
      .explain(model(), data.x, shape, targets),
  )
})

test('distributed entry points: evaluateDistributed, startWorker, cancelRun, hashFile, hashReference', async (t) => {
  // Every variant fails before Redis is reached: the model file does not exist (its hash is computed
  // first), the worker's URL is not a redis:// URL, the run id is malformed.
  const run = {
    connection: 'redis://127.0.0.1:1',
    model: { path: '/nonexistent.onnx' },
    data: { reference: { demo: true }, hash: 'a'.repeat(64), samples: 4 },
    metrics: [{ id: 'deletion' }],
    methods: ['gradient'],
    shardSize: 2,
  }
  await fuzz(t, 'evaluateDistributed', [run], (o) => api.evaluateDistributed(o as never))
  await fuzzFields(t, 'evaluateDistributed', run, (o) => api.evaluateDistributed(o as never))
  const worker = { connection: 'not-a-url', concurrency: 1, lockDuration: 1000 }
  await fuzz(t, 'startWorker', [worker], (o) => api.startWorker(o as never))
  await fuzzFields(t, 'startWorker', { concurrency: 1, lockDuration: 1000, providers: ['cpu'] }, (o) =>
    api.startWorker({ connection: 'not-a-url', ...(o as object) } as never),
  )
  await fuzz(t, 'cancelRun', [{ connection: 'redis://127.0.0.1:1', runId: 'no' }], (o) => api.cancelRun(o as never))
  await fuzz(t, 'hashFile', ['/nonexistent'], (p) => api.hashFile(p as never))
  await fuzz(t, 'hashReference', [{ x: '/nonexistent.npy', y: '/n.npy', attributions: { a: '/a.npy' } }], (r) =>
    api.hashReference(r as never),
  )
})

test('comparing methods: compareMethods, rankAgreement, runJob and the array reader', async (t) => {
  const scores = { a: [0.1, 0.2, 0.3], b: [0.3, 0.1, 0.2] }
  await fuzz(t, 'compareMethods', ['srg', true, scores, { reps: 100 }], (m, h, s, o) =>
    api.compareMethods(m as never, h as never, s as never, o as never),
  )
  await fuzzFields(t, 'compareMethods scores', scores, (s) => api.compareMethods('srg', true, s as never, { reps: 100 }))
  await fuzz(t, 'rankAgreement', [[api.compareMethods('srg', true, scores, { reps: 100 })]], (c) => api.rankAgreement(c as never))
  const source: api.Source = {
    n: N,
    rowShape: [C, H, W],
    methods: ['m'],
    aChannels: { m: C },
    read: async (s, e) => ({
      x: data.x.slice(s * F, e * F),
      y: Int32Array.from([0, 1, 2]).slice(s, e),
      a: { m: data.a.slice(s * F, e * F) },
    }),
  }
  const options = { metrics: [{ id: 'pixel-flipping', options: { featuresInStep: 64 } }], reps: 100 }
  await fuzz(t, 'runJob', [model(), source, options], (m, s, o) => api.runJob(m as never, s as never, o as never))
  await fuzzFields(t, 'runJob source', { ...source }, (s) => api.runJob(model(), s as never, options))
  await fuzzFields(t, 'runJob options', { ...options }, (o) => api.runJob(model(), source, o as never))
  await fuzz(t, 'readNpy', ['/nonexistent.npy', 'x'], (p, a) => api.readNpy(p as never, a as never))
  await fuzz(t, 'NpySource.open', ['/nonexistent.npz:x', 'x'], (p, a) => api.NpySource.open(p as never, a as never))
  await fuzz(t, 'NpySource.fromBytes', [new Uint8Array(4), 'x', 'f'], (b, a, w) =>
    api.NpySource.fromBytes(b as never, a as never, w as never),
  )
})

test('the ExplanationMetrics facade: constructor, every metric method, evaluateAll and compareMethods', async (t) => {
  const fdata = { x: data.x, shape: [N, C, H, W], y: [0, 1, 2], masks: data.masks! }
  const explainers = { identity, maps: data.a }
  await fuzz(t, 'new ExplanationMetrics', [model(), { explainers }], (m, o) => new api.ExplanationMetrics(m as never, o as never))
  await fuzzFields(
    t,
    'ExplanationMetrics options',
    { explainers, onnx: mprtOnnx(), modelOptions: { workers: 1, threads: 1 }, seed: 0, cacheBytes: 1 << 20 },
    (o) => new api.ExplanationMetrics(model(), o as never),
  )
  await fuzzFields(
    t,
    'ExplanationMetrics explainers',
    { ...explainers },
    (e) => new api.ExplanationMetrics(model(), { explainers: e as never }),
  )
  const m = new api.ExplanationMetrics(model(), { explainers, onnx: mprtOnnx(), modelOptions: { workers: 1, threads: 1 } })
  const cheap = { sensitivity: { nSamples: 2 }, deletion: { steps: 2 }, insertion: { steps: 2 } }
  const methods = {
    deletion: cheap.deletion,
    insertion: cheap.insertion,
    sensitivityN: cheap.sensitivity,
    modelParameterRandomizationTest: {},
    dataRandomizationTest: {},
    pointingGame: {},
  } as const
  for (const [name, options] of Object.entries(methods)) {
    const call = (d: unknown, o: unknown) => (m[name as keyof typeof methods] as (d: unknown, o: unknown) => Promise<unknown>).call(m, d, o)
    await fuzz(t, `facade.${name}`, [fdata, options], call)
    // Every method checks its data with the same code: fuzzed field by field on the cheap ones only.
    if (name !== 'deletion' && name !== 'pointingGame') continue
    await fuzzFields(t, `facade.${name} data`, { ...fdata }, (d) => call(d, options))
    // One image: shape [C, H, W], y a number.
    await fuzzFields(
      t,
      `facade.${name} one image`,
      { x: data.x.subarray(0, F), shape: [C, H, W], y: 1, masks: data.masks!.subarray(0, H * W) },
      (d) => call(d, options),
    )
  }
  const all = { metrics: ['deletion', 'pointingGame'], masks: data.masks, boxes: [0, 0, 2, 2, 1, 1, 3, 3, 0, 0, 8, 8], ...cheap }
  await fuzz(t, 'evaluateAll', [fdata, all], (d, o) => m.evaluateAll(d as never, o as never))
  await fuzzFields(t, 'evaluateAll options', { ...all, signal: new AbortController().signal, onProgress: () => {} }, (o) =>
    m.evaluateAll(fdata, o as never),
  )
  const cmp = { ...all, resamples: 100, alpha: 0.1 }
  await fuzz(t, 'compareMethods', [fdata, cmp], (d, o) => m.compareMethods(d as never, o as never))
  await fuzzFields(t, 'compareMethods options', cmp, (o) => m.compareMethods(fdata, o as never))
})
