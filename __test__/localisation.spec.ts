// Localisation metrics: a plain reference written from the definitions (per sample, nothing
// shared), hand-worked values, masks vs boxes, the shard property, the Quantus 0.6.0 fixture
// (scripts/make_quantus_localisation_fixture.py) and every error path.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'
import {
  AttributionLocalisation,
  AUC,
  type Dataset,
  type ErrorCode,
  FunctionModel,
  type LocalisationResult,
  loadDemo,
  PointingGame,
  type PointingGameResult,
  RelevanceMassAccuracy,
  RelevanceRankAccuracy,
  TopKIntersection,
  XaiEvalError,
} from 'xai-eval'

import { prng, stableDescending } from './reference.js'
import { checkShards } from './shards.js'

const model = () => new FunctionModel(async (_x, shape) => new Float32Array(shape[0]! * 2), { maxBatchSize: 8 })

// ---------------------------------------------------------------------------------------------
// Reference, from the definitions.

/** Pixel relevance of sample `s`: the transformed attribution summed over its channels. */
function pixels(d: Dataset, s: number, f: (v: number) => number = (v) => v): number[] {
  const [, , h, w] = d.shape
  const ac = (d.aShape ?? d.shape)[1]!
  const out: number[] = new Array(h * w).fill(0)
  for (let c = 0; c < ac; c++) for (let p = 0; p < h * w; p++) out[p]! += f(d.a[(s * ac + c) * h * w + p]!)
  return out
}

function maskOf(d: Dataset, s: number): boolean[] {
  const [, , h, w] = d.shape
  return Array.from(d.masks!.subarray(s * h * w, (s + 1) * h * w), (m) => m !== 0)
}

function pointingRef(d: Dataset, s: number, tolerance: number): { hit: number; y: number; x: number } {
  const v = pixels(d, s)
  const w = d.shape[3]
  const at = v.indexOf(Math.max(...v))
  const [y, x] = [Math.floor(at / w), at % w]
  const m = maskOf(d, s)
  if (!m.some(Boolean)) return { hit: Number.NaN, y, x }
  const hit = m.some((inside, p) => inside && (Math.floor(p / w) - y) ** 2 + ((p % w) - x) ** 2 <= tolerance ** 2)
  return { hit: hit ? 1 : 0, y, x }
}

function topShare(v: number[], m: boolean[], k: number): number {
  return (
    stableDescending(v)
      .slice(0, k)
      .filter((p) => m[p]).length / k
  )
}

function aucRef(v: number[], m: boolean[]): number {
  let wins = 0
  let pairs = 0
  m.forEach((pos, i) => {
    if (!pos) return
    m.forEach((neg, j) => {
      if (neg) return
      pairs++
      wins += v[i]! > v[j]! ? 1 : v[i] === v[j] ? 0.5 : 0
    })
  })
  return pairs === 0 ? Number.NaN : wins / pairs
}

function randomData(seed: number, n = 9, h = 6, w = 5, ac = 1, ties = false): Dataset {
  const r = prng(seed)
  const a = Float32Array.from({ length: n * ac * h * w }, () => (ties ? Math.floor(r() * 4) - 1 : r() * 2 - 0.5))
  const masks = Uint8Array.from({ length: n * h * w }, () => (r() < 0.3 ? 1 : 0))
  masks.fill(0, 0, h * w) // sample 0: empty mask
  return { x: new Float32Array(n * ac * h * w), shape: [n, ac, h, w], y: new Array(n).fill(0), a, aShape: [n, ac, h, w], masks }
}

/** Equal within `tol` relative to max(1, |expected|) (Quantus sums in float32), NaN where expected is NaN. */
const close = (t: ExecutionContext, a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  t.is(a.length, b.length, what)
  for (let i = 0; i < b.length; i++) {
    const ok = (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)) || Math.abs(a[i]! - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!))
    t.true(ok, `${what}[${i}]: ${a[i]} vs ${b[i]}`)
  }
}

