// The step-wise imputation metrics (soundness, completeness): their shared options, and their
// rows: row r is sample r % N at step ⌊r / N⌋, with that step's pixel mask imputed. Step-major
// order keeps the samples of a batch contiguous, so masks are made for whole runs of samples.
import type { Plan } from '../engine.js'
import { XaiEvalError } from '../errors.js'
import { imputeMasked, pixelMaps, socoQuantize } from '../native.js'
import { seed, z } from '../options.js'
import { type Checked, layoutOf } from '../validate.js'
import { Metric, type MetricResult } from './protocol.js'

/** What the model's answer on an imputed sample is measured by. */
export type Indicator = 'accuracy' | 'score'

/**
 * How removed pixels are filled: ROAD's noisy linear imputation (images), or a constant in every
 * channel (e.g. 0, the mean of standardised tabular features, where interpolating between
 * neighbouring columns means nothing).
 */
export type Imputation = 'noisyLinear' | { constant: number }

/** Options shared by Soundness and Completeness. */
export const stepwiseSchema = z.strictObject({
  /**
   * `'accuracy'` (default, the paper): data-set accuracy. `'score'` (the authors' `PredScore`):
   * each sample's raw true-class model output (the logit for a logits model, no softmax).
   */
  indicator: z.enum(['accuracy', 'score']).default('accuracy'),
  /** `'soco'` reproduces the authors' code instead of the paper's algorithm as written (see README). */
  compat: z.enum(['soco']).optional(),
  /** How removed pixels are filled (default `'noisyLinear'`; `{ constant: 0 }` for standardised tabular data). */
  imputation: z.union([z.literal('noisyLinear'), z.strictObject({ constant: z.number() })]).default('noisyLinear'),
  /** Imputation noise (default 0.01, ROAD's). */
  noise: z.number().min(0).max(1e6).default(0.01),
  /** Seed of the imputation noise and of the order of tied attributions (default 0). */
  seed: seed.default(0),
})

export type StepwiseOptions = z.input<typeof stepwiseSchema>
export type StepwiseParams = z.output<typeof stepwiseSchema>

/** The hyper-parameters and shared checks of the two dual-perspective metrics. */
export abstract class StepwiseImputationMetric<R extends MetricResult> extends Metric<StepwiseParams, R> {
  constructor(options?: StepwiseOptions) {
    super(stepwiseSchema, options)
  }

  protected get mode(): 'paper' | 'soco' {
    return this.params.compat ?? 'paper'
  }

  /**
   * Per-pixel maps: the attribution summed over channels, quantised to uint8 per map in soco mode,
   * else divided by each map's maximum when `normalize` (completeness thresholds lie in (0, 1)).
   * The paper's maps are non-negative (it clips them, App. G.1): a negative value is refused.
   */
  protected maps(d: Checked, normalize: boolean): Float32Array {
    const maps = pixelMaps(d.a, d.n, layoutOf(d, 'pixel'), normalize && this.mode === 'paper')
    if (this.mode === 'soco') return socoQuantize(maps, d.height * d.width)
    const i = maps.findIndex((v) => v < 0)
    if (i >= 0) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'a',
        `attribution must be >= 0 (the paper clips it, App. G.1); the channel sum of sample ${Math.floor(i / (d.height * d.width))} is ${maps[i]} at pixel ${i % (d.height * d.width)}`,
      )
    }
    return maps
  }
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
