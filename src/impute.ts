// ROAD's noisy linear imputer (Rong, Leemann et al. 2022) on its own: every masked pixel becomes
// the weighted mean of its in-image 8-neighbours (1/6 direct, 1/12 diagonal), known pixels stay,
// one system for all channels, then `noise · N(0, 1)` is added to the imputed values.
import { XaiEvalError } from './errors.js'
import * as native from './native.js'
import { parseOptions, seed, z } from './options.js'

const dim = z
  .int()
  .min(0)
  .max(2 ** 31)
const common = {
  /** Standard deviation of the Gaussian noise added to imputed pixels (default 0.01). */
  noise: z.number().min(0).max(1e6).default(0.01),
  /** Seed of that noise (default 0). */
  seed: seed.default(0),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
}
const single = z.strictObject({ /** `[C, H, W]` of the image. */ shape: z.tuple([dim, dim, dim]), ...common })
const batch = z.strictObject({
  /** `[N, C, H, W]` of the images; image n's noise is keyed by (seed, n). */
  shape: z.tuple([dim, dim, dim, dim]),
  ...common,
})

export type NoisyLinearOptions = z.input<typeof single>
export type NoisyLinearBatchOptions = z.input<typeof batch>

/**
 * Imputes `x` where `mask` (`H × W`, 1 = impute) is set and returns a new array. Nothing masked
 * returns a copy; an image with every pixel masked has no known value to interpolate from and
 * becomes zeros (plus noise), as in the reference implementation.
 */
export async function noisyLinear(x: Float32Array, mask: Uint8Array, options: NoisyLinearOptions): Promise<Float32Array> {
  const o = parseOptions(single, options)
  return impute(x, mask, [1, ...o.shape], o)
}

/** {@link noisyLinear} for many images at once (`masks` is `[N, H, W]`), in parallel off the JS thread. */
export async function noisyLinearBatch(x: Float32Array, masks: Uint8Array, options: NoisyLinearBatchOptions): Promise<Float32Array> {
  const o = parseOptions(batch, options)
  return impute(x, masks, o.shape, o)
}

async function impute(
  x: Float32Array,
  masks: Uint8Array,
  shape: readonly number[],
  o: { noise: number; seed: number; signal?: AbortSignal },
): Promise<Float32Array> {
  if (!(x instanceof Float32Array)) throw new XaiEvalError('INVALID_OPTION', 'x', 'expected a Float32Array')
  if (!(masks instanceof Uint8Array)) throw new XaiEvalError('INVALID_OPTION', 'mask', 'expected a Uint8Array (1 = impute)')
  // Image n is sample n of its own data set: row n, noise keyed by (seed, n, step 0).
  const n = shape[0]!
  const samples = Uint32Array.from({ length: n }, (_, i) => i)
  const out = new Float32Array(x.length)
  await native.imputeMasked(x, [...shape], samples, samples, new Uint32Array(n), masks, o.noise, o.seed, out, undefined, o.signal)
  return out
}