test('every metric agrees with the reference on random inputs (ties, 1 or 2 attribution channels)', async (t) => {
  for (const [seed, ac, ties] of [
    [1, 1, false],
    [2, 2, false],
    [3, 1, true],
    [4, 2, true],
  ] as const) {
    const d = randomData(seed, 9, 6, 5, ac, ties)
    const n = d.shape[0]
    const ids = Array.from({ length: n }, (_, s) => s)
    const pg = (await new PointingGame({ tolerance: 1.5 }).evaluate(model(), d)) as PointingGameResult
    const ref = ids.map((s) => pointingRef(d, s, 1.5))
    close(
      t,
      pg.scores,
      ref.map((r) => r.hit),
      0,
      `pointing ${seed}`,
    )
    t.deepEqual(
      Array.from(pg.maxLocation),
      ref.flatMap((r) => [r.y, r.x]),
    )
    const mass = await new RelevanceMassAccuracy().evaluate(model(), d)
    const massRef = ids.map((s) => {
      const v = pixels(d, s)
      const m = maskOf(d, s)
      return m.some(Boolean) ? v.reduce((acc, x, p) => acc + (m[p] ? x : 0), 0) / v.reduce((acc, x) => acc + x, 0) : Number.NaN
    })
    close(t, mass.scores, massRef, 1e-9, `mass ${seed}`)
    const rank = await new RelevanceRankAccuracy({ abs: true }).evaluate(model(), d)
    const rankRef = ids.map((s) => {
      const m = maskOf(d, s)
      const k = m.filter(Boolean).length
      return k ? topShare(pixels(d, s, Math.abs), m, k) : Number.NaN
    })
    close(t, rank.scores, rankRef, 1e-12, `rank ${seed}`)
    const topk = await new TopKIntersection({ k: 7, conceptInfluence: true }).evaluate(model(), d)
    const topkRef = ids.map((s) => {
      const m = maskOf(d, s)
      const k = m.filter(Boolean).length
      return k ? (topShare(pixels(d, s), m, 7) * m.length) / k : Number.NaN
    })
    close(t, topk.scores, topkRef, 1e-12, `topk ${seed}`)
    const al = await new AttributionLocalisation({ abs: false, positiveAttributions: true, weighted: true }).evaluate(model(), d)
    const alRef = ids.map((s) => {
      const v = pixels(d, s, (x) => Math.max(x, 0))
      const m = maskOf(d, s)
      const k = m.filter(Boolean).length
      const total = v.reduce((acc, x) => acc + x, 0)
      return k && total ? (v.reduce((acc, x, p) => acc + (m[p] ? x : 0), 0) / total) * (m.length / k) : Number.NaN
    })
    close(t, al.scores, alRef, 1e-9, `attribution localisation ${seed}`)
    const auc = await new AUC().evaluate(model(), d)
    close(
      t,
      auc.scores,
      ids.map((s) => aucRef(pixels(d, s), maskOf(d, s))),
      1e-12,
      `auc ${seed}`,
    )
  }
})

