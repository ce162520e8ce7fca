// The sharding property every metric must have: any split of a data set into contiguous shards,
// mapped separately (each with its global firstSample) and reduced in any order, is the single
// pass bit for bit.
import type { ExecutionContext } from 'ava'
import { type Dataset, fromJSON, type MetricResult, type Model, type Shard } from 'xai-eval'

interface Mappable {
  map(model: Model, data: Dataset, options?: { firstSample?: number }): Promise<Shard>
  reduce(shards: readonly Shard[]): MetricResult
}

/** Samples `[s0, s1)` of `data` (x, y, a and any other per-sample arrays of the same layout). */
export function slice(data: Dataset, s0: number, s1: number): Dataset {
  const [n, c, h, w] = data.shape
  const row = c * h * w
  const aRow = data.a.length / n
  return {
    ...data,
    x: data.x.slice(s0 * row, s1 * row),
    shape: [s1 - s0, c, h, w],
    y: Array.from(data.y).slice(s0, s1),
    a: data.a.slice(s0 * aRow, s1 * aRow),
    ...(data.aShape ? { aShape: [s1 - s0, ...data.aShape.slice(1)] } : {}),
    ...(data.segments ? { segments: data.segments.slice(s0 * h * w, s1 * h * w) } : {}),
    ...(data.masks ? { masks: data.masks.slice(s0 * h * w, s1 * h * w) } : {}),
    ...(data.boxes ? { boxes: Array.from(data.boxes).slice(4 * s0, 4 * s1) } : {}),
  }
}

/** Random cut points for `k` non-empty shards of `n` samples. */
export function cuts(n: number, k: number, rand: () => number): number[] {
  const points = new Set<number>()
  while (points.size < Math.min(k, n) - 1) points.add(1 + Math.floor(rand() * (n - 1)))
  return [0, ...[...points].sort((a, b) => a - b), n]
}

/** Checks that 1…maxShards random splits, shuffled, reduce to exactly `whole`'s scores. */
export async function checkShards(
  t: ExecutionContext,
  metric: Mappable,
  model: () => Model,
  data: Dataset,
  whole: MetricResult,
  rand: () => number,
  maxShards = 7,
): Promise<void> {
  const n = data.shape[0]
  for (let k = 1; k <= Math.min(maxShards, n); k++) {
    const c = cuts(n, k, rand)
    const shards: Shard[] = []
    for (let i = 0; i + 1 < c.length; i++) {
      shards.push(await metric.map(model(), slice(data, c[i]!, c[i + 1]!), { firstSample: c[i]! }))
    }
    shards.sort(() => rand() - 0.5)
    // Through JSON, as a shard crosses a process or a queue.
    const r = metric.reduce(shards.map((s) => fromJSON<Shard>(JSON.stringify(s))))
    t.deepEqual(r.scores, whole.scores, `${k} shards (cuts ${c.join(', ')}): scores`)
    t.is(r.samples, n)
  }
}
