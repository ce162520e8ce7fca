// What replaces a removed feature in the perturbation-curve metrics: one vocabulary for all of
// them. Quantus's and autotimm's 'black' mean different things (the sample minimum; zeros), so
// neither is a name here: 'min' and 0 say what they are. `compat: 'quantus'` accepts Quantus's
// names with Quantus's meaning (see quantus.ts).
import type { BaselineSpec } from '../native.js'
import { z } from '../options.js'

/**
 * Computed once per sample from the unperturbed input and copied from at every step (the
 * constant imputer of the SRG paper; stochastic baselines are drawn once, keyed by the metric's
 * `seed` and the sample's global index).
 * - a number: that constant (0: zeros);
 * - `'min'` / `'max'`: the sample's minimum / maximum (Quantus's `"black"` / `"white"`);
 * - `'mean'`: the sample's mean over all entries; `'channelMean'`: per channel;
 * - `'blur'` or `{ blur: sigma }`: the sample blurred by a Gaussian of that standard deviation in
 *   pixels (`'blur'`: σ = 5, RISE's);
 * - `{ uniform: [low, high] }`: uniform noise, one draw per entry.
 */
export type Baseline = number | 'min' | 'max' | 'mean' | 'channelMean' | 'blur' | { blur: number } | { uniform: readonly [number, number] }

/** Largest blur σ in pixels: the kernel spans ±4σ, so this bounds its size and the time per row. */
export const MAX_BLUR_SIGMA = 64

export const baselineSchema = z.union([
  z.number(),
  z.enum(['min', 'max', 'mean', 'channelMean', 'blur']),
  z.strictObject({ blur: z.number().positive().max(MAX_BLUR_SIGMA) }),
  z
    .strictObject({ uniform: z.tuple([z.number(), z.number()]) })
    .refine((b) => b.uniform[0] <= b.uniform[1], 'expected uniform: [low, high] with low ≤ high'),
])

/** The core's description of a validated baseline; `seed` keys uniform draws. */
export function baselineSpec(b: Baseline, seed: number): BaselineSpec {
  if (typeof b === 'number') return { kind: 'constant', value: b }
  if (b === 'blur') return { kind: 'blur', sigma: 5 }
  if (typeof b === 'string') return { kind: b }
  if ('blur' in b) return { kind: 'blur', sigma: b.blur }
  return { kind: 'uniform', low: b.uniform[0], high: b.uniform[1], seed }
}
