// Sufficiency: plain references of the data-set definition and of quantus-semantics §1.8,
// hand-worked neighbourhoods, the shard property (the reduce sees the whole data set), Quantus
// parity and every option error.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'
import { type Dataset, FunctionModel, OnnxModel, type Shard, Sufficiency, type SufficiencyOptions, XaiEvalError } from 'xai-eval'

import { argmax, batched, linearRowModel, prng, type RowModel } from './reference.js'

type Shape = [number, number, number, number]

function setup(seed: number, shape: Shape, aChannels = 1, k = 3) {
  const rand = prng(seed)
  const [n, c, h, w] = shape
  const rowLen = c * h * w
  const x = Float32Array.from({ length: n * rowLen }, () => rand() * 2 - 1)
  // Two clusters of explanations, so that thresholds below 1 link some pairs and not others.
  const a = Float32Array.from({ length: n * aChannels * h * w }, (_, i) => {
    const s = Math.floor(i / (aChannels * h * w))
    return (s % 2 === 0 ? 1 : -1) * ((i % 3) + 1) + rand() * 1.5
  })
  const y = Array.from({ length: n }, () => Math.floor(rand() * k))
  const row = linearRowModel(
    Float64Array.from({ length: k * rowLen }, () => rand() * 4 - 2),
    Float64Array.from({ length: k }, () => rand() - 0.5),
  )
  const data: Dataset = { x, shape, y, a, aShape: [n, aChannels, h, w] }
  return { data, row, model: () => new FunctionModel(batched(row), { maxBatchSize: 5 }) }
}

const slice = (d: Dataset, s0: number, s1: number): Dataset => {
  const [, c, h, w] = d.shape
  const ac = d.aShape![1]!
  return {
    x: d.x.subarray(s0 * c * h * w, s1 * c * h * w),
    shape: [s1 - s0, c, h, w],
    y: Array.from(d.y).slice(s0, s1),
    a: d.a.subarray(s0 * ac * h * w, s1 * ac * h * w),
    aShape: [s1 - s0, ac, h, w],
  }
}

function predictions(row: RowModel, d: Dataset): number[] {
  const [n, c, h, w] = d.shape
  const len = c * h * w
  return Array.from({ length: n }, (_, s) => argmax(row(d.x.slice(s * len, (s + 1) * len))))
}

function attributions(d: Dataset): number[][] {
  const n = d.shape[0]
  const f = d.a.length / n
  return Array.from({ length: n }, (_, s) => Array.from(d.a.subarray(s * f, (s + 1) * f)))
}

/** Shares of same-class neighbours from a distance matrix: `d / max(d) ≤ threshold`, j ≠ i. */
function shares(dist: number[][], pred: number[], threshold: number, none: number) {
  const n = dist.length
  let max = 0
  for (const r of dist) for (const v of r) max = Number.isNaN(v) || Number.isNaN(max) ? Number.NaN : Math.max(max, v)
  return Array.from({ length: n }, (_, i) => {
    let count = 0
    let same = 0
    for (let j = 0; j < n; j++) {
      const d = max === 0 ? dist[i]![j]! : dist[i]![j]! / max
      if (j !== i && d <= threshold) {
        count++
        if (pred[i] === pred[j]) same++
      }
    }
    return { score: count === 0 ? none : same / count, count }
  })
}

/** The data-set definition: per-sample max-normalisation, |·|, ddof-1 variances over all N, constant features out. */
function dataSetRef(rows: number[][], pred: number[], o: { threshold: number; abs: boolean; normalise: boolean }) {
  const a = rows.map((r) => {
    const m = Math.max(0, ...r.map(Math.abs))
    return r.map((v) => {
      const u = o.normalise && m > 0 ? v / m : v
      return o.abs ? Math.abs(u) : u
    })
  })
  const n = a.length
  const f = a[0]!.length
  const variance = Array.from({ length: f }, (_, k) => {
    if (n < 2) return 0
    const mean = a.reduce((q, r) => q + r[k]!, 0) / n
    return a.reduce((q, r) => q + (r[k]! - mean) ** 2, 0) / (n - 1)
  })
  const dist = a.map((u) =>
    a.map((v) => Math.sqrt(u.reduce((q, ui, k) => (variance[k]! > 0 ? q + (ui - v[k]!) ** 2 / variance[k]! : q), 0))),
  )
  return shares(dist, pred, o.threshold, Number.NaN)
}

