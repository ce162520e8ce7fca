// Rows of the step-wise imputation metrics (soundness, completeness): row r is sample r % N at
// step ⌊r / N⌋, with that step's pixel mask imputed. Step-major order keeps the samples of a
// batch contiguous, so masks are made for whole runs of samples at once.
import type { Plan } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import { imputeMasked } from '../native.js'
import type { Checked } from '../validate.js'

/**
 * How removed pixels are filled: ROAD's noisy linear imputation (images), or a constant in every
 * channel (e.g. 0, the mean of standardised tabular features, where interpolating between
 * neighbouring columns means nothing).
 */
export type Imputation = 'noisyLinear' | { constant: number }

export function checkImputation(v: unknown): Imputation {
  if (v === 'noisyLinear') return v
  if (v !== null && typeof v === 'object' && 'constant' in v && typeof v.constant === 'number' && Number.isFinite(v.constant)) {
    return { constant: v.constant }
  }
  throw new XaiEvalError('INVALID_OPTION', 'imputation', `expected 'noisyLinear' or { constant: number }, got ${JSON.stringify(v)}`)
}

/** Masks `[s1 − s0, H·W]` (1 = impute) of samples `[s0, s1)` at `step`. */
export type StepMasks = (step: number, s0: number, s1: number, signal?: AbortSignal) => Promise<Uint8Array>

export function stepRows(
  d: Checked,
  steps: number,
  masks: StepMasks,
  imputation: { fill: Imputation; noise: number; seed: number; firstSample: number },
  /** Noise key of a step, so that a step's noise never repeats another's. */
  key: (step: number) => number,
): Plan {
  const shape = [d.n, d.channels, d.height, d.width]
  const rowLen = d.channels * d.height * d.width
  return {
    rows: d.n * steps,
    async build(start, end, out, targets, signal) {
      const work: Promise<void>[] = []
      for (let r = start; r < end;) {
        const step = Math.floor(r / d.n)
        const s0 = r % d.n
        const s1 = Math.min(d.n, s0 + (end - r))
        const samples = Uint32Array.from({ length: s1 - s0 }, (_, i) => s0 + i)
        const ids = samples.map((s) => imputation.firstSample + s)
        const keys = new Uint32Array(s1 - s0).fill(key(step))
        const slot = out.subarray((r - start) * rowLen, (r - start + s1 - s0) * rowLen)
        targets.set(d.y.subarray(s0, s1), r - start)
        work.push(masks(step, s0, s1, signal).then((m) =>
          imputeMasked(d.x, shape, samples, ids, keys, m, imputation.noise, imputation.seed, slot,
            imputation.fill === 'noisyLinear' ? undefined : imputation.fill.constant, signal)))
        r += s1 - s0
      }
      await Promise.all(work)
    },
  }
}
