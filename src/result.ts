import { summarize } from './native.js'

/** Curves of every sample, row-major `[N, points]`, on the grid `x`. */
export interface Curves {
  x: Float64Array
  values: Float64Array
  points: number
}

/** What every data-set metric returns. */
export interface MetricResult {
  metric: string
  /** One score per sample (NaN where a score is undefined, e.g. a zero original score). */
  scores: Float64Array
  /** Mean and population std over the finite scores. */
  mean: number
  std: number
  /** Samples whose score is not finite (left out of mean and std). */
  skipped: number
  /** Model rows evaluated for this result (the cost). */
  forwardPasses: number
  /** Calls into the model. */
  batches: number
  /** The hyper-parameters used, defaults included. */
  params: Record<string, unknown>
}

export function finish<R extends MetricResult>(partial: Omit<R, 'mean' | 'std' | 'skipped'>): R {
  const { mean, std, skipped } = summarize(partial.scores)
  return { ...partial, mean, std, skipped } as R
}

/** Counts the model rows and calls one evaluation makes. */
export function meter(stats: { forwardPasses: number; rows: number }): () => { forwardPasses: number; batches: number } {
  const rows = stats.rows
  const calls = stats.forwardPasses
  return () => ({ forwardPasses: stats.rows - rows, batches: stats.forwardPasses - calls })
}
