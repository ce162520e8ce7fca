// What `compat: 'quantus'` changes before PixelFlipping and SRG run: Quantus's step rule and its
// names of baselines.
import { XaiEvalError } from '../errors.js'
import type { BaselineSpec } from '../native.js'
import { z } from '../options.js'
import { type Baseline, baselineSchema, baselineSpec } from './baseline.js'

/** A baseline option that also takes Quantus's names (`'black'` = min, `'white'` = max) in compat mode. */
export const curveBaseline = z.union([baselineSchema, z.enum(['black', 'white'])])

/**
 * Object-level check of a curve metric's options: Quantus's baseline names only with
 * `compat: 'quantus'`, and not Quantus's `'mean'`, which drifts with each perturbation step
 * (quantus-semantics §0.4) and which a snapshot baseline cannot reproduce.
 */
export function checkQuantusBaseline(o: { baseline?: unknown; compat?: string }, ctx: z.RefinementCtx): void {
  if ((o.baseline === 'black' || o.baseline === 'white') && o.compat !== 'quantus') {
    ctx.addIssue({
      code: 'custom',
      path: ['baseline'],
      message: `'${o.baseline}' is Quantus's name for the sample ${o.baseline === 'black' ? "minimum ('min')" : "maximum ('max')"} (autotimm's 'black' is 0): say 'min', 'max' or 0, or set compat: 'quantus'`,
    })
  }
  if (o.baseline === 'mean' && o.compat === 'quantus') {
    ctx.addIssue({
      code: 'custom',
      path: ['baseline'],
      message: "Quantus's 'mean' drifts with each perturbation step and is not reproduced; use 'black', 'white' or a number",
    })
  }
}

/** The core's baseline of a validated curve-metric option. */
export function curveBaselineSpec(b: Baseline | 'black' | 'white', seed: number): BaselineSpec {
  if (b === 'black') return { kind: 'min' }
  if (b === 'white') return { kind: 'max' }
  return baselineSpec(b, seed)
}

/** Quantus asserts `(H·W) % featuresInStep == 0` (it ignores channels). */
export function checkQuantusSteps(pixels: number, featuresInStep: number): void {
  if (pixels % featuresInStep !== 0) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      'featuresInStep',
      `Quantus requires H·W (${pixels}) to be a multiple of featuresInStep (${featuresInStep})`,
    )
  }
}