test('hand-worked 3×3 values; an empty mask is NaN with its reason', async (t) => {
  // a = 1…9 row-major; the object is the right column {3, 6, 9}; sample 1 has no object.
  const a = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  const masks = Uint8Array.from([0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  const d: Dataset = { x: new Float32Array(18), shape: [2, 1, 3, 3], y: [0, 0], a, masks }
  const pg = (await new PointingGame().evaluate(model(), d)) as PointingGameResult
  t.is(pg.scores[0], 1)
  t.deepEqual(Array.from(pg.maxLocation.subarray(0, 2)), [2, 2])
  t.true(Number.isNaN(pg.scores[1]!))
  t.deepEqual(pg.undefinedScores, [{ sample: 1, reason: 'the object mask is empty: localisation undefined' }])
  t.is(pg.mean, 1)
  t.is(pg.skipped, 1)
  t.is((await new RelevanceMassAccuracy().evaluate(model(), d)).scores[0], 18 / 45)
  t.is((await new RelevanceRankAccuracy().evaluate(model(), d)).scores[0], 1 / 3) // top 3 = 9, 8, 7: only 9 inside
  t.is((await new TopKIntersection({ k: 2 }).evaluate(model(), d)).scores[0], 1 / 2)
  t.true(Math.abs((await new AttributionLocalisation({ weighted: true }).evaluate(model(), d)).scores[0]! - (18 / 45) * 3) < 1e-15)
  // Object values 3, 6, 9 against 1, 2, 4, 5, 7, 8: 3 beats 2, 6 beats 4, 9 beats all 6 of 18 pairs.
  t.is((await new AUC().evaluate(model(), d)).scores[0], 12 / 18)
  const zero = await new AttributionLocalisation().evaluate(model(), { ...d, a: new Float32Array(18) })
  t.deepEqual(zero.undefinedScores, [
    { sample: 0, reason: 'the total relevance is zero: the share inside the mask is undefined' },
    { sample: 1, reason: 'the object mask is empty: localisation undefined' },
  ])
})

test('pointing game: tolerance radius, the first-maximum tie rule, Quantus any-tie and empty-mask rules', async (t) => {
  // 5×5, maximum at (0, 0) and a tie at (4, 4); the object is the single pixel (2, 2).
  const a = new Float32Array(25)
  a[0] = 1
  a[24] = 1
  const masks = new Uint8Array(25)
  masks[12] = 1
  const d: Dataset = { x: new Float32Array(25), shape: [1, 1, 5, 5], y: [0], a, masks }
  const at = async (options: object) => (await new PointingGame(options).evaluate(model(), d)) as PointingGameResult
  t.is((await at({ tolerance: 2.8 })).scores[0], 0) // distance √8 ≈ 2.83
  t.is((await at({ tolerance: 2.9 })).scores[0], 1)
  t.is((await at({})).tiedMaxima[0], 2)
  masks[12] = 0
  masks[24] = 1 // the second tied maximum is on the object
  t.is((await at({})).scores[0], 0)
  t.is((await at({ compat: 'quantus' })).scores[0], 1)
  masks[24] = 0
  t.is((await at({ compat: 'quantus' })).scores[0], 1) // Quantus: an empty mask is a hit
  t.true(Number.isNaN((await at({})).scores[0]!))
})

test('boxes are drawn into masks (half-open x0, y0, x1, y1) and give the same scores', async (t) => {
  const d = randomData(11, 5, 6, 7)
  const boxes = [0, 0, 7, 6, 1, 2, 3, 5, 6, 5, 7, 6, 2, 0, 4, 1, 3, 3, 5, 6]
  const masks = new Uint8Array(5 * 42)
  for (let s = 0; s < 5; s++) {
    const [x0, y0, x1, y1] = boxes.slice(4 * s, 4 * s + 4) as [number, number, number, number]
    for (let r = y0; r < y1; r++) for (let c = x0; c < x1; c++) masks[s * 42 + r * 7 + c] = 1
  }
  const withBoxes = { ...d, masks: undefined, boxes }
  for (const m of [new PointingGame({ tolerance: 1 }), new RelevanceRankAccuracy(), new AUC()]) {
    const a = await m.evaluate(model(), withBoxes)
    const b = await m.evaluate(model(), { ...d, masks })
    t.deepEqual(a.scores, b.scores, m.meta.id)
  }
})

test('shards: any split reduces to the single evaluation bit for bit (masks and boxes)', async (t) => {
  const rand = prng(5)
  const d = randomData(21, 13, 6, 5, 2)
  const metrics = [
    new PointingGame({ tolerance: 2 }),
    new RelevanceMassAccuracy({ abs: true }),
    new RelevanceRankAccuracy(),
    new TopKIntersection({ k: 5 }),
    new AttributionLocalisation(),
    new AUC(),
  ]
  for (const m of metrics) await checkShards(t, m, model, d, await m.evaluate(model(), d), rand)
  const boxes = Array.from({ length: 13 }, (_, s) => [s % 3, 0, 5, 1 + (s % 5)]).flat()
  const withBoxes = { ...d, masks: undefined, boxes }
  await checkShards(t, metrics[0]!, model, withBoxes, await metrics[0]!.evaluate(model(), withBoxes), rand)
})

test('the demo data set: its object masks localise the occlusion map better than the random one', async (t) => {
  const demo = await loadDemo()
  const data = (a: Float32Array): Dataset => ({ x: demo.x, shape: demo.shape, y: demo.y, a, aShape: [64, 1, 28, 28], masks: demo.masks })
  const occ = await new AUC({ abs: true }).evaluate(model(), data(demo.attributions.occlusion!))
  const rnd = await new AUC({ abs: true }).evaluate(model(), data(demo.attributions.random!))
  t.true(occ.mean > 0.8, `occlusion AUC ${occ.mean}`)
  t.true(Math.abs(rnd.mean - 0.5) < 0.05, `random AUC ${rnd.mean}`)
})

// ---------------------------------------------------------------------------------------------
// Quantus 0.6.0 fixture.

interface Run {
  metric: string
  params: Record<string, unknown>
  data: string
  scores: (number | null)[]
}

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'quantus', 'localisation.json'), 'utf8')) as {
  edge: { shape: [number, number, number, number]; a: number[]; masks: number[]; y: number[] }
  runs: Run[]
}

function compatMetric(r: Run) {
  const p = r.params as Record<string, number | boolean | undefined>
  const abs = p.abs as boolean | undefined
  switch (r.metric) {
    case 'PointingGame':
      return new PointingGame({ compat: 'quantus' })
    case 'RelevanceMassAccuracy':
      return new RelevanceMassAccuracy({ compat: 'quantus', abs: abs ?? false })
    case 'RelevanceRankAccuracy':
      return new RelevanceRankAccuracy({ compat: 'quantus', abs: abs ?? false })
    case 'TopKIntersection':
      return new TopKIntersection({ compat: 'quantus', k: p.k as number, conceptInfluence: (p.concept_influence as boolean) ?? false })
    case 'AttributionLocalisation':
      return new AttributionLocalisation({
        compat: 'quantus',
        abs: abs ?? true,
        positiveAttributions: (p.positive_attributions as boolean) ?? false,
      })
    case 'AUC':
      return new AUC({ compat: 'quantus', abs: abs ?? false })
    default:
      throw new Error(r.metric)
  }
}

