// A small seeded generator for the TypeScript-side utilities (attribution modifications): every
// random draw is keyed by `(seed, stream)`, the stream being the sample index, as in the Rust core
// (`crates/core/src/rng.rs`), so that a sample's draws never depend on N, batching or order.
// xoshiro128** (Blackman & Vigna 2018) seeded through SplitMix32; 32-bit integer arithmetic only.
import { XaiEvalError } from './errors.js'

/** SplitMix32-style finaliser (the 32-bit "lowbias32" mixer of Wellons). */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d)
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b)
  return (x ^ (x >>> 16)) >>> 0
}

export class Random {
  private a: number
  private b: number
  private c: number
  private d: number

  /** Generator for `stream` (e.g. a sample index) of `seed`; both non-negative safe integers. */
  constructor(seed: number, stream = 0) {
    const lo = seed >>> 0
    const hi = Math.floor(seed / 2 ** 32) >>> 0
    const slo = stream >>> 0
    const shi = Math.floor(stream / 2 ** 32) >>> 0
    let s = mix32(lo ^ mix32(hi ^ 0x9e3779b9) ^ mix32(slo ^ mix32(shi ^ 0x85ebca6b) ^ 0xc2b2ae35))
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0
      return mix32(s)
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1
  }

  /** Next 32 random bits as an unsigned integer (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0
    const t = this.b << 9
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d, 11)
    return result
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5 // 27 bits
    const lo = this.nextU32() >>> 6 // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992
  }

  /** Standard normal by Box–Muller (one value per call). */
  normal(): number {
    const u1 = 1 - this.uniform()
    const u2 = this.uniform()
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}

export function checkSeed(seed: unknown, arg = 'seed'): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw new XaiEvalError('INVALID_OPTION', arg, `expected a non-negative integer, got ${String(seed)}`)
  }
  return seed
}
