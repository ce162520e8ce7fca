// RegionPerturbation, Selectivity and IROF: a plain per-row reference written from the papers and
// quantus-semantics §1.2/§1.3/§1.9, hand-worked values on a tiny linear model, the shard property
// (1…7 shards in any order reduce to the single evaluation bit for bit), Quantus 0.6.0 fixtures,
// and every option error.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'
import {
  type ErrorCode,
  FunctionModel,
  Irof,
  type IrofResult,
  OnnxModel,
  QualityGapEstimator,
  RegionPerturbation,
  Selectivity,
  type CurveResult,
  type Dataset,
  fromJSON,
  type Shard,
  XaiEvalError,
} from 'xai-eval'

import { batched, linearRowModel, prng, type RefData, type RowModel, scoreOf, stableDescending } from './reference.js'

// ---------------------------------------------------------------------------------------------
// Reference: one forward call per row, rows rebuilt from scratch.

/** Pixels of each patch: blocks of `ps` from the top-left (paper) or on Quantus's padded grid. */
function patchesRef(h: number, w: number, ps: number, quantus: boolean): number[][] {
  const pad = (side: number) => (quantus ? (ps - (side % ps)) % ps : 0)
  const [th, tw] = [pad(h), pad(w)]
  const [top, left] = [Math.floor(th / 2), Math.floor(tw / 2)]
  const rows = quantus ? (h + th) / ps : Math.ceil(h / ps)
  const cols = quantus ? (w + tw) / ps : Math.ceil(w / ps)
  const out: number[][] = []
  for (let bi = 0; bi < rows; bi++) {
    for (let bj = 0; bj < cols; bj++) {
      const pixels: number[] = []
      for (let pi = bi * ps; pi < (bi + 1) * ps; pi++) {
        for (let pj = bj * ps; pj < (bj + 1) * ps; pj++) {
          const [i, j] = [pi - top, pj - left]
          if (i >= 0 && i < h && j >= 0 && j < w) pixels.push(i * w + j)
        }
      }
      out.push(pixels)
    }
  }
  return out
}

/** Regions of a per-pixel label map. */
function regionsOf(labels: ArrayLike<number>): number[][] {
  const out: number[][] = []
  for (let p = 0; p < labels.length; p++) {
    const l = labels[p]!
    out[l] = [...(out[l] ?? []), p]
  }
  return out
}

interface RegionRefOptions {
  /** Regions of each sample (pixel lists). */
  regions: (s: number) => number[][]
  /** Region score: the sum over the channel-broadcast attribution (patches) or the mean (superpixels). */
  reduce: 'sum' | 'mean'
  order: 'morf' | 'lerf'
  baseline: number | 'min'
  abs: boolean
  softmax: boolean
  /** Regions removed at most. */
  steps: number
}

/** Per sample, f_y after removing the first k regions, k = 0…K. */
function regionCurvesRef(model: RowModel, d: RefData, o: RegionRefOptions): number[][] {
  const [n, c, h, w] = d.shape
  const p = h * w
  const ac = (d.aShape ?? d.shape)[1]!
  const out: number[][] = []
  for (let s = 0; s < n; s++) {
    const regions = o.regions(s)
    const score = regions.map((pixels) => {
      let sum = 0
      let count = 0
      for (let ch = 0; ch < c; ch++) {
        for (const q of pixels) {
          const v = d.a[s * ac * p + (ac === 1 ? 0 : ch) * p + q]!
          sum += o.abs ? Math.abs(v) : v
          count++
        }
      }
      return o.reduce === 'sum' ? sum : sum / count
    })
    const morf = stableDescending(score)
    const order = o.order === 'morf' ? morf : [...morf].reverse()
    const clean = d.x.slice(s * c * p, (s + 1) * c * p)
    const base = o.baseline === 'min' ? clean.reduce((a, b) => Math.min(a, b), Infinity) : Math.fround(o.baseline)
    const curve: number[] = []
    for (let k = 0; k <= Math.min(o.steps, regions.length); k++) {
      const row = clean.slice()
      for (const r of order.slice(0, k)) for (const q of regions[r]!) for (let ch = 0; ch < c; ch++) row[ch * p + q] = base
      curve.push(scoreOf(model(row), d.y[s]!, o.softmax))
    }
    out.push(curve)
  }
  return out
}

