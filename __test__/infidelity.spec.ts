// Infidelity: a plain per-row reference written from Yeh et al.'s definition and from
// quantus-semantics §1.7, hand-worked values on a linear model, the shard property, Quantus parity
// and every option error.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'
import { type Dataset, FunctionModel, Infidelity, type InfidelityOptions, OnnxModel, type Shard, XaiEvalError } from 'xai-eval'

import { batched, linearRowModel, prng, type RowModel } from './reference.js'

type Shape = [number, number, number, number]

function setup(seed: number, shape: Shape, aChannels = shape[1], k = 3) {
  const rand = prng(seed)
  const [n, c, h, w] = shape
  const rowLen = c * h * w
  const x = Float32Array.from({ length: n * rowLen }, () => rand() * 2 - 1)
  const a = Float32Array.from({ length: n * aChannels * h * w }, () => rand() * 2 - 1)
  const y = Array.from({ length: n }, () => Math.floor(rand() * k))
  const weights = Float64Array.from({ length: k * rowLen }, () => rand() * 4 - 2)
  const row = linearRowModel(
    weights,
    Float64Array.from({ length: k }, () => rand() - 0.5),
  )
  const data: Dataset = { x, shape, y, a, aShape: [n, aChannels, h, w] }
  const model = () => new FunctionModel(batched(row), { maxBatchSize: 7 })
  return { data, row, model, weights }
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

function closeRel(t: ExecutionContext, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  t.is(actual.length, expected.length, `${what}: length`)
  let worst = 0
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!)))
  }
  t.true(worst <= tol, `${what}: max relative |Δ| = ${worst}`)
}

// ---------------------------------------------------------------------------------------------
// Keyed random streams, mirrored from crates/core/src/rng.rs (as scripts/keyed_rng.py does)

const M64 = (1n << 64n) - 1n
const splitmix = (state: bigint): [bigint, bigint] => {
  const s = (state + 0x9e3779b97f4a7c15n) & M64
  let z = s
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64
  return [s, z ^ (z >> 31n)]
}
const mix = (x: bigint) => splitmix(x)[1]
const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (64n - k))) & M64

class KeyedRng {
  private s: bigint[] = []
  constructor(seed: number, sample: number, purpose: number, step: number) {
    const stream = mix(mix(mix(BigInt(sample)) ^ BigInt(purpose)) ^ BigInt(step))
    let sm = BigInt(seed) ^ splitmix((stream * 0xd1b54a32d192ed03n) & M64)[1]
    for (let i = 0; i < 4; i++) {
      const [next, v] = splitmix(sm)
      sm = next
      this.s.push(v)
    }
  }
  nextU64(): bigint {
    const s = this.s
    const result = (rotl((s[0]! + s[3]!) & M64, 23n) + s[0]!) & M64
    const t = (s[1]! << 17n) & M64
    s[2]! ^= s[0]!
    s[3]! ^= s[1]!
    s[1]! ^= s[2]!
    s[0]! ^= s[3]!
    s[2]! ^= t
    s[3] = rotl(s[3]!, 45n)
    return result
  }
  below(n: number): number {
    const big = BigInt(n)
    const threshold = ((-big & M64) % big) as bigint
    for (;;) {
      const m = this.nextU64() * big
      if ((m & M64) >= threshold) return Number(m >> 64n)
    }
  }
}
const PERTURBATION = 6

test('the keyed-stream mirror matches the pinned value of rng.rs', (t) => {
  t.is(new KeyedRng(0, 0, 1, 0).nextU64(), 17_620_060_956_121_287_104n)
})

// ---------------------------------------------------------------------------------------------
// References

interface RefOptions {
  patchSizes?: number[]
  baseline: 'black' | 'white' | 'min' | number
}

const dims = (d: Dataset) => {
  const [n, c, h, w] = d.shape
  return { n, c, h, w, p: h * w, rowLen: c * h * w, ac: d.aShape?.[1] ?? c }
}

