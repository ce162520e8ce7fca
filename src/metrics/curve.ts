// The pieces every perturbation-curve metric shares: its step schedule, its curves' grid and the
// shape of its result. The rows themselves are laid out and scored by the engine (`scoreCurves`).
import { XaiEvalError } from '../errors.js'
import type { MetricResult } from './protocol.js'

/** Flags of a row (mirrors `xai_eval_core::mask`). */
export const FROM_END = 1
export const INSERT = 2

/** Which class a curve follows: the label `y`, or the model's prediction on the clean input. */
export type Target = 'label' | 'predicted'

/** Curves of every sample, row-major `[N, points]`, on the grid `x`. */
export interface Curves {
  x: Float64Array
  values: Float64Array
  points: number
}

export interface CurveResult extends MetricResult {
  curves: Record<string, Curves>
}

/** Feature counts 0, s, 2s, …, F of a curve removing `s` features per step (the last step may be shorter). */
export function countsByStep(features: number, featuresInStep: number): Uint32Array {
  if (featuresInStep > features) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      'featuresInStep',
      `expected at most the ${features} features of a sample, got ${featuresInStep}`,
    )
  }
  const steps = Math.ceil(features / featuresInStep)
  return Uint32Array.from({ length: steps + 1 }, (_, k) => Math.min(k * featuresInStep, features))
}

/** Feature counts round(k·F/steps), k = 0…steps, of a curve with a fixed number of steps. */
export function countsOfSteps(features: number, steps: number): Uint32Array {
  if (steps > features) {
    throw new XaiEvalError('INVALID_OPTION', 'steps', `expected at most one step per feature (${features}), got ${steps}`)
  }
  return Uint32Array.from({ length: steps + 1 }, (_, k) => Math.round((k * features) / steps))
}

/** The x grid of a curve: the fraction of features removed at each point. */
export function fractions(counts: ArrayLike<number>, features: number): Float64Array {
  return Float64Array.from(counts, (c) => c / features)
}
