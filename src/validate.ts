// Argument checks that need no per-element work; NaN/Inf scans run in Rust with the hot loops.
import type { Dataset } from './data.js'
import { XaiEvalError } from './errors.js'
import type { LayoutSpec } from './native.js'

/** A data set whose shapes have been checked, with everything the core needs. */
export interface Checked {
  x: Float32Array
  a: Float32Array
  n: number
  channels: number
  height: number
  width: number
  /** Channels of the attribution: 1 (broadcast) or `channels`. */
  attrChannels: number
  /** Labels as Int32Array (a copy only when `y` was not one already). */
  y: Int32Array
  /** Superpixel labels `[N, H·W]`, when given (IROF). */
  segments?: Uint32Array
  /** Object masks `[N, H·W]`, nonzero inside (given as `masks`, or drawn from `boxes`). */
  masks?: Uint8Array
  /** The boxes `[N, 4]` the masks were drawn from, when given as boxes. */
  boxes?: Int32Array
}

const describe = (s: readonly number[]): string => `[${s.join(', ')}]`

function isShape(s: unknown): s is readonly number[] {
  return Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0)
}

export function checkDataset(data: Dataset): Checked {
  if (data === null || typeof data !== 'object') {
    throw new XaiEvalError('INVALID_OPTION', 'data', 'expected { x, shape, y, a, aShape? }')
  }
  const { x, shape, y, a } = data
  if (!(x instanceof Float32Array)) throw new XaiEvalError('INVALID_OPTION', 'x', 'expected a Float32Array')
  if (!(a instanceof Float32Array)) throw new XaiEvalError('INVALID_OPTION', 'a', 'expected a Float32Array')
  if (!isShape(shape) || shape.length !== 4) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'shape', `expected [N, C, H, W] of non-negative integers, got ${String(shape)}`)
  }
  const [n, channels, height, width] = shape
  if (n === 0) throw new XaiEvalError('EMPTY_INPUT', 'x', 'the data set has no samples (N = 0)')
  if (channels * height * width === 0) {
    throw new XaiEvalError('EMPTY_INPUT', 'shape', `every sample is empty: shape ${describe(shape)}`)
  }
  if (x.length !== n * channels * height * width) {
    throw new XaiEvalError(
      'SHAPE_MISMATCH',
      'x',
      `length ${x.length} does not match shape ${describe(shape)} (${n * channels * height * width})`,
    )
  }
  const aShape = data.aShape ?? shape
  if (
    !isShape(aShape) ||
    aShape.length !== 4 ||
    aShape[0] !== n ||
    aShape[2] !== height ||
    aShape[3] !== width ||
    (aShape[1] !== 1 && aShape[1] !== channels)
  ) {
    throw new XaiEvalError(
      'SHAPE_MISMATCH',
      'aShape',
      `expected [${n}, ${channels}, ${height}, ${width}] or [${n}, 1, ${height}, ${width}], got ${String(aShape && describe(aShape))}`,
    )
  }
  const attrChannels = aShape[1]!
  if (a.length !== n * attrChannels * height * width) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'a', `length ${a.length} does not match aShape ${describe(aShape)}`)
  }
  if (y === null || typeof y !== 'object' || typeof y.length !== 'number' || y instanceof BigInt64Array || y instanceof BigUint64Array) {
    throw new XaiEvalError('INVALID_OPTION', 'y', 'expected class indices as an array of numbers or an Int32Array')
  }
  if (y.length !== n) throw new XaiEvalError('SHAPE_MISMATCH', 'y', `expected ${n} labels (one per sample), got ${y.length}`)
  // Checked before any conversion: Int32Array.from would wrap 2^32 + 3 to 3.
  for (let i = 0; i < n; i++) {
    const v = y[i]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new XaiEvalError('INVALID_OPTION', 'y', `label ${String(v)} of sample ${i} is not a class index (an integer in [0, 2^31))`)
    }
  }
  const labels = y instanceof Int32Array ? y : Int32Array.from(y)
  const segments = checkSegments(data.segments, n, height, width)
  const regions = checkRegions(data.masks, data.boxes, n, height, width)
  return { x, a, n, channels, height, width, attrChannels, y: labels, ...(segments ? { segments } : {}), ...regions }
}