/** quantus-semantics §1.8: one float32 max over everything, then per batch SciPy's seuclidean. */
function quantusRef(rows: number[][], pred: number[], o: { threshold: number; batchSize: number }) {
  const all = rows.flat()
  const m = Math.fround(Math.max(...all.map(Math.abs)))
  const a = rows.map((r) => r.map((v) => Math.abs(Math.fround(Math.fround(v) / m))))
  const out: { score: number; count: number }[] = []
  for (let start = 0; start < a.length; start += o.batchSize) {
    const b = a.slice(start, start + o.batchSize)
    const stacked = [...b, ...b]
    const f = b[0]!.length
    const variance = Array.from({ length: f }, (_, k) => {
      const mean = stacked.reduce((q, r) => q + r[k]!, 0) / stacked.length
      return stacked.reduce((q, r) => q + (r[k]! - mean) ** 2, 0) / (stacked.length - 1)
    })
    const dist = b.map((u) => b.map((v) => Math.sqrt(u.reduce((q, ui, k) => q + (ui - v[k]!) ** 2 / variance[k]!, 0))))
    out.push(...shares(dist, pred.slice(start, start + o.batchSize), o.threshold, 0))
  }
  return out
}

function closeTo(t: ExecutionContext, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  t.is(actual.length, expected.length, `${what}: length`)
  for (let i = 0; i < expected.length; i++) {
    const [p, q] = [actual[i]!, expected[i]!]
    t.true(Number.isNaN(q) ? Number.isNaN(p) : Math.abs(p - q) <= tol, `${what}[${i}]: ${p} vs ${q}`)
  }
}

// ---------------------------------------------------------------------------------------------
// (1) Library = references

test('default = the data-set reference (all pairs, per-sample normalisation, ddof-1 variances)', async (t) => {
  for (const [seed, shape, ac, threshold, abs, normalise] of [
    [1, [12, 2, 3, 3], 1, 0.6, true, true],
    [2, [9, 1, 4, 4], 1, 0.8, false, true],
    [3, [10, 3, 2, 3], 3, 0.7, true, false],
    [4, [7, 1, 3, 3], 1, 1, true, true],
  ] as const) {
    const { data, row, model } = setup(seed, [...shape], ac)
    const r = await new Sufficiency({ threshold, abs, normalise }).evaluate(model(), data)
    const ref = dataSetRef(attributions(data), predictions(row, data), { threshold, abs, normalise })
    t.deepEqual(Array.from(r.predicted), predictions(row, data))
    t.deepEqual(
      Array.from(r.neighbours),
      ref.map((v) => v.count),
      `case ${seed}: neighbours`,
    )
    closeTo(
      t,
      r.scores,
      ref.map((v) => v.score),
      1e-12,
      `case ${seed}: scores`,
    )
    if (threshold < 1) {
      t.true(
        ref.some((v) => v.count > 0 && v.count < shape[0] - 1),
        `case ${seed}: a non-trivial neighbourhood`,
      )
    }
    t.is(r.forwardPasses, shape[0])
  }
})

test("compat quantus = §1.8's per-batch reference (batches of consecutive samples, seuclidean V, 0 without neighbours)", async (t) => {
  for (const [seed, shape, threshold, batchSize] of [
    [5, [12, 2, 3, 3], 0.6, 64],
    [6, [11, 1, 4, 4], 0.8, 4],
    [7, [10, 1, 3, 3], 0.9, 3],
  ] as const) {
    const { data, row, model } = setup(seed, [...shape])
    const r = await new Sufficiency({ compat: 'quantus', threshold, batchSize }).evaluate(model(), data)
    const ref = quantusRef(attributions(data), predictions(row, data), { threshold, batchSize })
    t.true(
      ref.some((v) => v.count > 0),
      `case ${seed}: some neighbours`,
    )
    t.deepEqual(
      Array.from(r.neighbours),
      ref.map((v) => v.count),
      `case ${seed}: neighbours`,
    )
    closeTo(
      t,
      r.scores,
      ref.map((v) => v.score),
      1e-12,
      `case ${seed}: scores`,
    )
  }
})

// ---------------------------------------------------------------------------------------------
// (2) Hand-worked

test('hand-worked: one feature 0, 1, 2, 10 with classes by sign of x', async (t) => {
  // Logits [x, −x]: class 0 for x > 0. One attribution entry per sample, no normalisation.
  const row: RowModel = (v) => Float32Array.of(v[0]!, -v[0]!)
  const data: Dataset = { x: Float32Array.of(1, 1, -1, -1), shape: [4, 1, 1, 1], y: [0, 0, 0, 0], a: Float32Array.of(0, 1, 2, 10) }
  // Distances |Δa|/σ, divided by the largest (10/σ): 0.1, 0.2, 1 from sample 0; 0.1 between 1 and 2.
  // threshold 0.25 links 0–1, 0–2, 1–2; sample 3 has no neighbour.
  const r = await new Sufficiency({ threshold: 0.25, normalise: false }).evaluate(new FunctionModel(batched(row)), data)
  t.deepEqual(Array.from(r.predicted), [0, 0, 1, 1])
  t.deepEqual(Array.from(r.neighbours), [2, 2, 2, 0])
  closeTo(t, r.scores, [0.5, 0.5, 0, Number.NaN], 0, 'scores')
  t.is(r.skipped, 1)
  // Quantus: the same in one batch, except 0 for the sample without neighbours.
  const q = await new Sufficiency({ compat: 'quantus', threshold: 0.25, normalise: false }).evaluate(new FunctionModel(batched(row)), data)
  closeTo(t, q.scores, [0.5, 0.5, 0, 0], 0, 'quantus scores')
})