/** a broadcast to the input's layout, for sample s. */
function attribution(d: Dataset, s: number): number[] {
  const { c, p, ac } = dims(d)
  return Array.from({ length: c * p }, (_, f) => d.a[s * ac * p + (ac === 1 ? f % p : f)]!)
}

const logit = (row: RowModel, x: Float32Array, y: number) => row(x)[y]!

/** The baseline value of Quantus's names, from the current (possibly perturbed) array. */
function baselineValue(b: RefOptions['baseline'], current: Float32Array): number {
  if (typeof b === 'number') return b
  return b === 'white' ? Math.max(...current) : Math.min(...current)
}

/** quantus-semantics §1.7, literally: cumulative patches, each baseline from the current array. */
function quantusRef(row: RowModel, d: Dataset, o: RefOptions): number[] {
  const { n, c, h, w, p, rowLen } = dims(d)
  return Array.from({ length: n }, (_, s) => {
    const x = d.x.slice(s * rowLen, (s + 1) * rowLen)
    const a = attribution(d, s)
    const y = Number(d.y[s])
    const y0 = logit(row, x, y)
    let total = 0
    for (const ps of o.patchSizes!) {
      const xt = x.slice()
      const losses: number[] = []
      for (let bi = 0; bi < h / ps; bi++) {
        for (let bj = 0; bj < w / ps; bj++) {
          const value = baselineValue(o.baseline, xt)
          for (let ch = 0; ch < c; ch++)
            for (let i = bi * ps; i < (bi + 1) * ps; i++) for (let j = bj * ps; j < (bj + 1) * ps; j++) xt[ch * p + i * w + j] = value
          const delta = y0 - logit(row, xt, y)
          let sum = 0
          for (let f = 0; f < rowLen; f++) sum += a[f]! * (x[f]! - xt[f]!)
          losses.push((delta - sum) ** 2)
        }
      }
      total += losses.reduce((q, v) => q + v, 0) / losses.length
    }
    return total / o.patchSizes!.length
  })
}

/** Yeh et al.'s Definition 2.1 with square removal: one keyed random square per draw. */
function squareRef(
  row: RowModel,
  d: Dataset,
  o: { draws: number; maxSide: number; seed: number; baseline: 'min' | number; normalize: boolean; firstSample: number },
): number[] {
  const { n, c, h, w, p, rowLen } = dims(d)
  return Array.from({ length: n }, (_, s) => {
    const x = d.x.slice(s * rowLen, (s + 1) * rowLen)
    const a = attribution(d, s)
    const y = Number(d.y[s])
    const y0 = logit(row, x, y)
    const value = o.baseline === 'min' ? Math.min(...x) : o.baseline
    const dots: number[] = []
    const deltas: number[] = []
    for (let draw = 0; draw < o.draws; draw++) {
      const rng = new KeyedRng(o.seed, o.firstSample + s, PERTURBATION, draw)
      const side = 1 + rng.below(Math.min(o.maxSide, h, w))
      const top = rng.below(h - side + 1)
      const left = rng.below(w - side + 1)
      const xt = x.slice()
      for (let ch = 0; ch < c; ch++)
        for (let i = top; i < top + side; i++) for (let j = left; j < left + side; j++) xt[ch * p + i * w + j] = value
      let dot = 0
      for (let f = 0; f < rowLen; f++) dot += (x[f]! - xt[f]!) * a[f]!
      dots.push(dot)
      deltas.push(y0 - logit(row, xt, y))
    }
    let beta = 1
    if (o.normalize) {
      const num = dots.reduce((q, v, i) => q + v * deltas[i]!, 0)
      const den = dots.reduce((q, v) => q + v * v, 0)
      if (den > 0) beta = num / den
    }
    return dots.reduce((q, v, i) => q + (beta * v - deltas[i]!) ** 2, 0) / o.draws
  })
}

// ---------------------------------------------------------------------------------------------
// (1) Library = reference on random small inputs