/** Superpixel labels `[N, H, W]` as Uint32Array (a view of an Int32Array), checked for shape and sign. */
function checkSegments(segments: unknown, n: number, height: number, width: number): Uint32Array | undefined {
  if (segments === undefined) return undefined
  if (!(segments instanceof Uint32Array || segments instanceof Int32Array)) {
    throw new XaiEvalError('INVALID_OPTION', 'segments', 'expected superpixel labels [N, H, W] as a Uint32Array or Int32Array')
  }
  if (segments.length !== n * height * width) {
    throw new XaiEvalError('SHAPE_MISMATCH', 'segments', `expected [${n}, ${height}, ${width}] labels, got ${segments.length} values`)
  }
  if (segments instanceof Uint32Array) return segments
  const i = segments.findIndex((v) => v < 0)
  if (i >= 0) {
    throw new XaiEvalError('INVALID_OPTION', 'segments', `label ${segments[i]} of sample ${Math.floor(i / (height * width))} is negative`)
  }
  return new Uint32Array(segments.buffer, segments.byteOffset, segments.length)
}

/**
 * Object masks `[N, H, W]` (Uint8Array), or boxes `[N, 4]` (integers `x0, y0, x1, y1`, half-open,
 * inside the image and non-empty) drawn into masks. Not both.
 */
function checkRegions(
  masks: unknown,
  boxes: unknown,
  n: number,
  height: number,
  width: number,
): { masks?: Uint8Array; boxes?: Int32Array } {
  if (masks !== undefined && boxes !== undefined) {
    throw new XaiEvalError('INVALID_OPTION', 'boxes', 'give object masks or bounding boxes, not both')
  }
  if (masks !== undefined) {
    if (!(masks instanceof Uint8Array)) throw new XaiEvalError('INVALID_OPTION', 'masks', 'expected object masks [N, H, W] as a Uint8Array')
    if (masks.length !== n * height * width) {
      throw new XaiEvalError('SHAPE_MISMATCH', 'masks', `expected [${n}, ${height}, ${width}] values, got ${masks.length}`)
    }
    return { masks }
  }
  if (boxes === undefined) return {}
  const b = boxes as ArrayLike<unknown> | null
  if (b === null || typeof b !== 'object' || typeof b.length !== 'number' || b instanceof BigInt64Array || b instanceof BigUint64Array) {
    throw new XaiEvalError('INVALID_OPTION', 'boxes', 'expected boxes [N, 4] (x0, y0, x1, y1 per sample) as an array of numbers')
  }
  if (b.length !== 4 * n) throw new XaiEvalError('SHAPE_MISMATCH', 'boxes', `expected ${4 * n} numbers (4 per sample), got ${b.length}`)
  const out = new Int32Array(4 * n)
  const drawn = new Uint8Array(n * height * width)
  for (let i = 0; i < n; i++) {
    const [x0, y0, x1, y1] = [0, 1, 2, 3].map((k) => b[4 * i + k])
    const box = `[${[x0, y0, x1, y1].map(String).join(', ')}]`
    if (![x0, y0, x1, y1].every((v) => typeof v === 'number' && Number.isInteger(v))) {
      throw new XaiEvalError('INVALID_OPTION', 'boxes', `box ${box} of sample ${i} is not four integer pixel indices`)
    }
    const [c0, r0, c1, r1] = [x0, y0, x1, y1] as number[]
    if (!(c0! >= 0 && r0! >= 0 && c1! <= width && r1! <= height && c0! < c1! && r0! < r1!)) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        'boxes',
        `box ${box} of sample ${i} is empty or outside the ${width}×${height} image (need 0 ≤ x0 < x1 ≤ ${width}, 0 ≤ y0 < y1 ≤ ${height})`,
      )
    }
    out.set([c0!, r0!, c1!, r1!], 4 * i)
    for (let r = r0!; r < r1!; r++) drawn.fill(1, (i * height + r) * width + c0!, (i * height + r) * width + c1!)
  }
  return { masks: drawn, boxes: out }
}

/** Shape of one input row, `[C, H, W]`. */
export function rowShape(d: Checked): [number, number, number] {
  return [d.channels, d.height, d.width]
}

export function layoutOf(d: Checked, unit: 'entry' | 'pixel'): LayoutSpec {
  return { channels: d.channels, pixels: d.height * d.width, attrChannels: d.attrChannels, unit }
}

/**
 * Number of ranked features of a layout (mirrors `Layout::features` in the core): every input entry
 * (a `[N, 1, H, W]` attribution broadcast over channels, as Quantus does), or every pixel.
 */
export function featureCount(l: LayoutSpec): number {
  return l.unit === 'pixel' ? l.pixels : l.pixels * l.channels
}

/** A checked data set as a {@link Dataset} again (same arrays), e.g. to hand to another metric. */
export function datasetOf(d: Checked, a: Float32Array = d.a): Dataset {
  return {
    x: d.x,
    shape: [d.n, d.channels, d.height, d.width],
    y: d.y,
    a,
    aShape: [d.n, d.attrChannels, d.height, d.width],
    ...(d.segments ? { segments: d.segments } : {}),
    ...(d.boxes ? { boxes: d.boxes } : d.masks ? { masks: d.masks } : {}),
  }
}
