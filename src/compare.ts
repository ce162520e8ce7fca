// Which explanation method is best on a metric, and is the difference real? Per-sample scores of
// several methods on the same samples are compared with a paired percentile bootstrap: every
// replicate resamples the same sample indices for all methods (drawn by the Rust core,
// `bootstrap_means`, keyed by (seed, replicate)), so the 95 % interval of each mean and of each
// difference to the best come from one set of draws, and the numbers do not depend on how the
// samples were batched or sharded. A difference to the best is significant when its interval
// excludes 0 (the bootstrap test by interval inversion, two-sided).
//
// This module is the statistics of `xai-eval evaluate` and its report; an API facade (e.g.
// `compareMethods` on a metrics object) should call `compareMethods` below rather than re-derive them.
import { XaiEvalError } from './errors.js'
import { agreement, bootstrapMeans } from './native.js'
import { parseOptions, seed, z } from './options.js'

const compareOptions = z.strictObject({
  /** Bootstrap replicates (default 2000). */
  reps: z.int().min(100).max(1_000_000).default(2000),
  /** Seed of the resampling (default 0). */
  seed: seed.default(0),
  /** Two-sided level of the intervals and tests (default 0.05: 95 % intervals). */
  alpha: z.number().gt(0).lt(1).default(0.05),
})
const agreementInput = z.strictObject({
  comparisons: z.array(z.looseObject({ metric: z.string(), methods: z.array(z.looseObject({ rank: z.number() })) })),
})

export type CompareOptions = z.input<typeof compareOptions>

export interface MethodComparison {
  method: string
  /** Mean over the paired samples (those where every method's score is finite). */
  mean: number
  /** Percentile bootstrap interval of the mean at level `1 − alpha`. */
  ci: [number, number]
  /** 1 = best in the metric's direction; ties share the average rank. */
  rank: number
  best: boolean
  /** Mean minus the best's mean (0 for the best). */
  difference: number
  /** Bootstrap interval of the paired difference to the best (`[0, 0]` for the best). */
  differenceCi: [number, number]
  /** Two-sided bootstrap p-value of the difference to the best (1 for the best). */
  p: number
  /**
   * Whether the difference to the best is significant at `alpha`. With fewer than two paired
   * samples nothing is tested: the intervals and `p` are NaN and no difference is significant
   * (every resample of one sample is that sample: a zero-width interval would call any
   * difference real).
   */
  significant: boolean
}

export interface Comparison {
  metric: string
  higherIsBetter: boolean
  /** Samples where every method's score is finite: the ones compared. */
  pairedSamples: number
  /** Samples left out because some method's score is undefined (NaN). */
  droppedSamples: number
  reps: number
  seed: number
  alpha: number
  methods: MethodComparison[]
}

/** Average ranks (1 = smallest), ties sharing their mean rank. */
function ranks(v: readonly number[]): number[] {
  const idx = v.map((_, i) => i).sort((a, b) => v[a]! - v[b]!)
  const r = new Array<number>(v.length)
  for (let i = 0; i < idx.length; ) {
    let j = i
    while (j + 1 < idx.length && v[idx[j + 1]!] === v[idx[i]!]) j++
    for (let k = i; k <= j; k++) r[idx[k]!] = (i + j) / 2 + 1
    i = j + 1
  }
  return r
}

/** The `q` quantile of sorted `v` (linear interpolation, as numpy's default). */
function quantile(sorted: Float64Array, q: number): number {
  const h = (sorted.length - 1) * q
  const lo = Math.floor(h)
  const hi = Math.min(lo + 1, sorted.length - 1)
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!)
}

/**
 * Compares methods on one metric from their per-sample scores (`scores[method]`, all of one
 * length: the same samples in the same order).
 */