test('compat quantus = the literal §1.7 reference (cumulative patches, mean over patch sizes)', async (t) => {
  const cases: [number, Shape, number, RefOptions][] = [
    [1, [3, 2, 4, 6], 1, { patchSizes: [2], baseline: 'black' }],
    [2, [3, 2, 4, 6], 2, { patchSizes: [1, 2, 2], baseline: 'white' }],
    [3, [2, 3, 6, 6], 1, { patchSizes: [3, 6, 2], baseline: 0.25 }],
    [4, [4, 1, 4, 4], 1, { patchSizes: [4], baseline: 'black' }],
  ]
  for (const [seed, shape, ac, o] of cases) {
    const { data, row, model } = setup(seed, shape, ac)
    const r = await new Infidelity({ compat: 'quantus', patchSizes: o.patchSizes, baseline: o.baseline }).evaluate(model(), data)
    closeRel(t, r.scores, quantusRef(row, data, o), 1e-9, `case ${seed}`)
    // One clean row plus each distinct patch size's patches, once (Quantus repeats identical reps).
    const [n, , h, w] = shape
    const rows = 1 + [...new Set(o.patchSizes)].reduce((q, ps) => q + (h / ps) * (w / ps), 0)
    t.is(r.forwardPasses, n * rows)
  }
})

test("default with perturbation 'square' = a per-row reference of Yeh et al.'s square removal", async (t) => {
  for (const [seed, shape, ac, baseline, normalize] of [
    [5, [3, 2, 5, 4], 1, 0, false],
    [6, [2, 1, 6, 6], 1, 'min', true],
    [7, [3, 3, 3, 5], 3, -0.5, false],
  ] as const) {
    const { data, row, model } = setup(seed, [...shape], ac)
    const o = { draws: 13, maxSide: 3, seed: seed * 11, baseline, normalize } as const
    const r = await new Infidelity({ perturbation: 'square', ...o }).evaluate(model(), data, { firstSample: 40 })
    closeRel(t, r.scores, squareRef(row, data, { ...o, firstSample: 40 }), 1e-9, `case ${seed}`)
    t.is(r.forwardPasses, shape[0] * (1 + o.draws))
  }
})

test('default Gaussian = a reference recomputed from the rows the model saw; the noise is N(0, σ²)', async (t) => {
  const { data, row } = setup(8, [3, 2, 4, 4])
  const seen: Float32Array[] = []
  const recording = (x: Float32Array, shape: number[]) => {
    const len = x.length / shape[0]!
    for (let r = 0; r < shape[0]!; r++) seen.push(x.slice(r * len, (r + 1) * len))
    return batched(row)(x, shape)
  }
  const sigma = 0.05
  const draws = 200
  const r = await new Infidelity({ sigma, draws, seed: 3 }).evaluate(new FunctionModel(recording, { maxBatchSize: 64 }), data)
  const { n, rowLen } = dims(data)
  t.is(seen.length, n * (1 + draws))
  // Which sample a row perturbs: the nearest clean input (σ is small against the inputs' spread).
  const xs = Array.from({ length: n }, (_, s) => data.x.subarray(s * rowLen, (s + 1) * rowLen))
  const dist = (u: ArrayLike<number>, v: ArrayLike<number>) => Array.from(u).reduce((q, ui, i) => q + (ui - v[i]!) ** 2, 0)
  const noise: number[] = []
  const expected = xs.map((x, s) => {
    const y = Number(data.y[s])
    const a = attribution(data, s)
    const y0 = logit(row, Float32Array.from(x), y)
    const mine = seen.filter((v) => xs.every((other, q) => q === s || dist(v, x) < dist(v, other)))
    const perturbed = mine.filter((v) => dist(v, x) > 0)
    t.is(perturbed.length, draws, `sample ${s}: its draws`)
    let sum = 0
    for (const v of perturbed) {
      let dot = 0
      for (let f = 0; f < rowLen; f++) {
        const i = x[f]! - v[f]!
        noise.push(i)
        dot += i * a[f]!
      }
      sum += (dot - (y0 - logit(row, v, y))) ** 2
    }
    return sum / draws
  })
  closeRel(t, r.scores, expected, 1e-9, 'scores')
  const mean = noise.reduce((q, v) => q + v, 0) / noise.length
  const sd = Math.sqrt(noise.reduce((q, v) => q + (v - mean) ** 2, 0) / noise.length)
  t.true(Math.abs(mean) < 4 * (sigma / Math.sqrt(noise.length)), `noise mean ${mean}`)
  t.true(Math.abs(sd / sigma - 1) < 0.03, `noise sd ${sd}`)
})

