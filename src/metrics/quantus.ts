// Quantus's names for baselines, accepted in `compat: 'quantus'` mode.
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
    throw new XaiEvalError('INVALID_OPTION', 'baseline', "Quantus's 'mean' drifts with each perturbation step and is not reproduced; use 'black', 'white' or a number")
  }
  return baselineSpec('baseline', b)
}
