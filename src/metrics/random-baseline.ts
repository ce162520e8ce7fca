import { XaiEvalError } from '../errors.js'
import type { Model } from '../models/model.js'
import { randomRankings } from '../native.js'
import { seed, z } from '../options.js'
import { RowCache } from '../row-cache.js'
import { type Checked, datasetOf } from '../validate.js'
import {
  type CheckedMapOptions,
  metricOption,
  type Merged,
  Metric,
  type MetricMeta,
  type MetricResult,
  newCost,
  type Shard,
} from './protocol.js'

const schema = z.strictObject({
  /** The quality measure Ψ: any metric of the registry, or its `{ id, params }`. */
  metric: metricOption,
  /** Random explanations per sample (default 1, the baseline QGE is compared with in the paper). */
  k: z.int().min(1).max(1000).default(1),
  /** Rank cells of `chunk × chunk` pixels ("chunky" random explanations; default 1: every pixel). */
  chunk: z.int().min(1).max(4096).default(1),
  /** Seed of the random explanations (default 0). */
  seed: seed.default(0),
})

export type RandomBaselineGapOptions = z.input<typeof schema>
export type RandomBaselineGapParams = z.output<typeof schema>

export interface RandomBaselineGapResult extends MetricResult {
  /** Ψ(e) per sample. */
  original: Float64Array
  /** `[N, k]`: Ψ of each sample's random explanations. */
  random: Float64Array
}

/**
 * The random baseline the Quality Gap Estimator replaces: Ψ(e) − mean_j Ψ(r_j) over `k` random
 * explanations r_j (random rankings of the pixels, or of `chunk`-pixel cells), the usual "better
 * than random?" check (QB_K in Eiras-Franco et al., AAAI 2025). Costs k + 1 evaluations of Ψ;
 * rows they share are evaluated once. Random explanation j of a sample is keyed by (seed, global
 * sample, j), so shards do not change it. Inherits Ψ's direction.
 */
export class RandomBaselineGap extends Metric<RandomBaselineGapParams, RandomBaselineGapResult> {
  static readonly meta: MetricMeta = {
    id: 'random-baseline-gap',
    name: 'RandomBaselineGap',
    higherIsBetter: true,
    needs: ['attributions'],
    version: 1,
    cost: "(k + 1) × Ψ's rows, less shared rows",
    reference: 'Eiras-Franco, Hedström & Höhne, AAAI 2025 (QB_K)',
  }

  constructor(options: RandomBaselineGapOptions) {
    super(schema, options)
  }

  override get higherIsBetter(): boolean {
    return this.params.metric.higherIsBetter
  }

  protected async shardOf(model: Model, d: Checked, o: CheckedMapOptions): Promise<Shard> {
    const { metric: psi, k, chunk, seed } = this.params
    if (chunk > Math.max(d.height, d.width)) {
      throw new XaiEvalError('INVALID_OPTION', 'chunk', `a cell of ${chunk} pixels is larger than the ${d.height} × ${d.width} image`)
    }
    const rows = o.rows ?? new RowCache()
    const parts: Record<string, Shard> = { original: await psi.map(model, datasetOf(d), { ...o, rows }) }
    for (let j = 0; j < k; j++) {
      const a = randomRankings(d.n, o.firstSample, d.height, d.width, chunk, seed, j)
      const random = { ...datasetOf(d, a), aShape: [d.n, 1, d.height, d.width] }
      parts[`random${j}`] = await psi.map(model, random, { ...o, rows })
    }
    const cost = newCost()
    for (const p of Object.values(parts)) {
      cost.forwardPasses += p.forwardPasses
      cost.batches += p.batches
    }
    return this.shard(o.firstSample, d.n, {}, cost, {}, undefined, parts)
  }

  protected finish(m: Merged): RandomBaselineGapResult {
    const { metric: psi, k } = this.params
    const original = psi.reduce(m.parts.original ?? []).scores
    const draws = Array.from({ length: k }, (_, j) => psi.reduce(m.parts[`random${j}`] ?? []).scores)
    const random = new Float64Array(original.length * k)
    draws.forEach((r, j) => {
      r.forEach((v, s) => {
        random[s * k + j] = v
      })
    })
    const scores = original.map((v, s) => v - random.subarray(s * k, (s + 1) * k).reduce((p, q) => p + q, 0) / k)
    return this.result(m, scores, { original, random })
  }
}