// ---------------------------------------------------------------------------------------------
// (2) Hand-worked values on a linear model

/** The exact attribution of a linear logit: a = W_y, so Iᵀa = f(x) − f(x − I) for every I. */
function gradientData(seed: number, shape: Shape) {
  const s = setup(seed, shape)
  const { n, rowLen } = dims(s.data)
  const a = new Float32Array(n * rowLen)
  for (let i = 0; i < n; i++) a.set(s.weights.subarray(Number(s.data.y[i]) * rowLen, (Number(s.data.y[i]) + 1) * rowLen), i * rowLen)
  return { ...s, data: { ...s.data, a, aShape: s.data.shape } }
}

test('linear model, a = its weights: infidelity ≈ 0 for every perturbation (float32 logits only)', async (t) => {
  const { data, model } = gradientData(9, [3, 2, 4, 4])
  for (const o of [{}, { perturbation: 'square' }, { compat: 'quantus', patchSizes: [2, 4] }] as InfidelityOptions[]) {
    const r = await new Infidelity(o).evaluate(model(), data)
    t.true(
      r.scores.every((v) => v < 1e-9),
      `${JSON.stringify(o)}: ${Array.from(r.scores)}`,
    )
  }
})

test('linear model, a = W_y + e: Gaussian infidelity → σ²‖e‖²; with normalize, a = 2·W_y scores ≈ 0', async (t) => {
  const { data, model } = gradientData(10, [2, 1, 3, 3])
  const e = Float32Array.from(data.a, (_, i) => (i % 3 === 0 ? 0.5 : -0.25))
  const withError = { ...data, a: Float32Array.from(data.a, (v, i) => v + e[i]!) }
  const sigma = 0.2
  const r = await new Infidelity({ sigma, draws: 4000, seed: 1 }).evaluate(model(), withError)
  const { rowLen } = dims(data)
  for (let s = 0; s < 2; s++) {
    const norm2 = e.subarray(s * rowLen, (s + 1) * rowLen).reduce((q, v) => q + v * v, 0)
    // (Iᵀe)² = σ²‖e‖²·χ²₁: the mean of 4000 has a relative sd of √(2/4000) ≈ 2.2 %.
    t.true(Math.abs(r.scores[s]! / (sigma * sigma * norm2) - 1) < 0.12, `sample ${s}: ${r.scores[s]} vs ${sigma * sigma * norm2}`)
  }
  const doubled = { ...data, a: data.a.map((v) => 2 * v) }
  const plain = await new Infidelity({ draws: 50 }).evaluate(model(), doubled)
  const scaled = await new Infidelity({ draws: 50, normalize: true }).evaluate(model(), doubled)
  t.true(plain.scores.every((v) => v > 1e-3))
  t.true(scaled.scores.every((v) => v < 1e-9))
})

test('hand-worked Quantus curve: 1 × 2 × 2 input, patch 1, black baseline', async (t) => {
  // logit_0 = 2·x0 − x1 + 3·x2 + x3; x = [1, 2, 3, 4] → y0 = 13; min = 1.
  const row: RowModel = (v) => Float32Array.of(2 * v[0]! - v[1]! + 3 * v[2]! + v[3]!, 0)
  const data: Dataset = { x: Float32Array.of(1, 2, 3, 4), shape: [1, 1, 2, 2], y: [0], a: Float32Array.of(1, 1, 1, 1) }
  // Patches replace x0, x1, x2, x3 by 1 in turn: x̃ = [1,2,3,4], [1,1,3,4], [1,1,1,4], [1,1,1,1].
  // δ = 0, −1, 5, 8; s = Σ (x − x̃) = 0, 1, 3, 6; loss = (0 + 4 + 4 + 4) / 4 = 3.
  const r = await new Infidelity({ compat: 'quantus', patchSizes: [1] }).evaluate(new FunctionModel(batched(row)), data)
  t.deepEqual(Array.from(r.scores), [3])
})