const trapz = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) - (v.length > 0 ? (v[0]! + v[v.length - 1]!) / 2 : 0)

// ---------------------------------------------------------------------------------------------
// Random small cases

interface Case {
  describe: string
  data: RefData & { shape: [number, number, number, number]; segments: Uint32Array }
  row: RowModel
  model: () => FunctionModel
  softmax: boolean
  patchSize: number
  regions: number
  baseline: number
  abs: boolean
  rand: () => number
}

function makeCase(id: number): Case {
  const rand = prng(0xa11ce + 7919 * id)
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  const [n, c, h, w, k] = [int(1, 6), int(1, 3), int(2, 9), int(2, 9), int(2, 4)]
  const rowLen = c * h * w
  const ac = rand() < 0.5 ? 1 : c
  const ties = id % 3 === 0
  const x = Float32Array.from({ length: n * rowLen }, () => rand() * 2 - 1)
  const a = Float32Array.from({ length: n * ac * h * w }, () => (ties ? int(-2, 2) : rand() * 2 - 1))
  const y = Array.from({ length: n }, () => int(0, k - 1))
  // Segments: random labels 0…K_s − 1, every label used.
  const segments = new Uint32Array(n * h * w)
  for (let s = 0; s < n; s++) {
    const ks = int(1, Math.min(6, h * w))
    for (let q = 0; q < h * w; q++) segments[s * h * w + q] = q < ks ? q : int(0, ks - 1)
  }
  const row = linearRowModel(
    Float64Array.from({ length: k * rowLen }, () => rand() * 4 - 2),
    Float64Array.from({ length: k }, () => rand() - 0.5),
  )
  const output = rand() < 0.75 ? ('probabilities' as const) : ('logits' as const)
  const maxBatchSize = int(1, 12)
  const concurrency = int(1, 3)
  const patchSize = int(1, Math.min(h, w))
  const regions = int(1, 30)
  const baseline = rand() < 0.5 ? 0 : Math.round((rand() * 2 - 1) * 100) / 100
  const abs = rand() < 0.3
  return {
    describe: `case ${id}: x [${n},${c},${h},${w}] a [${n},${ac},…] K=${k} ${output} batch=${maxBatchSize}×${concurrency} ps=${patchSize} L=${regions} baseline=${baseline} abs=${abs}${ties ? ' ties' : ''}`,
    data: { x, shape: [n, c, h, w], y, a, aShape: [n, ac, h, w], segments },
    row,
    model: () => new FunctionModel(batched(row), { output, maxBatchSize, concurrency }),
    softmax: output === 'probabilities',
    patchSize,
    regions,
    baseline,
    abs,
    rand,
  }
}

const TOL = 1e-9

function near(t: ExecutionContext, actual: ArrayLike<number>, expected: readonly number[], what: string, tol = TOL): void {
  t.is(actual.length, expected.length, `${what}: length`)
  let worst = 0
  let at = -1
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!)
    if (!(d <= worst)) [worst, at] = [d, i]
  }
  t.true(worst <= tol, `${what}: max |Δ| = ${worst} at ${at} (got ${actual[at]}, expected ${expected[at]})`)
}

const cases = Array.from({ length: 12 }, (_, i) => makeCase(i))

