/** What a model's forward pass returns, and what the metrics score. */
export type OutputKind = 'logits' | 'probabilities'

/** Forward passes and rows a model has run since it was created: the cost every metric is judged by. */
export interface ModelStats {
  /** Calls into the backend (one per batch). */
  forwardPasses: number
  /** Input rows evaluated (padding excluded). */
  rows: number
}

/** How a model's sessions share the cores: sessions × intra-op threads each, and whether those threads spin-wait. */
export interface PoolShape {
  workers: number
  threads: number
  spin: boolean
}

/** A classifier the metrics can call. {@link OnnxModel} and {@link FunctionModel} implement it. */
export interface Model {
  /** What the metrics score: `'probabilities'` applies softmax to logits (once). */
  readonly output: OutputKind
  /** What {@link forward} returns. */
  readonly rawOutput: OutputKind
  /** Rows per batch (one pass of the backend). */
  readonly maxBatchSize: number
  /** Batches the model can run at once (worker pool size); the engine keeps this many busy. */
  readonly concurrency: number
  /**
   * Largest {@link concurrency} the model may switch to while it measures its pool shape (default
   * `concurrency`): the engine prepares lanes for it and keeps `concurrency + 1` of them busy.
   */
  readonly maxConcurrency?: number
  /** The pool shape the last batch ran on, when the model has one (reported in results). */
  readonly pool?: PoolShape
  readonly stats: ModelStats
  /**
   * Runs `rows` inputs of shape `rowShape` (`[C, H, W]`) and returns `[rows, classes]` outputs.
   * `rows` ≤ {@link rowsPerCall} (default {@link batchSize}).
   */
  forward(x: Float32Array, rows: number, rowShape: readonly number[]): Promise<Float32Array>
  /**
   * Rows of the next batch of inputs `rowShape` (default {@link maxBatchSize}), asked before each
   * batch: a model may change it as it measures (see OnnxModel's `maxBatchSize: 'auto'`).
   */
  batchSize?(rowShape: readonly number[]): number
  /**
   * Rows of the next call of inputs `rowShape` (default {@link batchSize}): a model whose calls
   * cost a hand-off (OnnxModel's worker threads) takes several whole batches per call and runs
   * them one after the other.
   */
  rowsPerCall?(rowShape: readonly number[]): number
  /** A buffer of `length` floats for the next batch's inputs, possibly reused and not zeroed. */
  buffer?(length: number): Float32Array
  /** Releases workers and sessions. */
  close(): Promise<void>
}