// ---------------------------------------------------------------------------------------------
// (3) Shards

async function shardProperty(t: ExecutionContext, options: InfidelityOptions, seed: number): Promise<void> {
  const { data, model } = setup(seed, [11, 2, 4, 4], 1)
  const metric = new Infidelity(options)
  const whole = await metric.evaluate(model(), data)
  const rand = prng(seed + 100)
  for (let shards = 1; shards <= 7; shards++) {
    const cuts = new Set<number>()
    while (cuts.size < shards - 1) cuts.add(1 + Math.floor(rand() * 10))
    const bounds = [0, ...[...cuts].sort((p, q) => p - q), 11]
    const ranges = bounds.slice(1).map((end, i) => [bounds[i]!, end] as const)
    ranges.sort(() => rand() - 0.5)
    const parts: Shard[] = []
    for (const [s0, s1] of ranges) parts.push(await metric.map(model(), slice(data, s0, s1), { firstSample: s0 }))
    const merged = metric.reduce(parts)
    t.deepEqual(merged.scores, whole.scores, `${shards} shards`)
    t.is(merged.forwardPasses, whole.forwardPasses)
  }
}

test('shards: 1…7 random shards reduce to the single evaluation bit for bit (Gaussian)', (t) => shardProperty(t, { draws: 9, seed: 4 }, 11))
test('shards: 1…7 random shards reduce to the single evaluation bit for bit (square, normalize)', (t) =>
  shardProperty(t, { perturbation: 'square', draws: 9, maxSide: 2, baseline: 'min', normalize: true }, 12))
test('shards: 1…7 random shards reduce to the single evaluation bit for bit (square, uniform baseline)', (t) =>
  shardProperty(t, { perturbation: 'square', draws: 5, baseline: { uniform: [-1, 1] }, seed: 9 }, 14))
test('shards: 1…7 random shards reduce to the single evaluation bit for bit (compat)', (t) =>
  shardProperty(t, { compat: 'quantus', patchSizes: [2, 4] }, 13))

test('seeded: same seed same scores, another seed other scores; the shard offset matters', async (t) => {
  const { data, model } = setup(14, [3, 1, 4, 4])
  const a = await new Infidelity({ draws: 5, seed: 1 }).evaluate(model(), data)
  const b = await new Infidelity({ draws: 5, seed: 1 }).evaluate(model(), data)
  const c = await new Infidelity({ draws: 5, seed: 2 }).evaluate(model(), data)
  const d = await new Infidelity({ draws: 5, seed: 1 }).evaluate(model(), data, { firstSample: 1 })
  t.deepEqual(a.scores, b.scores)
  t.notDeepEqual(a.scores, c.scores)
  t.notDeepEqual(a.scores, d.scores)
})

// ---------------------------------------------------------------------------------------------
// (5) Errors

function throwsTyped(t: ExecutionContext, f: () => unknown, code: string, arg: string): void {
  const e = t.throws(f as () => void)
  t.true(e instanceof XaiEvalError, String(e))
  t.is((e as XaiEvalError).code, code, String(e))
  t.is((e as XaiEvalError).arg, arg, String(e))
}

