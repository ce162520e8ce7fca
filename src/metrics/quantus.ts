// What `compat: 'quantus'` changes before PixelFlipping and SRG run: Quantus's step rule and baselines.
import { XaiEvalError } from '../errors.js'
import type { BaselineSpec } from '../native.js'
import { baselineSpec } from './baseline.js'

/**
 * `'black'` / `'white'` are the sample's minimum / maximum, which stay constant while Quantus
 * perturbs cumulatively. Its `'mean'` is recomputed from the already perturbed input at every step
 * (quantus-semantics §0.4), which a snapshot baseline cannot reproduce: that is an error here.
 */
export function quantusBaseline(b: unknown): BaselineSpec {
  if (b === 'black') return { kind: 'min' }
  if (b === 'white') return { kind: 'max' }
  if (b === 'mean') {
    throw new XaiEvalError(
      'INVALID_OPTION',
      'baseline',
      "Quantus's 'mean' drifts with each perturbation step and is not reproduced; use 'black', 'white' or a number",
    )
  }
  return baselineSpec('baseline', b)
}

/** Quantus asserts `(H·W) % featuresInStep == 0` (it ignores channels); returns the baseline. */
export function quantusSetup(pixels: number, featuresInStep: number, baseline: unknown): BaselineSpec {
  if (pixels % featuresInStep !== 0) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      'featuresInStep',
      `Quantus requires H·W (${pixels}) to be a multiple of featuresInStep (${featuresInStep})`,
    )
  }
  return quantusBaseline(baseline)
}