test('compat: a constant feature in a batch makes every distance NaN and every score 0; the default ignores it', async (t) => {
  const row: RowModel = (v) => Float32Array.of(v[0]!, 0)
  const data: Dataset = {
    x: Float32Array.of(1, 0, 1, 0, 1, 0),
    shape: [3, 2, 1, 1],
    y: [0, 0, 0],
    a: Float32Array.of(0.1, 5, 0.2, 5, 0.9, 5),
    aShape: [3, 2, 1, 1],
  }
  const m = () => new FunctionModel(batched(row))
  const q = await new Sufficiency({ compat: 'quantus', threshold: 1, normalise: false }).evaluate(m(), data)
  t.deepEqual(Array.from(q.scores), [0, 0, 0])
  const d = await new Sufficiency({ threshold: 0.2, normalise: false }).evaluate(m(), data)
  t.deepEqual(Array.from(d.neighbours), [1, 1, 0])
})

// ---------------------------------------------------------------------------------------------
// (3) Shards: the reduce compares the whole data set, whatever the split

async function shardProperty(t: ExecutionContext, options: SufficiencyOptions, seed: number): Promise<void> {
  const n = 13
  const { data, model } = setup(seed, [n, 2, 3, 3])
  const metric = new Sufficiency(options)
  const whole = await metric.evaluate(model(), data)
  t.true(
    whole.scores.some((v) => v > 0),
    `non-trivial scores: ${Array.from(whole.scores)}`,
  )
  const rand = prng(seed + 100)
  for (let shards = 1; shards <= 7; shards++) {
    const cuts = new Set<number>()
    while (cuts.size < shards - 1) cuts.add(1 + Math.floor(rand() * (n - 1)))
    const bounds = [0, ...[...cuts].sort((p, q) => p - q), n]
    const ranges = bounds.slice(1).map((end, i) => [bounds[i]!, end] as const)
    ranges.sort(() => rand() - 0.5)
    const parts: Shard[] = []
    for (const [s0, s1] of ranges) parts.push(await metric.map(model(), slice(data, s0, s1), { firstSample: s0 }))
    const merged = metric.reduce(parts)
    t.deepEqual(merged.scores, whole.scores, `${shards} shards`)
    t.deepEqual(merged.neighbours, whole.neighbours)
  }
}

test('shards: 1…7 random shards reduce to the single evaluation bit for bit (data set)', (t) => shardProperty(t, { threshold: 0.7 }, 11))
test('shards: 1…7 random shards reduce to the single evaluation bit for bit (compat, batches of 4)', (t) =>
  shardProperty(t, { compat: 'quantus', threshold: 0.9, batchSize: 4 }, 12))

test('serialised shards reduce to the same result', async (t) => {
  const { data, model } = setup(13, [6, 1, 3, 3])
  const metric = new Sufficiency({ threshold: 0.8 })
  const parts = [await metric.map(model(), slice(data, 0, 2)), await metric.map(model(), slice(data, 2, 6), { firstSample: 2 })]
  const { fromJSON } = await import('xai-eval')
  const again = parts.map((p) => fromJSON<Shard>(JSON.stringify(p)))
  t.deepEqual(metric.reduce(again).scores, (await metric.evaluate(model(), data)).scores)
})

// ---------------------------------------------------------------------------------------------
// (5) Errors

test('every invalid option is a typed INVALID_OPTION naming it', (t) => {
  const bad: [Record<string, unknown>, string][] = [
    [{ treshold: 0.5 }, 'treshold'],
    [{ threshold: -0.1 }, 'threshold'],
    [{ threshold: Number.NaN }, 'threshold'],
    [{ threshold: '0.5' }, 'threshold'],
    [{ batchSize: 8 }, 'batchSize'],
    [{ compat: 'quantus', batchSize: 0 }, 'batchSize'],
    [{ compat: 'quantus', batchSize: 2.5 }, 'batchSize'],
    [{ maxValues: 0 }, 'maxValues'],
    [{ maxValues: 2 ** 28 + 1 }, 'maxValues'],
    [{ abs: 1 }, 'abs'],
    [{ compat: 'scipy' }, 'compat'],
  ]
  for (const [o, arg] of bad) {
    const e = t.throws(() => new Sufficiency(o as SufficiencyOptions))
    t.true(e instanceof XaiEvalError && e.code === 'INVALID_OPTION' && e.arg === arg, `${JSON.stringify(o)}: ${String(e)}`)
  }
})