test('every invalid option is a typed INVALID_OPTION naming it', (t) => {
  const bad: [InfidelityOptions | Record<string, unknown>, string][] = [
    [{ drawz: 3 }, 'drawz'],
    [{ draws: 0 }, 'draws'],
    [{ draws: 100_001 }, 'draws'],
    [{ draws: 1.5 }, 'draws'],
    [{ sigma: 0 }, 'sigma'],
    [{ sigma: -1 }, 'sigma'],
    [{ sigma: Number.NaN }, 'sigma'],
    [{ perturbation: 'blur' }, 'perturbation'],
    [{ perturbation: 'square', sigma: 0.1 }, 'sigma'],
    [{ maxSide: 3 }, 'maxSide'],
    [{ perturbation: 'square', maxSide: 0 }, 'maxSide'],
    [{ baseline: 0 }, 'baseline'],
    [{ perturbation: 'square', baseline: 'black' }, 'baseline'],
    [{ perturbation: 'square', baseline: { uniform: [1, 0] } }, 'baseline'],
    [{ patchSizes: [2] }, 'patchSizes'],
    [{ compat: 'quantus', draws: 3 }, 'draws'],
    [{ compat: 'quantus', normalize: true }, 'normalize'],
    [{ compat: 'quantus', perturbation: 'square' }, 'perturbation'],
    [{ compat: 'quantus', baseline: 'mean' }, 'baseline'],
    [{ compat: 'quantus', baseline: 'blur' }, 'baseline'],
    [{ compat: 'quantus', patchSizes: [] }, 'patchSizes'],
    [{ compat: 'quantus', patchSizes: [0] }, 'patchSizes.0'],
    [{ compat: 'torch' }, 'compat'],
    [{ seed: -1 }, 'seed'],
    [{ softmax: 'yes' }, 'softmax'],
  ]
  for (const [o, arg] of bad) throwsTyped(t, () => new Infidelity(o as InfidelityOptions), 'INVALID_OPTION', arg)
})

test('a patch size that does not divide H and W, and NaN inputs, are typed errors', async (t) => {
  const { data, model } = setup(15, [2, 1, 4, 6])
  const e = await t.throwsAsync(new Infidelity({ compat: 'quantus', patchSizes: [4] }).evaluate(model(), data))
  t.true(e instanceof XaiEvalError && e.code === 'INVALID_OPTION' && e.arg === 'patchSizes', String(e))
  const nan = { ...data, a: data.a.map((v, i) => (i === 5 ? Number.NaN : v)) }
  for (const o of [{}, { compat: 'quantus', patchSizes: [2] }] as InfidelityOptions[]) {
    const err = await t.throwsAsync(new Infidelity(o).evaluate(model(), nan))
    t.true(err instanceof XaiEvalError && err.code === 'NON_FINITE' && err.arg === 'a', String(err))
  }
})

// ---------------------------------------------------------------------------------------------
// (4) Quantus 0.6.0 parity (__test__/fixtures/quantus/faithfulness-*.json, README §Infidelity)

interface FixtureRun {
  metric: string
  params: Record<string, unknown>
  softmax: boolean
  batchSize: number
  scores: number[]
}

const fixtureDir = join(import.meta.dirname, 'fixtures', 'quantus')
/** One ONNX session per fixture model for all its runs, closed when the file is done. */
const sessions = new Map<string, Promise<OnnxModel>>()
const fixtureModel = (file: string) => {
  let m = sessions.get(file)
  if (!m) {
    m = OnnxModel.load(join(fixtureDir, file), { output: 'logits', maxBatchSize: 64 })
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
  for (const run of f.runs.filter((r) => r.metric === 'Infidelity')) {
    const patchSizes = run.params.perturb_patch_sizes as number[]
    test(`${name}: Quantus Infidelity patch sizes ${patchSizes.join(', ')} × ${String(run.params.n_perturb_samples)}`, async (t) => {
      t.false(run.softmax)
      t.is(run.params.perturb_baseline, 'black')
      const model = await fixtureModel(f.model)
      const r = await new Infidelity({ compat: 'quantus', patchSizes }).evaluate(model, data)
      // Float32 sums in Quantus, float64 here: compared relatively, as the fixture's own self-check.
      closeRel(t, r.scores, run.scores, 1e-5, 'scores')
    })
  }
}
