// Plain references for FaithfulnessCorrelation, FaithfulnessEstimate, Monotonicity and
// MonotonicityCorrelation, written from the papers and quantus-semantics §1.5–1.6 (and the fixture
// README for Quantus's Monotonicity), not from src/: one forward call per row, every row built
// from scratch, correlations in plain f64. Random draws mirror `Rng::keyed` (crates/core/src/rng.rs,
// scripts/keyed_rng.py) with BigInt arithmetic.
import { entryAttribution, type RefData, type RowModel, scoreOf, stableDescending } from './reference.js'

// ---------------------------------------------------------------------------------------------
// Keyed random streams (xoshiro256++ seeded through SplitMix64)

const M64 = (1n << 64n) - 1n
const GOLDEN = 0x9e3779b97f4a7c15n

export const BASELINE = 1n
export const SUBSET = 4n
export const PERTURBATION = 6n

function splitmix(state: bigint): [bigint, bigint] {
  const s = (state + GOLDEN) & M64
  let z = s
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64
  return [s, z ^ (z >> 31n)]
}

const mix = (x: bigint) => splitmix(x)[1]
const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (64n - k))) & M64

export class KeyedRng {
  private s: bigint[]

  constructor(seed: bigint, stream: bigint) {
    const [, k] = splitmix((stream * 0xd1b54a32d192ed03n) & M64)
    let sm = seed ^ k
    this.s = []
    for (let i = 0; i < 4; i++) {
      const [next, v] = splitmix(sm)
      sm = next
      this.s.push(v)
    }
  }

  static keyed(seed: number, sample: number, purpose: bigint, step: number): KeyedRng {
    return new KeyedRng(BigInt(seed), mix(mix(mix(BigInt(sample)) ^ purpose) ^ BigInt(step)))
  }

  nextU64(): bigint {
    const s = this.s
    const result = (rotl((s[0]! + s[3]!) & M64, 23n) + s[0]!) & M64
    const t = (s[1]! << 17n) & M64
    s[2] = s[2]! ^ s[0]!
    s[3] = s[3]! ^ s[1]!
    s[1] = s[1]! ^ s[2]!
    s[0] = s[0]! ^ s[3]!
    s[2] = s[2]! ^ t
    s[3] = rotl(s[3]!, 45n)
    return result
  }

  uniform(): number {
    return Number(this.nextU64() >> 11n) / 2 ** 53
  }

  below(n: number): number {
    const big = BigInt(n)
    const threshold = (-big & M64) % big
    for (;;) {
      const m = this.nextU64() * big
      if ((m & M64) >= threshold) return Number(m >> 64n)
    }
  }

  subset(n: number, k: number): number[] {
    const out = Array.from({ length: n }, (_, i) => i)
    for (let i = 0; i < k; i++) {
      const j = i + this.below(n - i)
      ;[out[i], out[j]] = [out[j]!, out[i]!]
    }
    return out.slice(0, k)
  }
}

// ---------------------------------------------------------------------------------------------
// Correlations

/** Pearson's r, NaN when either series is constant. */
export function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length
  const ma = a.reduce((p, v) => p + v, 0) / n
  const mb = b.reduce((p, v) => p + v, 0) / n
  let sab = 0
  let saa = 0
  let sbb = 0
  for (let i = 0; i < n; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb)
    saa += (a[i]! - ma) ** 2
    sbb += (b[i]! - mb) ** 2
  }
  if (a.every((v) => v === a[0]) || b.every((v) => v === b[0])) return Number.NaN
  return sab / Math.sqrt(saa * sbb)
}

/** Ranks 1…n with ties at their average rank. */
export function ranks(v: readonly number[]): number[] {
  return v.map((x) => {
    let below = 0
    let equal = 0
    for (const y of v) {
      if (y < x) below++
      else if (y === x) equal++
    }
    return below + (equal + 1) / 2
  })
}

export const spearman = (a: readonly number[], b: readonly number[]) => pearson(ranks(a), ranks(b))

// ---------------------------------------------------------------------------------------------
// Metrics

/** A per-sample baseline of one sample's row: a number or the sample's minimum. */
export type RefBaseline = number | 'min'

function row(d: RefData, s: number): number[] {
  const len = d.shape[1] * d.shape[2] * d.shape[3]
  return Array.from(d.x.subarray(s * len, (s + 1) * len))
}

function baselineOf(x: readonly number[], b: RefBaseline): number {
  return b === 'min' ? Math.min(...x) : b
}

/** A baseline row: a constant, the minimum, or one keyed uniform draw per entry (`Purpose::Baseline`, step 0). */
export type RefRowBaseline = RefBaseline | { uniform: [number, number] }

function baselineRow(x: readonly number[], b: RefRowBaseline, seed: number, sample: number): number[] {
  if (typeof b !== 'object') return x.map(() => baselineOf(x, b))
  const rng = KeyedRng.keyed(seed, sample, BASELINE, 0)
  return x.map(() => Math.fround(b.uniform[0] + (b.uniform[1] - b.uniform[0]) * rng.uniform()))
}

function score(model: RowModel, x: readonly number[], y: number, softmax: boolean): number {
  return scoreOf(model(Float32Array.from(x)), y, softmax)
}

