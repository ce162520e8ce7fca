import { XaiEvalError } from '../errors.js'
import type { BaselineSpec } from '../native.js'

/**
 * What replaces a removed feature, computed once per sample from the unperturbed input and copied
 * from at every step (the constant imputer of the SRG paper; stochastic baselines are drawn once).
 * - a number: that constant;
 * - `'min'` / `'max'`: the sample's minimum / maximum (Quantus's `"black"` / `"white"`);
 * - `'mean'`: the sample's mean over all entries; `'channelMean'`: per channel;
 * - `{ blur: sigma }`: the sample blurred by a Gaussian of that standard deviation (in pixels);
 * - `{ uniform: [low, high], seed }`: seeded uniform noise, one draw per entry.
 */
export type Baseline = number | 'min' | 'max' | 'mean' | 'channelMean' | { blur: number } | { uniform: [number, number]; seed?: number }

export function baselineSpec(name: string, b: unknown): BaselineSpec {
  if (typeof b === 'number') {
    if (!Number.isFinite(b)) throw new XaiEvalError('INVALID_OPTION', name, `a constant baseline must be finite, got ${b}`)
    return { kind: 'constant', value: b }
  }
  if (b === 'min' || b === 'max' || b === 'mean' || b === 'channelMean') return { kind: b }
  if (b !== null && typeof b === 'object') {
    if ('blur' in b && typeof b.blur === 'number') return { kind: 'blur', sigma: b.blur }
    if ('uniform' in b && Array.isArray(b.uniform) && b.uniform.length === 2) {
      const seed = 'seed' in b && typeof b.seed === 'number' ? b.seed : 0
      return { kind: 'uniform', low: Number(b.uniform[0]), high: Number(b.uniform[1]), seed }
    }
  }
  throw new XaiEvalError(
    'INVALID_OPTION',
    name,
    `expected a number, 'min', 'max', 'mean', 'channelMean', { blur: sigma } or { uniform: [low, high], seed }, got ${JSON.stringify(b)}`,
  )
}