for (const c of cases) {
  test(`RegionPerturbation MoRF/LeRF, paper and compat = reference — ${c.describe}`, async (t) => {
    const [, , h, w] = c.data.shape
    for (const compat of [undefined, 'quantus'] as const) {
      for (const order of ['morf', 'lerf'] as const) {
        const metric = new RegionPerturbation({
          patchSize: c.patchSize,
          order,
          regions: c.regions,
          baseline: c.baseline,
          abs: c.abs,
          compat,
        })
        const r = await metric.evaluate(c.model(), c.data)
        const patches = patchesRef(h, w, c.patchSize, compat === 'quantus')
        const f = regionCurvesRef(c.row, c.data, {
          regions: () => patches,
          reduce: 'sum',
          order,
          baseline: c.baseline,
          abs: c.abs,
          softmax: compat ? true : c.softmax,
          steps: c.regions,
        })
        const diffs = f.map((v) => v.map((y) => v[0]! - y).slice(compat ? 1 : 0))
        const tol = compat ? 1e-6 : TOL // compat rounds the differences to float32, as Quantus
        near(t, r.curves[order]!.values, diffs.flat(), `${compat ?? 'paper'} ${order} curves`, tol)
        const expected = diffs.map((v) => (compat ? trapz(v) : v.reduce((a, b) => a + b, 0) / v.length))
        near(t, r.scores, expected, `${compat ?? 'paper'} ${order} scores`, compat ? 1e-5 : TOL)
        t.is(r.forwardPasses, c.data.shape[0] * (1 + Math.min(c.regions, patches.length)))
        t.is(r.higherIsBetter, order === 'morf')
      }
    }
  })

  test(`Selectivity, paper and compat = reference — ${c.describe}`, async (t) => {
    const [n, , h, w] = c.data.shape
    for (const compat of [undefined, 'quantus'] as const) {
      const r = await new Selectivity({ patchSize: c.patchSize, baseline: c.baseline, abs: c.abs, compat }).evaluate(c.model(), c.data)
      const patches = patchesRef(h, w, c.patchSize, compat === 'quantus')
      const f = regionCurvesRef(c.row, c.data, {
        regions: () => patches,
        reduce: 'sum',
        order: 'morf',
        baseline: c.baseline,
        abs: c.abs,
        softmax: compat ? true : c.softmax,
        steps: Number.POSITIVE_INFINITY,
      })
      const curves = f.map((v) => v.slice(compat ? 1 : 0))
      const P = patches.length
      near(t, r.curves.morf!.values, curves.flat(), `${compat ?? 'paper'} curves`, compat ? 1e-6 : TOL)
      const expected = curves.map((v) => (compat ? trapz(v) : trapz(v) / P))
      near(t, r.scores, expected, `${compat ?? 'paper'} scores`, compat ? 1e-5 : TOL)
      t.is(r.forwardPasses, n * (P + (compat ? 0 : 1)))
    }
  })

  test(`IROF on given segments, paper and compat = reference — ${c.describe}`, async (t) => {
    const [n, ch, h, w] = c.data.shape
    for (const compat of [undefined, 'quantus'] as const) {
      if (compat && ch !== 1) continue
      const r = await new Irof({ baseline: c.baseline, abs: c.abs, compat }).evaluate(c.model(), c.data)
      const f = regionCurvesRef(c.row, c.data, {
        regions: (s) => regionsOf(c.data.segments.subarray(s * h * w, (s + 1) * h * w)),
        reduce: 'mean',
        order: 'morf',
        baseline: c.baseline,
        abs: c.abs,
        softmax: compat ? true : c.softmax,
        steps: Number.POSITIVE_INFINITY,
      })
      const ratios = f.map((v) => v.map((y) => y / v[0]!).slice(compat ? 1 : 0))
      const ks = f.map((v) => v.length - 1)
      t.deepEqual(Array.from(r.segments), ks)
      // Ratios grow without bound as y0 → 0: relative tolerances.
      const scale = Math.max(1, ...ratios.flat().map(Math.abs))
      near(t, r.ratios.values, ratios.flat(), `${compat ?? 'paper'} curves`, (compat ? 1e-6 : TOL) * scale)
      const expected = ratios.map((v, s) => (compat ? ks[s]! - trapz(v) : 1 - trapz(v) / ks[s]!))
      const big = Math.max(1, ...expected.map(Math.abs))
      near(t, r.scores, expected, `${compat ?? 'paper'} scores`, (compat ? 1e-5 : TOL) * big)
      t.is(
        r.forwardPasses,
        ks.reduce((a, k) => a + k + 1, 0),
      )
      t.is(r.ratios.offsets[n], r.ratios.values.length)
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Hand-worked: one 2 × 2 grey image x = [1, 2, 3, 4], a = [4, 3, 2, 1], logits f = Σ x (+ a 0 class).

const tiny: Dataset = {
  x: Float32Array.from([1, 2, 3, 4]),
  shape: [1, 1, 2, 2],
  y: [0],
  a: Float32Array.from([4, 3, 2, 1]),
  segments: Uint32Array.from([0, 0, 1, 1]),
}
const sumModel = () =>
  new FunctionModel(batched(linearRowModel(Float64Array.from([1, 1, 1, 1, 0, 0, 0, 0]), new Float64Array(2))), { output: 'logits' })

test('hand-worked: Selectivity, RegionPerturbation and IROF on Σx', async (t) => {
  // 1-pixel patches in order 0, 1, 2, 3: f = 10, 9, 7, 4, 0 on x = 0, ¼, ½, ¾, 1 → area 6.25.
  const sel = await new Selectivity({ patchSize: 1 }).evaluate(sumModel(), tiny)
  t.deepEqual(Array.from(sel.curves.morf!.values), [10, 9, 7, 4, 0])
  t.is(sel.scores[0], 6.25)
  t.false(sel.higherIsBetter)
  // Two regions: differences 0, 1, 3 → AOPC 4/3; LeRF removes pixel 3, then 2: 0, 4, 7 → 11/3.
  const rp = await new RegionPerturbation({ patchSize: 1, regions: 2 }).evaluate(sumModel(), tiny)
  t.deepEqual(Array.from(rp.curves.morf!.values), [0, 1, 3])
  t.is(rp.scores[0], 4 / 3)
  const lerf = await new RegionPerturbation({ patchSize: 1, regions: 2, order: 'lerf' }).evaluate(sumModel(), tiny)
  t.deepEqual(Array.from(lerf.curves.lerf!.values), [0, 4, 7])
  t.false(lerf.higherIsBetter)
  // 2-pixel patches over the 2 × 2 image: one patch, removed at once: f = 10, 0 → AUC 5.
  t.is((await new Selectivity({ patchSize: 2 }).evaluate(sumModel(), tiny)).scores[0], 5)
  // IROF: segment means 3.5, 1.5; f = 10, 7, 0 → r = 1, 0.7, 0 on x = 0, ½, 1: AOC = 1 − 0.6.
  const irof = await new Irof({ baseline: 0 }).evaluate(sumModel(), tiny)
  t.deepEqual(Array.from(irof.ratios.values), [1, 0.7, 0])
  t.true(Math.abs(irof.scores[0]! - 0.4) < 1e-15)
  // The mean baseline (2.5) is a snapshot of the unperturbed image: f = 10, 12, 10 → r = 1, 1.2, 1.
  const mean = await new Irof().evaluate(sumModel(), tiny)
  t.deepEqual(Array.from(mean.ratios.values), [1, 1.2, 1])
  // A zero unperturbed score leaves the ratio undefined: NaN, skipped from the mean.
  const zero = await new Irof({ baseline: 0 }).evaluate(sumModel(), { ...tiny, x: new Float32Array(4) })
  t.true(Number.isNaN(zero.scores[0]))
  t.is(zero.skipped, 1)
})

test('Quantus padding: 5 × 5 with ps 2 puts the grid one pixel up and left, paper keeps edge patches smaller', async (t) => {
  const x = Float32Array.from({ length: 25 }, (_, i) => i + 1)
  const data: Dataset = { x, shape: [1, 1, 5, 5], y: [0], a: Float32Array.from({ length: 25 }, (_, i) => 25 - i) }
  const row = linearRowModel(
    Float64Array.from({ length: 50 }, (_, i) => (i < 25 ? 1 : 0)),
    new Float64Array(2),
  )
  const model = () => new FunctionModel(batched(row), { output: 'logits' })
  // Paper: patch 0 = pixels {0, 1, 5, 6} (sum 1+2+6+7 = 16). Quantus: t = 1 → padding (0, 1): same grid here.
  const paper = await new RegionPerturbation({ patchSize: 2, regions: 1 }).evaluate(model(), data)
  t.deepEqual(Array.from(paper.curves.morf!.values), [0, 16])
  // 6 × 6 with ps 4: t = 2, padding (1, 1): Quantus's first patch is the 3 × 3 corner, the paper's the 4 × 4.
  const x6 = Float32Array.from({ length: 36 }, () => 1)
  const data6: Dataset = { x: x6, shape: [1, 1, 6, 6], y: [0], a: Float32Array.from({ length: 36 }, (_, i) => 36 - i) }
  const row6 = linearRowModel(
    Float64Array.from({ length: 72 }, (_, i) => (i < 36 ? 1 : 0)),
    new Float64Array(2),
  )
  const m6 = () => new FunctionModel(batched(row6), { output: 'logits' })
  t.deepEqual(Array.from((await new Selectivity({ patchSize: 4 }).evaluate(m6(), data6)).curves.morf!.values), [36, 20, 12, 4, 0])
  const q = await new RegionPerturbation({ patchSize: 4, regions: 1, compat: 'quantus', baseline: 0 }).evaluate(m6(), data6)
  // Softmax of [36 − 9, 0] against [36, 0]: the first patch removed 9 pixels.
  const sm = (z: number) => 1 / (1 + Math.exp(-z))
  t.true(Math.abs(q.curves.morf!.values[0]! - (sm(36) - sm(27))) < 1e-7)
})

// ---------------------------------------------------------------------------------------------
// Shard property: 1…7 shards, random split points, random order.

type AnyMetric = RegionPerturbation | Selectivity | Irof

async function shardProperty(t: ExecutionContext, make: () => AnyMetric, c: Case): Promise<void> {
  const metric = make()
  const { segments, ...rest } = c.data
  const whole = (await metric.evaluate(c.model(), segments.length > 0 ? c.data : rest)) as CurveResult | IrofResult
  const [n, ch, h, w] = c.data.shape
  const rowLen = ch * h * w
  const ac = c.data.aShape![1]!
  for (let parts = 1; parts <= 7; parts++) {
    const cuts = new Set<number>([0, n])
    while (cuts.size < Math.min(parts, n) + 1) cuts.add(1 + Math.floor(c.rand() * (n - 1)))
    const bounds = [...cuts].sort((a, b) => a - b)
    const shards: Shard[] = []
    for (let i = 0; i + 1 < bounds.length; i++) {
      const [s0, s1] = [bounds[i]!, bounds[i + 1]!]
      const slice: Dataset = {
        x: c.data.x.slice(s0 * rowLen, s1 * rowLen),
        shape: [s1 - s0, ch, h, w],
        y: c.data.y.slice(s0, s1) as number[],
        a: c.data.a.slice(s0 * ac * h * w, s1 * ac * h * w),
        aShape: [s1 - s0, ac, h, w],
        ...(c.data.segments.length > 0 ? { segments: c.data.segments.slice(s0 * h * w, s1 * h * w) } : {}),
      }
      shards.push(await make().map(c.model(), slice, { firstSample: s0 }))
    }
    // Random order, through JSON as between processes.
    shards.sort(() => c.rand() - 0.5)
    const reduced = metric.reduce(shards.map((s) => fromJSON<Shard>(JSON.stringify(s))))
    t.deepEqual(reduced.scores, whole.scores, `${bounds.length - 1} shards ${bounds.join('|')}`)
    t.deepEqual(
      'ratios' in whole ? (reduced as IrofResult).ratios : (reduced as CurveResult).curves,
      'ratios' in whole ? whole.ratios : whole.curves,
    )
  }
}

for (const id of [1, 4, 7]) {
  const c = makeCase(id + 100)
  test(`shard property, 1…7 shards — ${c.describe}`, async (t) => {
    await shardProperty(
      t,
      () => new RegionPerturbation({ patchSize: c.patchSize, order: 'random', seed: 7, baseline: { uniform: [-1, 1] } }),
      c,
    )
    await shardProperty(t, () => new RegionPerturbation({ patchSize: c.patchSize, regions: c.regions, compat: 'quantus' }), c)
    await shardProperty(t, () => new Selectivity({ patchSize: c.patchSize, baseline: 'mean' }), c)
    await shardProperty(t, () => new Irof({ abs: c.abs }), c)
    await shardProperty(t, () => new Irof({ baseline: { uniform: [0, 1] }, seed: 3 }), c)
  })
}

test('IROF SLIC: shard property without given segments', async (t) => {
  const c = makeCase(200)
  const { segments: _, ...rest } = c.data
  await shardProperty(t, () => new Irof({ nSegments: 4 }), { ...c, data: { ...rest, segments: new Uint32Array(0) } as Case['data'] })
})

// ---------------------------------------------------------------------------------------------
// Quantus 0.6.0 fixtures (scripts/make_quantus_faithfulness_fixture.py; see fixtures/quantus/README.md).

const dir = join(import.meta.dirname, 'fixtures', 'quantus')

interface FixtureRun {
  metric: string
  params: Record<string, unknown>
  batchSize: number
  curves?: number[][]
  scores?: number[]
  detail?: { curves?: number[][] }
}

function fixture(name: string) {
  const f = JSON.parse(readFileSync(join(dir, name), 'utf8')) as {
    data: string
    model: string
    runs: FixtureRun[]
    irofSegments?: { labels: number[]; nSegments: number[] }
  }
  const src = JSON.parse(readFileSync(join(dir, f.data), 'utf8')) as {
    x: number[]
    a: number[]
    y: number[]
    shape: [number, number, number, number]
    aShape: number[]
  }
  const data: Dataset = { x: Float32Array.from(src.x), shape: src.shape, y: src.y, a: Float32Array.from(src.a), aShape: src.aShape }
  return { ...f, data }
}

const FIX_TOL = 1e-5

for (const name of ['faithfulness-gray.json', 'faithfulness-rgb.json']) {
  const f = fixture(name)
  for (const run of f.runs) {
    if (run.metric !== 'RegionPerturbation' && run.metric !== 'Selectivity') continue
    const p = run.params as { patch_size: number; order?: 'morf' | 'lerf'; regions_evaluation?: number }
    test(`Quantus fixture ${name}: ${run.metric} ps=${p.patch_size} ${p.order ?? ''}`, async (t) => {
      const model = await OnnxModel.load(join(dir, f.model), { output: 'logits', maxBatchSize: 7 })
      t.teardown(() => model.close())
      const r =
        run.metric === 'RegionPerturbation'
          ? await new RegionPerturbation({
              patchSize: p.patch_size,
              order: p.order,
              regions: p.regions_evaluation,
              compat: 'quantus',
            }).evaluate(model, f.data)
          : await new Selectivity({ patchSize: p.patch_size, compat: 'quantus' }).evaluate(model, f.data)
      const curves = Object.values(r.curves)[0]!
      near(t, curves.values, run.curves!.flat(), 'curves', FIX_TOL)
      // Quantus's get_auc_score: trapz of each sample's curve.
      near(t, r.scores, run.curves!.map(trapz), 'auc', FIX_TOL * 10)
    })
  }
}

test('Quantus fixture: our SLIC gives skimage 0.26 segments on the grey images', async (t) => {
  const f = fixture('faithfulness-gray.json')
  const model = await OnnxModel.load(join(dir, f.model), { output: 'logits', maxBatchSize: 16 })
  t.teardown(() => model.close())
  const given = await new Irof({ baseline: 0 }).evaluate(model, { ...f.data, segments: Uint32Array.from(f.irofSegments!.labels) })
  const own = await new Irof({ baseline: 0 }).evaluate(model, f.data)
  t.deepEqual(Array.from(own.segments), f.irofSegments!.nSegments)
  t.deepEqual(own.scores, given.scores)
  t.deepEqual(own.ratios, given.ratios)
})

{
  const f = fixture('faithfulness-gray.json')
  const black = f.runs.find((r) => r.metric === 'IROF' && r.params.perturb_baseline === 'black')!
  test("Quantus fixture: IROF 'black' (batch 64 = one batch: the data set's minimum) with compat", async (t) => {
    const model = await OnnxModel.load(join(dir, f.model), { output: 'logits', maxBatchSize: 5 })
    t.teardown(() => model.close())
    const min = f.data.x.reduce((a, b) => Math.min(a, b), Infinity)
    const r = await new Irof({ baseline: min, compat: 'quantus' }).evaluate(model, f.data)
    t.deepEqual(Array.from(r.segments), f.irofSegments!.nSegments)
    const expected = black.scores!
    for (let s = 0; s < expected.length; s++) {
      // The ratio amplifies ~4e-6 torch/ONNX logit differences (fixture README): relative 1e-4.
      t.true(
        Math.abs(r.scores[s]! - expected[s]!) <= 1e-4 * Math.max(1, Math.abs(expected[s]!)),
        `sample ${s}: ${r.scores[s]} vs ${expected[s]}`,
      )
    }
    const curves = black.detail!.curves!.flat()
    let worst = 0
    for (let i = 0; i < curves.length; i++)
      worst = Math.max(worst, Math.abs(r.ratios.values[i]! - curves[i]!) / Math.max(1, Math.abs(curves[i]!)))
    t.true(worst <= 1e-4, `curves: relative max |Δ| = ${worst}`)
  })
}

{
  const qge = JSON.parse(readFileSync(join(dir, 'qge.json'), 'utf8')) as {
    cases: {
      data: string
      model: string
      runs: {
        wrapped: { metric: string; params: { patch_size?: number; order?: 'morf'; regions_evaluation?: number } }
        inverse_method: 'sign-flip' | 'value-swap'
        return_auc_per_sample: boolean
        qge?: number[]
      }[]
    }[]
  }
  for (const c of qge.cases) {
    for (const run of c.runs.filter((r) => r.wrapped.metric === 'RegionPerturbation')) {
      const agg = run.return_auc_per_sample ? 'auc' : 'mean'
      const p = run.wrapped.params
      test(`Quantus fixture: InverseEstimation(RegionPerturbation ps=${p.patch_size}) ${run.inverse_method} ${agg}`, async (t) => {
        const f = fixture('faithfulness-gray.json')
        t.is(c.data, 'pf-gray.json') // the data of faithfulness-gray.json
        const model = await OnnxModel.load(join(dir, c.model), { output: 'logits', maxBatchSize: 16 })
        t.teardown(() => model.close())
        const metric = new RegionPerturbation({ patchSize: p.patch_size, order: p.order, regions: p.regions_evaluation, compat: 'quantus' })
        const r = await new QualityGapEstimator({ metric, inverse: run.inverse_method, compat: 'quantus', aggregate: agg }).evaluate(
          model,
          f.data,
        )
        near(t, r.scores, run.qge!, 'qge', FIX_TOL * 10)
      })
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

function expectError(t: ExecutionContext, run: () => unknown, code: ErrorCode, arg: string): void {
  const e = t.throws(run, { instanceOf: XaiEvalError }) as XaiEvalError | undefined
  t.is(e?.code, code, e?.message)
  t.is(e?.arg, arg, e?.message)
}

async function expectRejection(t: ExecutionContext, run: () => Promise<unknown>, code: ErrorCode, arg: string): Promise<void> {
  const e = (await t.throwsAsync(run, { instanceOf: XaiEvalError })) as XaiEvalError | undefined
  t.is(e?.code, code, e?.message)
  t.is(e?.arg, arg, e?.message)
}

test('option errors are typed', async (t) => {
  expectError(t, () => new RegionPerturbation({ patchsize: 4 } as never), 'INVALID_OPTION', 'patchsize')
  expectError(t, () => new RegionPerturbation({ patchSize: 0 }), 'INVALID_OPTION', 'patchSize')
  expectError(t, () => new RegionPerturbation({ patchSize: 1.5 }), 'INVALID_OPTION', 'patchSize')
  expectError(t, () => new RegionPerturbation({ regions: 0 }), 'INVALID_OPTION', 'regions')
  expectError(t, () => new RegionPerturbation({ order: 'random', compat: 'quantus' }), 'INVALID_OPTION', 'order')
  expectError(t, () => new RegionPerturbation({ baseline: 'black' }), 'INVALID_OPTION', 'baseline')
  expectError(t, () => new RegionPerturbation({ baseline: 'mean', compat: 'quantus' }), 'INVALID_OPTION', 'baseline')
  expectError(t, () => new RegionPerturbation({ seed: -1 }), 'INVALID_OPTION', 'seed')
  expectError(t, () => new Selectivity({ order: 'lerf' } as never), 'INVALID_OPTION', 'order')
  expectError(t, () => new Selectivity({ baseline: 'white' }), 'INVALID_OPTION', 'baseline')
  expectError(t, () => new Selectivity({ compat: 'captum' as never }), 'INVALID_OPTION', 'compat')
  expectError(t, () => new Irof({ compat: 'quantus' }), 'INVALID_OPTION', 'baseline')
  expectError(t, () => new Irof({ baseline: 'mean', compat: 'quantus' }), 'INVALID_OPTION', 'baseline')
  expectError(t, () => new Irof({ baseline: 'black' }), 'INVALID_OPTION', 'baseline')
  expectError(t, () => new Irof({ nSegments: 0 }), 'INVALID_OPTION', 'nSegments')
  expectError(t, () => new Irof({ compactness: 0 }), 'INVALID_OPTION', 'compactness')
  expectError(t, () => new Irof({ maxIter: 10_000 }), 'INVALID_OPTION', 'maxIter')

  const model = sumModel()
  await expectRejection(t, () => new RegionPerturbation({ patchSize: 3 }).evaluate(model, tiny), 'INVALID_OPTION', 'patchSize')
  await expectRejection(t, () => new Selectivity({ patchSize: 3, compat: 'quantus' }).evaluate(model, tiny), 'INVALID_OPTION', 'patchSize')
  const rgb: Dataset = { x: new Float32Array(12), shape: [1, 3, 2, 2], y: [0], a: new Float32Array(4), aShape: [1, 1, 2, 2] }
  await expectRejection(t, () => new Irof({ baseline: 0, compat: 'quantus' }).evaluate(model, rgb), 'INVALID_OPTION', 'compat')
  await expectRejection(t, () => new Irof().evaluate(model, { ...tiny, segments: new Uint32Array(3) }), 'SHAPE_MISMATCH', 'segments')
  await expectRejection(
    t,
    () => new Irof().evaluate(model, { ...tiny, segments: Uint32Array.from([0, 0, 2, 2]) }),
    'INVALID_OPTION',
    'segments',
  )
  await expectRejection(
    t,
    () => new Irof().evaluate(model, { ...tiny, segments: Int32Array.from([0, -1, 0, 0]) }),
    'INVALID_OPTION',
    'segments',
  )
  await expectRejection(t, () => new Irof().evaluate(model, { ...tiny, segments: [0, 0, 1, 1] as never }), 'INVALID_OPTION', 'segments')
  await expectRejection(t, () => new Irof().evaluate(model, tiny, { firstSample: -1 }), 'INVALID_OPTION', 'firstSample')
  // Shards of other parameters or metrics are refused.
  const shard = await new Selectivity({ patchSize: 1 }).map(model, tiny)
  expectError(t, () => new Selectivity({ patchSize: 2 }).reduce([shard]), 'INVALID_OPTION', 'shards[0]')
  expectError(t, () => new RegionPerturbation({ patchSize: 1 }).reduce([shard]), 'INVALID_OPTION', 'shards[0]')
})
