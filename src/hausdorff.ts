// The Hausdorff distance between evaluation curves (Li, Zhang et al., TMLR 2024, §5.2 and
// Table 1): each curve is taken as the set of its plotted points (x, y), e.g. (accuracy,
// soundness) per mask ratio or (threshold, accuracy difference) per threshold, and
//   H(P, Q) = max( max_{p∈P} min_{q∈Q} ‖p − q‖, max_{q∈Q} min_{p∈P} ‖p − q‖ )
// with the Euclidean norm. The paper's "minimal Hausdorff distance" is min_{p,q} H(p, q) over the
// pairs of curves p, q ∈ {Original, Introduce, Remove}: near zero means that two of the curves
// overlap, i.e. the metric fails to tell a modified map from the original one.
import { XaiEvalError } from './errors.js'

/** A curve: `{ x, y }` of equal length, or a list of `[x, y]` points. */
export type CurvePoints = { readonly x: ArrayLike<number>; readonly y: ArrayLike<number> } | ArrayLike<readonly [number, number]>

export interface MinimalHausdorff {
  /** min over all pairs of curves of their Hausdorff distance. */
  distance: number
  /** The names (keys, or indices as strings) of a pair attaining it. */
  pair: [string, string]
  /** Every pair's distance, keyed `"a|b"`. */
  pairs: Record<string, number>
}

function points(c: CurvePoints, arg: string): Float64Array {
  if (c === null || typeof c !== 'object') throw new XaiEvalError('INVALID_OPTION', arg, 'expected { x, y } or [[x, y], …]')
  let xy: Float64Array
  if ('x' in c && 'y' in c) {
    const { x, y } = c as { x: ArrayLike<number>; y: ArrayLike<number> }
    if (typeof x?.length !== 'number' || typeof y?.length !== 'number')
      throw new XaiEvalError('INVALID_OPTION', arg, 'x and y must be arrays')
    if (x.length !== y.length) throw new XaiEvalError('SHAPE_MISMATCH', arg, `x has ${x.length} points, y has ${y.length}`)
    xy = new Float64Array(2 * x.length)
    for (let i = 0; i < x.length; i++) {
      xy[2 * i] = x[i]!
      xy[2 * i + 1] = y[i]!
    }
  } else {
    const list = c as ArrayLike<readonly [number, number]>
    if (typeof list.length !== 'number') throw new XaiEvalError('INVALID_OPTION', arg, 'expected { x, y } or [[x, y], …]')
    xy = new Float64Array(2 * list.length)
    for (let i = 0; i < list.length; i++) {
      const p = list[i]
      if (p?.length !== 2) throw new XaiEvalError('SHAPE_MISMATCH', arg, `point ${i} is not [x, y]`)
      xy[2 * i] = p[0]
      xy[2 * i + 1] = p[1]
    }
  }
  if (xy.length === 0) throw new XaiEvalError('EMPTY_INPUT', arg, 'the curve has no points')
  const bad = xy.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v))
  if (bad >= 0) throw new XaiEvalError('NON_FINITE', arg, `point ${bad >> 1} has a non-finite coordinate`)
  return xy
}

/** max over points of `p` of the distance to the nearest point of `q`. */
function directed(p: Float64Array, q: Float64Array): number {
  let worst = 0
  for (let i = 0; i < p.length; i += 2) {
    let best = Infinity
    for (let j = 0; j < q.length && best > worst; j += 2) {
      best = Math.min(best, Math.hypot(p[i]! - q[j]!, p[i + 1]! - q[j + 1]!))
    }
    worst = Math.max(worst, best)
  }
  return worst
}

/** The (symmetric) Hausdorff distance between two curves taken as point sets. */
export function hausdorff(a: CurvePoints, b: CurvePoints): number {
  const p = points(a, 'a')
  const q = points(b, 'b')
  return Math.max(directed(p, q), directed(q, p))
}

/**
 * The minimal Hausdorff distance among curves (Table 1): `min_{p≠q} H(p, q)` over all pairs, e.g.
 * `{ original, remove, introduce }`. Needs at least two curves.
 */
export function minimalHausdorff(curves: Record<string, CurvePoints> | readonly CurvePoints[]): MinimalHausdorff {
  if (curves === null || typeof curves !== 'object') throw new XaiEvalError('INVALID_OPTION', 'curves', 'expected curves by name or a list')
  const entries = Object.entries(curves) as [string, CurvePoints][]
  if (entries.length < 2) throw new XaiEvalError('EMPTY_INPUT', 'curves', `expected at least two curves, got ${entries.length}`)
  const sets = entries.map(([name, c]) => [name, points(c, `curves.${name}`)] as const)
  const pairs: Record<string, number> = {}
  let best: MinimalHausdorff | undefined
  for (let i = 0; i < sets.length; i++) {
    for (let j = i + 1; j < sets.length; j++) {
      const [a, p] = sets[i]!
      const [b, q] = sets[j]!
      const d = Math.max(directed(p, q), directed(q, p))
      pairs[`${a}|${b}`] = d
      if (!best || d < best.distance) best = { distance: d, pair: [a, b], pairs }
    }
  }
  return best!
}