test('too many values for maxValues, NaN attributions and mismatched shards are typed errors', async (t) => {
  const { data, model } = setup(14, [6, 1, 3, 3])
  const small = new Sufficiency({ maxValues: 5 * 9 })
  const e1 = await t.throwsAsync(small.evaluate(model(), data))
  t.true(e1 instanceof XaiEvalError && e1.code === 'INVALID_OPTION' && e1.arg === 'maxValues', String(e1))
  // Shards within the bound, the data set beyond it: the reduce refuses.
  const parts = [await small.map(model(), slice(data, 0, 3)), await small.map(model(), slice(data, 3, 6), { firstSample: 3 })]
  const e2 = t.throws(() => small.reduce(parts))
  t.true(e2 instanceof XaiEvalError && e2.code === 'INVALID_OPTION' && e2.arg === 'maxValues', String(e2))

  const nan = { ...data, a: data.a.map((v, i) => (i === 7 ? Number.NaN : v)) }
  const e3 = await t.throwsAsync(new Sufficiency().evaluate(model(), nan))
  t.true(e3 instanceof XaiEvalError && e3.code === 'NON_FINITE' && e3.arg === 'a', String(e3))

  const metric = new Sufficiency()
  const other = setup(15, [3, 1, 2, 2])
  const e4 = t.throws(() => metric.reduce([parts[0]!, { ...parts[1]!, firstSample: 3 }, { ...parts[1]!, firstSample: 9 }]))
  t.true(e4 instanceof XaiEvalError, String(e4))
  const mixed = [await metric.map(model(), slice(data, 0, 3)), await metric.map(other.model(), other.data, { firstSample: 3 })]
  const e5 = t.throws(() => metric.reduce(mixed))
  t.true(e5 instanceof XaiEvalError && e5.code === 'INVALID_OPTION', String(e5))
})

// ---------------------------------------------------------------------------------------------
// (4) Quantus 0.6.0 parity (__test__/fixtures/quantus/faithfulness-*.json, README §Sufficiency)

interface FixtureRun {
  metric: string
  params: Record<string, unknown>
  batchSize: number
  scores: number[]
  detail?: { predictedClasses?: number[] }
}

const fixtureDir = join(import.meta.dirname, 'fixtures', 'quantus')
/** One ONNX session per fixture model for all its runs, closed when the file is done. */
const sessions = new Map<string, Promise<OnnxModel>>()
const fixtureModel = (file: string) => {
  let m = sessions.get(file)
  if (!m) {
    m = OnnxModel.load(join(fixtureDir, file), { maxBatchSize: 64 })
    sessions.set(file, m)
  }
  return m
}
test.after.always(async () => {
  for (const m of sessions.values()) await (await m).close()
})
for (const name of ['faithfulness-gray', 'faithfulness-rgb']) {
  const f = JSON.parse(readFileSync(join(fixtureDir, `${name}.json`), 'utf8')) as { data: string; model: string; runs: FixtureRun[] }
  const src = JSON.parse(readFileSync(join(fixtureDir, f.data), 'utf8')) as {
    x: number[]
    a: number[]
    y: number[]
    shape: Shape
    aShape: number[]
  }
  const data: Dataset = { x: Float32Array.from(src.x), shape: src.shape, y: src.y, a: Float32Array.from(src.a), aShape: src.aShape }
  for (const run of f.runs.filter((r) => r.metric === 'Sufficiency')) {
    const threshold = run.params.threshold as number
    test(`${name}: Quantus Sufficiency threshold ${threshold}, batch size ${run.batchSize}`, async (t) => {
      t.deepEqual([run.params.distance_func, run.params.abs, run.params.normalise], ['seuclidean', true, true])
      const model = await fixtureModel(f.model)
      const metric = new Sufficiency({ compat: 'quantus', threshold, batchSize: run.batchSize })
      const r = await metric.evaluate(model, data)
      if (run.detail?.predictedClasses) t.deepEqual(Array.from(r.predicted), run.detail.predictedClasses)
      closeTo(t, r.scores, run.scores, 1e-12, 'scores')
      // …and the same from three shards.
      const n = data.shape[0]
      const parts = await Promise.all([
        metric.map(model, slice(data, 5, n), { firstSample: 5 }),
        metric.map(model, slice(data, 0, 1)),
        metric.map(model, slice(data, 1, 5), { firstSample: 1 }),
      ])
      t.deepEqual(metric.reduce(parts).scores, r.scores)
    })
  }
}
