// ROAD's noisy linear imputer (Rong, Leemann et al. 2022) on its own: every masked pixel becomes
// the weighted mean of its in-image 8-neighbours (1/6 direct, 1/12 diagonal), known pixels stay,
// one system for all channels, then `noise · N(0, 1)` is added to the imputed values.
import { XaiEvalError } from './errors.js'
import * as native from './native.js'
import { seedOf } from './validate.js'

export interface NoisyLinearOptions {
  /** `[C, H, W]` of the image. */
  shape: readonly [number, number, number]
  /** Standard deviation of the Gaussian noise added to imputed pixels (default 0.01). */
  noise?: number
  /** Seed of that noise (default 0). */
  seed?: number
  signal?: AbortSignal
}

export interface NoisyLinearBatchOptions extends Omit<NoisyLinearOptions, 'shape'> {
  /** `[N, C, H, W]` of the images; image n draws noise stream n of the seed. */
  shape: readonly [number, number, number, number]
}

/**
 * Imputes `x` where `mask` (`H × W`, 1 = impute) is set and returns a new array. Nothing masked
 * returns a copy; an image with every pixel masked has no known value to interpolate from and
 * becomes zeros (plus noise), as in the reference implementation.
 */
export async function noisyLinear(x: Float32Array, mask: Uint8Array, options: NoisyLinearOptions): Promise<Float32Array> {
  const shape = options?.shape
  if (!Array.isArray(shape) || shape.length !== 3) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'shape', `expected [C, H, W], got ${String(shape)}`)
  }
  return noisyLinearBatch(x, mask, { ...options, shape: [1, ...shape] as [number, number, number, number] })
}

/** {@link noisyLinear} for many images at once (`masks` is `[N, H, W]`), in parallel off the JS thread. */
export async function noisyLinearBatch(x: Float32Array, masks: Uint8Array, options: NoisyLinearBatchOptions): Promise<Float32Array> {
  if (!(x instanceof Float32Array)) throw new XaiEvalError('INVALID_OPTION', 'x', 'expected a Float32Array')
  if (!(masks instanceof Uint8Array)) throw new XaiEvalError('INVALID_OPTION', 'mask', 'expected a Uint8Array (1 = impute)')
  const { shape, noise = 0.01, seed = 0, signal } = options
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'shape', `expected [N, C, H, W], got ${String(shape)}`)
  }
  // Image n is sample n of its own data set: row n, noise keyed by (seed, n, step 0).
  const n = shape[0]
  const samples = Uint32Array.from({ length: n }, (_, i) => i)
  const out = new Float32Array(x.length)
  await native.imputeMasked(x, [...shape], samples, samples, new Uint32Array(n), masks, noise, seedOf(seed), out, undefined, signal)
  return out
}