/** Bhatt et al.: Pearson over runs of (Σ_S a, f_y(x) − f_y(x with S at the baseline)). */
export function faithfulnessCorrelationRef(
  model: RowModel,
  d: RefData,
  o: { nrRuns: number; subsetSize: number; baseline: RefRowBaseline; seed: number; softmax: boolean; firstSample?: number },
): number[] {
  return Array.from({ length: d.shape[0] }, (_, s) => {
    const x = row(d, s)
    const a = entryAttribution(d, s)
    const b = baselineRow(x, o.baseline, o.seed, (o.firstSample ?? 0) + s)
    const y0 = score(model, x, d.y[s]!, o.softmax)
    const sums: number[] = []
    const drops: number[] = []
    for (let r = 0; r < o.nrRuns; r++) {
      const subset = KeyedRng.keyed(o.seed, (o.firstSample ?? 0) + s, SUBSET, r).subset(x.length, o.subsetSize)
      const xt = [...x]
      for (const i of subset) xt[i] = b[i]!
      sums.push(subset.reduce((p, i) => p + a[i]!, 0))
      drops.push(y0 - score(model, xt, d.y[s]!, o.softmax))
    }
    return pearson(sums, drops)
  })
}

/** Features sorted by descending attribution (|a| with abs), groups of `size` consecutive ranks. */
function groupsOf(a: readonly number[], abs: boolean, size: number, ascending: boolean): number[][] {
  const keys = abs ? a.map(Math.abs) : [...a]
  const order = stableDescending(keys)
  if (ascending) order.reverse()
  const out: number[][] = []
  for (let k = 0; k < order.length; k += size) out.push(order.slice(k, k + size))
  return out
}

/** Alvarez-Melis & Jaakkola: Pearson over groups of (Σ_group a, f_y(x) − f_y(x with the group at the baseline)). */
export function faithfulnessEstimateRef(
  model: RowModel,
  d: RefData,
  o: { featuresInStep: number; baseline: RefRowBaseline; abs: boolean; softmax: boolean; seed?: number },
): number[] {
  return Array.from({ length: d.shape[0] }, (_, s) => {
    const x = row(d, s)
    const a = entryAttribution(d, s)
    const b = baselineRow(x, o.baseline, o.seed ?? 0, s)
    const y0 = score(model, x, d.y[s]!, o.softmax)
    const sums: number[] = []
    const drops: number[] = []
    for (const g of groupsOf(a, o.abs, o.featuresInStep, false)) {
      const xt = [...x]
      for (const i of g) xt[i] = b[i]!
      sums.push(g.reduce((p, i) => p + (o.abs ? Math.abs(a[i]!) : a[i]!), 0))
      drops.push(y0 - score(model, xt, d.y[s]!, o.softmax))
    }
    return pearson(sums, drops)
  })
}

/** Nguyen & Martínez: Spearman over ascending groups of (Σ_group |a|, mean_s (f_y(x̃_s) − f_y(x))²). */
export function monotonicityCorrelationRef(
  model: RowModel,
  d: RefData,
  o: {
    featuresInStep: number
    nrSamples: number
    baseline: RefBaseline | { uniform: [number, number] }
    seed: number
    firstSample?: number
  },
): number[] {
  return Array.from({ length: d.shape[0] }, (_, s) => {
    const x = row(d, s)
    const a = entryAttribution(d, s)
    const y0 = score(model, x, d.y[s]!, true)
    const sums: number[] = []
    const effects: number[] = []
    groupsOf(a, true, o.featuresInStep, true).forEach((g, k) => {
      let sum = 0
      for (let r = 0; r < o.nrSamples; r++) {
        const b =
          typeof o.baseline === 'object'
            ? Math.fround(
                o.baseline.uniform[0] +
                  (o.baseline.uniform[1] - o.baseline.uniform[0]) *
                    KeyedRng.keyed(o.seed, (o.firstSample ?? 0) + s, PERTURBATION, k * o.nrSamples + r).uniform(),
              )
            : baselineOf(x, o.baseline)
        const xt = [...x]
        for (const i of g) xt[i] = b
        sum += (score(model, xt, d.y[s]!, true) - y0) ** 2
      }
      sums.push(g.reduce((p, i) => p + Math.abs(a[i]!), 0))
      effects.push(sum / o.nrSamples)
    })
    return spearman(sums, effects)
  })
}

/** Arya et al. (AIX360): from the baseline, put features back in ascending order; 1 when the probability never drops. */
export function monotonicityRef(model: RowModel, d: RefData, o: { featuresInStep: number; baseline: RefBaseline; abs: boolean }): number[] {
  return Array.from({ length: d.shape[0] }, (_, s) => {
    const x = row(d, s)
    const a = entryAttribution(d, s)
    const b = baselineOf(x, o.baseline)
    const xt = x.map(() => b)
    const probs: number[] = []
    for (const g of groupsOf(a, o.abs, o.featuresInStep, true)) {
      for (const i of g) xt[i] = x[i]!
      probs.push(score(model, xt, d.y[s]!, true))
    }
    return probs.every((p, k) => k === 0 || p >= probs[k - 1]!) ? 1 : 0
  })
}

/** Quantus 0.6.0's Monotonicity with a uniform baseline (it never puts input features back). */
export function quantusMonotonicityUniformRef(
  model: RowModel,
  d: RefData,
  o: { featuresInStep: number; seed: number; firstSample?: number },
): number[] {
  return Array.from({ length: d.shape[0] }, (_, s) => {
    const x = row(d, s)
    const a = entryAttribution(d, s)
    const u = (m: number) => Math.fround(KeyedRng.keyed(o.seed, (o.firstSample ?? 0) + s, PERTURBATION, m).uniform())
    const xt = x.map(() => u(0))
    const probs: number[] = []
    groupsOf(a, true, o.featuresInStep, true).forEach((g, k) => {
      for (const i of g) xt[i] = u(k + 1)
      probs.push(score(model, xt, d.y[s]!, true))
    })
    return probs.every((p, k) => k === 0 || p >= probs[k - 1]!) ? 1 : 0
  })
}