test('compat quantus matches quantus 0.6.0 on the demo maps and the edge cases (1e-5; hits exactly)', async (t) => {
  const demo = await loadDemo()
  const e = fixture.edge
  t.true(fixture.runs.length >= 30)
  for (const r of fixture.runs) {
    const data: Dataset =
      r.data === 'edge'
        ? { x: new Float32Array(16 * 4), shape: e.shape, y: e.y, a: Float32Array.from(e.a), masks: Uint8Array.from(e.masks) }
        : {
            x: demo.x,
            shape: demo.shape,
            y: demo.y,
            a: demo.attributions[r.data.slice('demo:'.length)]!,
            aShape: [64, 1, 28, 28],
            masks: demo.masks,
          }
    const got = (await compatMetric(r).evaluate(model(), data)) as LocalisationResult
    const expected = r.scores.map((v) => (v === null ? Number.NaN : v))
    const tol = r.metric === 'PointingGame' ? 0 : 1e-5
    close(t, got.scores, expected, tol, `${r.metric} ${JSON.stringify(r.params)} ${r.data}`)
  }
})

// ---------------------------------------------------------------------------------------------
// Errors.

async function rejects(t: ExecutionContext, p: Promise<unknown> | (() => unknown), code: ErrorCode, arg: string): Promise<void> {
  const e = typeof p === 'function' ? t.throws(p as () => unknown) : await t.throwsAsync(p)
  t.true(e instanceof XaiEvalError, String(e))
  t.is((e as XaiEvalError).code, code, (e as Error).message)
  t.is((e as XaiEvalError).arg, arg, (e as Error).message)
}

test('every error path is a typed error', async (t) => {
  const d = randomData(31, 3, 4, 4)
  const noMasks = { ...d, masks: undefined }
  await rejects(t, new PointingGame().evaluate(model(), noMasks), 'INVALID_OPTION', 'masks')
  await rejects(t, new AUC().evaluate(model(), { ...d, masks: new Uint8Array(5) }), 'SHAPE_MISMATCH', 'masks')
  await rejects(t, new AUC().evaluate(model(), { ...d, masks: Array.from(d.masks!) as unknown as Uint8Array }), 'INVALID_OPTION', 'masks')
  await rejects(t, new AUC().evaluate(model(), { ...d, boxes: [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1] }), 'INVALID_OPTION', 'boxes')
  const boxes = (b: unknown) => new PointingGame().evaluate(model(), { ...noMasks, boxes: b as number[] })
  await rejects(t, boxes([0, 0, 5, 4, 0, 0, 1, 1, 0, 0, 1, 1]), 'INVALID_OPTION', 'boxes') // x1 > W
  await rejects(t, boxes([-1, 0, 2, 2, 0, 0, 1, 1, 0, 0, 1, 1]), 'INVALID_OPTION', 'boxes')
  await rejects(t, boxes([2, 0, 2, 2, 0, 0, 1, 1, 0, 0, 1, 1]), 'INVALID_OPTION', 'boxes') // empty
  await rejects(t, boxes([0.5, 0, 2, 2, 0, 0, 1, 1, 0, 0, 1, 1]), 'INVALID_OPTION', 'boxes')
  await rejects(t, boxes([0, 0, 2, 2]), 'SHAPE_MISMATCH', 'boxes')
  await rejects(t, boxes('0,0,1,1'), 'INVALID_OPTION', 'boxes')
  await rejects(t, () => new PointingGame({ tolerance: -1 }), 'INVALID_OPTION', 'tolerance')
  await rejects(t, () => new PointingGame({ compat: 'quantus', tolerance: 15 }), 'INVALID_OPTION', 'tolerance')
  await rejects(t, () => new PointingGame({ weighted: true } as never), 'INVALID_OPTION', 'weighted')
  await rejects(t, () => new AttributionLocalisation({ compat: 'quantus', weighted: true }), 'INVALID_OPTION', 'weighted')
  await rejects(t, () => new TopKIntersection({ k: 0 }), 'INVALID_OPTION', 'k')
  await rejects(t, new TopKIntersection({ k: 17 }).evaluate(model(), d), 'INVALID_OPTION', 'k')
  t.is((await new TopKIntersection({ k: 16 }).evaluate(model(), d)).samples, 3)
  await rejects(t, new TopKIntersection({ k: 16, compat: 'quantus' }).evaluate(model(), d), 'INVALID_OPTION', 'k')
  const twoChannels = randomData(32, 3, 4, 4, 2)
  await rejects(t, new AUC({ compat: 'quantus' }).evaluate(model(), twoChannels), 'INVALID_OPTION', 'aShape')
  const nan = { ...d, a: d.a.slice() }
  nan.a[3] = Number.NaN
  await rejects(t, new AUC().evaluate(model(), nan), 'NON_FINITE', 'a')
})
