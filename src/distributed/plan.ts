// A distributed run as data: its content hash (the run id), its shard jobs with deterministic ids,
// and the exact reduce of the shards the workers return. No Redis here, so all of it is testable
// without a queue.
import { createHash } from 'node:crypto'

import { XaiEvalError } from '../errors.js'
import { createMetric, fromJSON, type MetricResult, type Shard } from '../metrics/protocol.js'
import { canonical } from '../serial.js'
import type { DataReference } from './reference.js'

/** Queue names (one prefix per deployment: workers and submitters must agree). */
export const SHARD_QUEUE = 'xai-eval-shards'
export const REDUCE_QUEUE = 'xai-eval-reduce'
/** Redis pub/sub channel and key prefix of cancellations. */
export const CANCEL_CHANNEL = 'xai-eval-cancel'
export const cancelKey = (runId: string) => `xai-eval-cancelled-${runId}`

/** A metric as it travels: what `metric.toJSON()` gives. */
export interface MetricSpec {
  id: string
  version: number
  params: unknown
}

/** What a shard job carries: references and hashes, never data. */
export interface ShardJob {
  runId: string
  model: { path: string; hash: string }
  data: { reference: DataReference; hash: string }
  method: string
  /** Index of the metric in the run's list. */
  metric: number
  spec: MetricSpec
  firstSample: number
  samples: number
}

/** What the reduce job carries. */
export interface ReduceJob {
  runId: string
  methods: string[]
  specs: MetricSpec[]
  samples: number
}

/** A shard job's return value: its place in the run and the shard's JSON. */
export interface ShardValue {
  method: string
  metric: number
  shard: string
}

/** The run's results: `results[method][i]` is metric i's result (as JSON) on that method's attributions. */
export interface ReduceValue {
  results: Record<string, unknown[]>
  /** Milliseconds the reduce took (parsing the shards included). */
  reduceMs: number
  /** Shards delivered more than once (identical, counted once). */
  duplicates: number
}

export interface RunPlan {
  runId: string
  reduceId: string
  shards: (ShardJob & { jobId: string })[]
}

/**
 * The run id is a hash of everything that decides its numbers (model and data hashes, metrics
 * with their versions and parameters, methods, shard size), so a resubmitted run gets the same
 * job ids and BullMQ hands back the shards it finished. Ids hold no `:` and are never all digits.
 */
export function planRun(o: {
  model: { path: string; hash: string }
  data: { reference: DataReference; hash: string }
  specs: MetricSpec[]
  methods: string[]
  samples: number
  shardSize: number
}): RunPlan {
  const runId = createHash('sha256')
    .update(
      canonical({
        model: o.model.hash,
        data: o.data.hash,
        metrics: o.specs,
        methods: o.methods,
        samples: o.samples,
        shardSize: o.shardSize,
      }),
    )
    .digest('hex')
    .slice(0, 24)
  const shards: RunPlan['shards'] = []
  o.methods.forEach((method, m) => {
    o.specs.forEach((spec, k) => {
      for (let first = 0; first < o.samples; first += o.shardSize) {
        const samples = Math.min(o.shardSize, o.samples - first)
        shards.push({
          jobId: `run-${runId}-m${m}-k${k}-s${first}-${first + samples}`,
          runId,
          model: o.model,
          data: o.data,
          method,
          metric: k,
          spec,
          firstSample: first,
          samples,
        })
      }
    })
  })
  return { runId, reduceId: `run-${runId}-reduce`, shards }
}

/** Where a shard sits, in words, for errors: `'soundness' on 'gradient', samples 10…19`. */
export function describeShard(s: Pick<ShardJob, 'spec' | 'method' | 'firstSample' | 'samples'>): string {
  return `'${s.spec.id}' on '${s.method}', samples ${s.firstSample}…${s.firstSample + s.samples - 1}`
}

/**
 * The exact reduce: groups the returned shards by (method, metric), keeps one shard per sample
 * range (a shard delivered twice after a retry is counted once; two different shards for one
 * range are an error), then runs each metric's own `reduce`, which refuses gaps and overlaps.
 */
export function reduceShards(job: ReduceJob, values: readonly ShardValue[]): ReduceValue {
  const start = performance.now()
  const groups = new Map<string, Map<string, { text: string; shard: Shard }>>()
  let duplicates = 0
  for (const v of values) {
    const shard = fromJSON<Shard>(v.shard)
    const group = `${v.method}\u0000${v.metric}`
    const ranges = groups.get(group) ?? new Map()
    groups.set(group, ranges)
    const range = `${shard.firstSample}+${shard.samples}`
    const seen = ranges.get(range)
    if (seen) {
      if (seen.text !== v.shard) {
        throw new XaiEvalError(
          'INTERNAL',
          'shards',
          `two different shards of metric ${v.metric} on '${v.method}' for samples ${shard.firstSample}…${shard.firstSample + shard.samples - 1}`,
        )
      }
      duplicates++
      continue
    }
    ranges.set(range, { text: v.shard, shard })
  }
  const results: Record<string, unknown[]> = {}
  for (const method of job.methods) {
    results[method] = job.specs.map((spec, k) => {
      const shards = [...(groups.get(`${method}\u0000${k}`)?.values() ?? [])].map((s) => s.shard)
      if (shards.length === 0) throw new XaiEvalError('INTERNAL', 'shards', `no shard of '${spec.id}' on '${method}'`)
      const r: MetricResult = createMetric(spec).reduce(shards)
      if (r.firstSample !== 0 || r.samples !== job.samples) {
        throw new XaiEvalError(
          'INTERNAL',
          'shards',
          `'${spec.id}' on '${method}' covers samples ${r.firstSample}…${r.firstSample + r.samples - 1} of ${job.samples}`,
        )
      }
      return JSON.parse(JSON.stringify(r))
    })
  }
  return { results, reduceMs: performance.now() - start, duplicates }
}
