// The pieces every perturbation-curve metric shares: its step schedule, its evaluation options and
// the map from a data set to (sample, count, flags) rows.
import { XaiEvalError } from '../errors.js'
import type { RunOptions } from '../engine.js'
import type { Curves, MetricResult } from '../result.js'
import { positiveInt } from '../validate.js'

/** Flags of a row (mirrors `xai_eval_core::mask`). */
export const FROM_END = 1
export const INSERT = 2

export interface EvaluateOptions extends RunOptions {}

/** Which class a curve follows: the label `y`, or the model's prediction on the clean input. */
export type Target = 'label' | 'predicted'

export interface CurveResult extends MetricResult {
  curves: Record<string, Curves>
}

/** Feature counts 0, s, 2s, …, F of a curve removing `s` features per step (the last step may be shorter). */
export function countsByStep(features: number, featuresInStep: number): Uint32Array {
  positiveInt('featuresInStep', featuresInStep, features)
  const steps = Math.ceil(features / featuresInStep)
  return Uint32Array.from({ length: steps + 1 }, (_, k) => Math.min(k * featuresInStep, features))
}

/** Feature counts round(k·F/steps), k = 0…steps, of a curve with a fixed number of steps. */
export function countsOfSteps(features: number, steps: number): Uint32Array {
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1 || steps > features) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      'steps',
      `expected an integer in [1, ${features}] (one feature per step at most), got ${String(steps)}`,
    )
  }
  return Uint32Array.from({ length: steps + 1 }, (_, k) => Math.round((k * features) / steps))
}

/** The x grid of a curve: the fraction of features removed at each point. */
export function fractions(counts: Uint32Array, features: number): Float64Array {
  return Float64Array.from(counts, (c) => c / features)
}