export function compareMethods(
  metric: string,
  higherIsBetter: boolean,
  scores: Readonly<Record<string, ArrayLike<number>>>,
  options?: CompareOptions,
): Comparison {
  const o = parseOptions(compareOptions, options)
  if (typeof metric !== 'string') throw new XaiEvalError('INVALID_OPTION', 'metric', 'expected the metric id, a string')
  if (typeof higherIsBetter !== 'boolean') throw new XaiEvalError('INVALID_OPTION', 'higherIsBetter', 'expected a boolean')
  if (scores === null || typeof scores !== 'object') {
    throw new XaiEvalError('INVALID_OPTION', 'scores', 'expected { method: per-sample scores }')
  }
  const names = Object.keys(scores ?? {})
  if (names.length === 0) throw new XaiEvalError('EMPTY_INPUT', 'scores', 'expected the scores of at least one method')
  for (const m of names) {
    const v = scores[m] as unknown
    if (!Array.isArray(v) && !(v instanceof Float64Array) && !(v instanceof Float32Array)) {
      throw new XaiEvalError('INVALID_OPTION', `scores.${m}`, 'expected an array or Float64Array of per-sample scores')
    }
  }
  const n = scores[names[0]!]!.length
  for (const m of names) {
    if (scores[m]?.length !== n) {
      throw new XaiEvalError('SHAPE_MISMATCH', `scores.${m}`, `has ${scores[m]?.length} scores, '${names[0]}' has ${n}`)
    }
  }
  const keep: number[] = []
  for (let i = 0; i < n; i++) if (names.every((m) => Number.isFinite(scores[m]![i]))) keep.push(i)
  if (keep.length === 0) {
    throw new XaiEvalError('EMPTY_INPUT', 'scores', `no sample has a finite score for every method on '${metric}'`)
  }
  const k = keep.length
  const flat = new Float64Array(names.length * k)
  names.forEach((m, j) => {
    for (let i = 0; i < k; i++) flat[j * k + i] = scores[m]![keep[i]!] as number
  })
  const means = names.map((_, j) => flat.subarray(j * k, (j + 1) * k).reduce((a, b) => a + b, 0) / k)
  const sign = higherIsBetter ? -1 : 1
  const rank = ranks(means.map((v) => sign * v))
  const bestRank = Math.min(...rank)
  const best = rank.indexOf(bestRank)
  // One paired sample: every resample is that sample, so nothing is tested (NaN intervals and p).
  const boot = k >= 2 ? bootstrapMeans(flat, names.length, o.reps, o.seed) : undefined
  const [lo, hi] = [o.alpha / 2, 1 - o.alpha / 2]
  const column = (f: (row: number) => number) => Float64Array.from({ length: o.reps }, (_, r) => f(r)).sort()
  const nan: [number, number] = [Number.NaN, Number.NaN]
  const test = (j: number, isBest: boolean): Pick<MethodComparison, 'ci' | 'differenceCi' | 'p' | 'significant'> => {
    if (!boot) return { ci: nan, differenceCi: isBest ? [0, 0] : nan, p: isBest ? 1 : Number.NaN, significant: false }
    const own = column((r) => boot[r * names.length + j]!)
    const diff = column((r) => boot[r * names.length + j]! - boot[r * names.length + best]!)
    let below = 0
    let above = 0
    for (const d of diff) {
      if (d <= 0) below++
      if (d >= 0) above++
    }
    const differenceCi: [number, number] = isBest ? [0, 0] : [quantile(diff, lo), quantile(diff, hi)]
    return {
      ci: [quantile(own, lo), quantile(own, hi)],
      differenceCi,
      p: isBest ? 1 : Math.min(1, (2 * Math.min(below, above)) / o.reps),
      significant: !isBest && (differenceCi[0] > 0 || differenceCi[1] < 0),
    }
  }
  const methods = names.map(
    (method, j): MethodComparison => ({
      method,
      mean: means[j]!,
      rank: rank[j]!,
      best: rank[j] === bestRank,
      difference: means[j]! - means[best]!,
      ...test(j, j === best),
    }),
  )
  return { metric, higherIsBetter, pairedSamples: k, droppedSamples: n - k, reps: o.reps, seed: o.seed, alpha: o.alpha, methods }
}

/**
 * Agreement between metrics: Spearman's ρ between the methods' ranks on each pair of metrics
 * (1 = the two metrics order the methods the same way, −1 = reversed; NaN with fewer than two
 * methods or a constant ranking). Ranks are direction-aware, so "better" means the same on both.
 */
export function rankAgreement(comparisons: readonly Comparison[]): { metrics: string[]; rho: number[][] } {
  parseOptions(agreementInput, { comparisons })
  const metrics = comparisons.map((c) => c.metric)
  const vectors = comparisons.map((c) => Float64Array.from(c.methods.map((m) => m.rank)))
  const rho = vectors.map((a, i) =>
    vectors.map((b, j) => {
      if (i === j) return 1
      if (a.length < 2 || a.length !== b.length) return Number.NaN
      return agreement(a, b)[1]!
    }),
  )
  return { metrics, rho }
}
