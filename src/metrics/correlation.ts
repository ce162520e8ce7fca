// What the correlation-type faithfulness metrics share (FaithfulnessCorrelation,
// FaithfulnessEstimate, MonotonicityCorrelation): deterministic baselines with Quantus's names in
// compat mode, a plan of the clean rows followed by the perturbed ones, per-sample correlations
// computed natively, and a reason for every undefined (NaN) score.
import { type Plan, type RunOptions, run } from '../engine.js'
import type { Model } from '../models/model.js'
import type { BaselineSpec } from '../native.js'
import { rowCorrelations } from '../native.js'
import { z } from '../options.js'
import type { Checked } from '../validate.js'
import { MAX_BLUR_SIGMA } from './baseline.js'
import { type Cost, column, type Merged, type MetricResult } from './protocol.js'

/**
 * A baseline computed once per sample from its unperturbed input (a number, `'min'`, `'max'`,
 * `'mean'`, `'channelMean'`, `'blur'` or `{ blur: sigma }`, see {@link Baseline}); with
 * `compat: 'quantus'` also Quantus's `'black'` (the sample minimum) and `'white'` (maximum).
 */
export const fixedBaseline = z.union([
  z.number(),
  z.enum(['min', 'max', 'mean', 'channelMean', 'blur', 'black', 'white']),
  z.strictObject({ blur: z.number().positive().max(MAX_BLUR_SIGMA) }),
])

export type FixedBaseline = z.output<typeof fixedBaseline>

/**
 * The baseline of FaithfulnessCorrelation and FaithfulnessEstimate: the full vocabulary of
 * {@link Baseline} (a `{ uniform }` baseline is one keyed draw per entry and sample, the same in
 * every row of that sample), and Quantus's `'black'`/`'white'` with `compat: 'quantus'`, which
 * does not take a `{ uniform }` baseline (Quantus draws one scalar per sample and call from
 * numpy's global generator).
 */
export function checkSnapshotBaseline(o: { baseline?: unknown; compat?: string }, ctx: z.RefinementCtx): void {
  checkQuantusNames(o, ctx)
  if (o.compat && typeof o.baseline === 'object' && o.baseline !== null && 'uniform' in o.baseline) {
    ctx.addIssue({
      code: 'custom',
      path: ['baseline'],
      message:
        "Quantus's uniform baseline (one numpy scalar per sample and call) is not reproduced; use 'black', 'white', 'mean' or a number",
    })
  }
}

/** Quantus's baseline names only with `compat: 'quantus'`. */
export function checkQuantusNames(o: { baseline?: unknown; compat?: string }, ctx: z.RefinementCtx): void {
  if ((o.baseline === 'black' || o.baseline === 'white' || o.baseline === 'uniform') && o.compat !== 'quantus') {
    const ours = o.baseline === 'black' ? "'min'" : o.baseline === 'white' ? "'max'" : '{ uniform: [0, 1] }'
    ctx.addIssue({
      code: 'custom',
      path: ['baseline'],
      message: `'${o.baseline}' is Quantus's name (say ${ours}), accepted only with compat: 'quantus'`,
    })
  }
}

/**
 * The core's description of a fixed baseline. Quantus's `'mean'` of these non-cumulative metrics is
 * the mean of the unperturbed sample, so it is the snapshot `'mean'` here too.
 */
export function fixedBaselineSpec(b: FixedBaseline): BaselineSpec {
  if (typeof b === 'number') return { kind: 'constant', value: b }
  if (b === 'black') return { kind: 'min' }
  if (b === 'white') return { kind: 'max' }
  if (b === 'blur') return { kind: 'blur', sigma: 5 }
  if (typeof b === 'string') return { kind: b }
  return { kind: 'blur', sigma: b.blur }
}

/** The label's score `f_y(x)` of every clean input (one plan of N rows). */
export async function cleanScores(model: Model, d: Checked, softmax: boolean, options: RunOptions, cost: Cost): Promise<Float64Array> {
  const rowLen = d.channels * d.height * d.width
  const y0 = new Float64Array(d.n)
  const plan: Plan = {
    rows: d.n,
    async build(start, end, out, targets) {
      out.set(d.x.subarray(start * rowLen, end * rowLen))
      targets.set(d.y.subarray(start, end))
    },
  }
  await run(model, [d.channels, d.height, d.width], plan, softmax, ({ start, scores }) => y0.set(scores, start), options, cost)
  return y0
}

/** `rows` perturbed rows built by `fill`, row `p` of sample `sampleOf(p)` and scored for its label. */
export function perturbedRows(
  d: Checked,
  rows: number,
  sampleOf: (p: number) => number,
  fill: (p0: number, p1: number, out: Float32Array, signal?: AbortSignal) => Promise<unknown>,
): Plan {
  return {
    rows,
    async build(start, end, out, targets, signal) {
      for (let p = start; p < end; p++) targets[p - start] = d.y[sampleOf(p)]!
      await fill(start, end, out, signal)
    },
  }
}

/** Per-sample scores and reason codes (0: defined) of row-wise correlations of `[n, k]` arrays. */
export async function correlate(
  a: Float64Array,
  b: Float64Array,
  k: number,
  kind: 'pearson' | 'spearman',
  signal?: AbortSignal,
): Promise<{ score: Float64Array; reason: Float64Array }> {
  const out = await rowCorrelations(a, b, k, kind === 'spearman', signal)
  const n = a.length / k
  return { score: out.slice(0, n), reason: out.slice(n) }
}

/** A sample whose score is NaN, and why. */
export interface UndefinedScore {
  /** Global index of the sample. */
  sample: number
  reason: string
}

export interface CorrelationResult extends MetricResult {
  /** Every sample whose score is NaN, with the reason (a correlation of a constant series is undefined). */
  undefinedScores: UndefinedScore[]
}

/**
 * The reasons of the merged `reason` column: `what` names the two correlated series and the
 * points they run over, e.g. `['attribution sums', 'prediction drops', 'runs']`.
 */
export function undefinedScores(m: Merged, what: readonly [string, string, string]): UndefinedScore[] {
  const reasons = column(m, 'reason').values
  const [first, second, points] = what
  const text = [
    '',
    `fewer than two ${points}: correlation undefined`,
    `the ${first} are constant over the ${points}: correlation undefined`,
    `the ${second} are constant over the ${points}: correlation undefined`,
    `the ${first} or the ${second} hold a non-finite value: correlation undefined`,
  ]
  const out: UndefinedScore[] = []
  reasons.forEach((r, i) => {
    if (r !== 0) out.push({ sample: m.firstSample + i, reason: text[r] ?? 'undefined' })
  })
  return out
}
