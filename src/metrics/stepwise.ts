// The step-wise imputation metrics (soundness, completeness): their shared options, and their
// rows: row r is sample r % N at step ⌊r / N⌋, with that step's pixel mask imputed. Step-major
// order keeps the samples of a batch contiguous, so masks are made for whole runs of samples.
import type { Plan } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import { imputeMasked, pixelMaps, socoQuantize } from '../native.js'
import { layoutOf, nonNegative, oneOf, seedOf, type Checked } from '../validate.js'
import type { EvaluateOptions } from './curve.js'

/** What the model's answer on an imputed sample is measured by. */
export type Indicator = 'accuracy' | 'score'

/** Options shared by Soundness and Completeness. */
export interface StepwiseOptions {
  /**
   * `'accuracy'` (default, the paper): data-set accuracy. `'score'` (the authors' `PredScore`):
   * each sample's raw true-class model output (the logit for a logits model, no softmax).
   */
  indicator?: Indicator
  /** `'soco'` reproduces the authors' code instead of the paper's algorithm as written (see README). */
  compat?: 'soco'
  /** How removed pixels are filled (default `'noisyLinear'`; `{ constant: 0 }` for standardised tabular data). */
  imputation?: Imputation
  /** Imputation noise (default 0.01, ROAD's). */
  noise?: number
  /** Seed of the imputation noise and of the order of tied attributions (default 0). */
  seed?: number
}

export interface ShardOptions extends EvaluateOptions {
  /** Global index of this shard's first sample (default 0): it keys noise and tie-breaking. */
  firstSample?: number
}

/** The hyper-parameters and shared checks of the two dual-perspective metrics. */
export abstract class StepwiseImputationMetric {
  readonly indicator: Indicator
  readonly compat: 'soco' | undefined
  readonly imputation: Imputation
  readonly noise: number
  readonly seed: number

  constructor(options: StepwiseOptions = {}) {
    this.indicator = oneOf('indicator', options.indicator ?? 'accuracy', ['accuracy', 'score'])
    this.compat = options.compat === undefined ? undefined : oneOf('compat', options.compat, ['soco'])
    this.imputation = checkImputation(options.imputation ?? 'noisyLinear')
    this.noise = nonNegative('noise', options.noise ?? 0.01)
    this.seed = seedOf(options.seed ?? 0)
  }

  protected get mode(): 'paper' | 'soco' {
    return this.compat ?? 'paper'
  }

  protected params(): Record<string, unknown> {
    return { indicator: this.indicator, compat: this.compat, imputation: this.imputation, noise: this.noise, seed: this.seed }
  }

  /**
   * Per-pixel maps: the attribution summed over channels, quantised to uint8 per map in soco mode,
   * else divided by each map's maximum when `normalize` (completeness thresholds lie in (0, 1)).
   */
  protected maps(d: Checked, normalize: boolean): Float32Array {
    const maps = pixelMaps(d.a, d.n, layoutOf(d, 'pixel'), normalize && this.mode === 'paper')
    return this.mode === 'soco' ? socoQuantize(maps, d.height * d.width) : maps
  }
}

export function firstSampleOf(options: ShardOptions): number {
  const first = options.firstSample ?? 0
  if (!Number.isSafeInteger(first) || first < 0) {
    throw new XaiEvalError('INVALID_OPTION', 'firstSample', `expected a non-negative integer, got ${first}`)
  }
  return first
}

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
      for (let r = start; r < end; ) {
        const step = Math.floor(r / d.n)
        const s0 = r % d.n
        const s1 = Math.min(d.n, s0 + (end - r))
        const samples = Uint32Array.from({ length: s1 - s0 }, (_, i) => s0 + i)
        const ids = samples.map((s) => imputation.firstSample + s)
        const keys = new Uint32Array(s1 - s0).fill(key(step))
        const slot = out.subarray((r - start) * rowLen, (r - start + s1 - s0) * rowLen)
        targets.set(d.y.subarray(s0, s1), r - start)
        work.push(
          masks(step, s0, s1, signal).then((m) =>
            imputeMasked(
              d.x,
              shape,
              samples,
              ids,
              keys,
              m,
              imputation.noise,
              imputation.seed,
              slot,
              imputation.fill === 'noisyLinear' ? undefined : imputation.fill.constant,
              signal,
            ),
          ),
        )
        r += s1 - s0
      }
      await Promise.all(work)
    },
  }
}
