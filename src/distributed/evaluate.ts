// Submitting a distributed run: one BullMQ flow, a reduce job over one shard job per (method,
// metric, sample range), with ids derived from the run's content hash. The submitter only waits:
// workers (`xai-eval worker`) compute the shards and the reduce.
import { FlowProducer, Job, Queue, QueueEvents } from 'bullmq'
import type { Redis } from 'ioredis'

import { XaiEvalError } from '../errors.js'
import { fromJSON, isMetric, type Metric, type MetricResult, metricOption } from '../metrics/protocol.js'
import { parseOptions, z } from '../options.js'
import '../registry.js'
import { type Connection, connect, quiet } from './connection.js'
import {
  CANCEL_CHANNEL,
  cancelKey,
  describeShard,
  type MetricSpec,
  planRun,
  REDUCE_QUEUE,
  type ReduceJob,
  type ReduceValue,
  type RunPlan,
  SHARD_QUEUE,
} from './plan.js'
import { type DataReference, dataReferenceSchema, hashFile, loadReference } from './reference.js'

/** Progress of a distributed run, aggregated over its shards. */
export interface DistributedProgress {
  runId: string
  shards: number
  /** Shards finished (reused ones included). */
  done: number
  /** 0…1: finished shards plus the reported fraction of running ones. */
  fraction: number
}

export interface DistributedOptions {
  /** Redis, as `redis://host:port` or ioredis options. */
  connection: Connection
  /** The model file every worker loads (same path on every machine) and its SHA-256 (computed here when left out). */
  model: { path: string; hash?: string }
  /** The data by reference; `hash` (SHA-256 of the contents) and `samples` are computed here when left out. */
  data: { reference: DataReference; hash?: string; samples?: number }
  /** Metrics (instances or `{ id, params }`). */
  metrics: readonly (Metric<object, MetricResult> | { id: string; params?: unknown })[]
  /** Attribution methods of the data to evaluate. */
  methods: readonly string[]
  /** Samples per shard job. */
  shardSize: number
  /** Tries per shard before the run fails (default 3), with exponential backoff from `backoffMs` (default 1000). */
  attempts?: number
  backoffMs?: number
  /** Cancels the run: running shards are aborted on the workers. */
  signal?: AbortSignal
  onProgress?: (progress: DistributedProgress) => void
}

export interface DistributedResult {
  runId: string
  /** `results[method][i]`: metric i on that method's attributions, identical to a single-process run. */
  results: Record<string, MetricResult[]>
  shards: number
  /** Shards a previous submission of the same run had finished. */
  reused: number
  /** Milliseconds of the reduce job. */
  reduceMs: number
  /** Shards delivered twice and counted once. */
  duplicates: number
}

const options = z.strictObject({
  connection: z.union([z.string(), z.looseObject({})]),
  model: z.strictObject({
    path: z.string().min(1),
    hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 in hex')
      .optional(),
  }),
  data: z.strictObject({
    reference: dataReferenceSchema,
    hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 in hex')
      .optional(),
    samples: z.int().min(1).optional(),
  }),
  metrics: z.array(metricOption).min(1),
  methods: z.array(z.string().min(1)).min(1),
  shardSize: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  attempts: z.int().min(1).max(100).default(3),
  backoffMs: z.int().min(0).default(1000),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
  onProgress: z.custom<(p: DistributedProgress) => void>((v) => typeof v === 'function', 'expected a function').optional(),
})

const POLL_MS = 200

/**
 * Evaluates metrics on a data set sharded over BullMQ workers. Resubmitting the same run (same
 * model, data, metrics, methods and shard size) reuses every shard already finished; a run that
 * already completed returns at once.
 */
export async function evaluateDistributed(input: DistributedOptions): Promise<DistributedResult> {
  const o = parseOptions(options, input)
  if (o.signal?.aborted) throw new XaiEvalError('ABORTED', 'signal', 'the evaluation was aborted')
  const model = { path: o.model.path, hash: o.model.hash ?? (await hashFile(o.model.path)) }
  let { hash, samples } = o.data
  if (hash === undefined || samples === undefined) {
    const loaded = await loadReference(o.data.reference as DataReference)
    for (const m of o.methods) {
      if (!loaded.attributions[m]) {
        throw new XaiEvalError(
          'INVALID_OPTION',
          'methods',
          `the data has no attributions '${m}' (it has ${Object.keys(loaded.attributions).join(', ')})`,
        )
      }
    }
    hash ??= loaded.hash
    samples ??= loaded.shape[0]
  }
  const specs = o.metrics.map((m) => {
    if (!isMetric(m)) throw new XaiEvalError('INVALID_OPTION', 'metrics', 'expected metrics')
    return m.toJSON() as MetricSpec
  })
  const plan = planRun({
    model,
    data: { reference: o.data.reference as DataReference, hash },
    specs,
    methods: o.methods,
    samples,
    shardSize: o.shardSize,
  })

  const redis = connect(o.connection as Connection)
  const shardQueue = new Queue(SHARD_QUEUE, { connection: redis })
  const reduceQueue = new Queue(REDUCE_QUEUE, { connection: redis })
  const eventsRedis = quiet(redis.duplicate())
  const events = new QueueEvents(SHARD_QUEUE, { connection: eventsRedis })
  const flows = new FlowProducer({ connection: redis })
  try {
    await events.waitUntilReady()
    const progress = trackProgress(plan, events, o.onProgress)
    const reused = await submit(plan, { ...o, specs }, { redis, shardQueue, reduceQueue, flows, samples })
    progress.reused(reused)
    const value = await waitForRun(plan, { redis, shardQueue, reduceQueue, signal: o.signal, connection: o.connection as Connection })
    return {
      runId: plan.runId,
      results: Object.fromEntries(Object.entries(value.results).map(([m, rs]) => [m, rs.map((r) => fromJSON<MetricResult>(r))])),
      shards: plan.shards.length,
      reused,
      reduceMs: value.reduceMs,
      duplicates: value.duplicates,
    }
  } finally {
    await Promise.allSettled([events.close(), flows.close(), shardQueue.close(), reduceQueue.close()])
    eventsRedis.disconnect()
    redis.disconnect()
  }
}

interface Queues {
  redis: Redis
  shardQueue: Queue
  reduceQueue: Queue
}

/** Adds the run's flow; returns how many shards an earlier submission had finished. */
async function submit(
  plan: RunPlan,
  o: { attempts: number; backoffMs: number; methods: string[]; specs: MetricSpec[] },
  q: Queues & { flows: FlowProducer; samples: number },
): Promise<number> {
  await q.redis.del(cancelKey(plan.runId))
  const parent = await Job.fromId(q.reduceQueue, plan.reduceId)
  const state = parent ? await parent.getState() : 'unknown'
  if (state === 'completed') return plan.shards.length
  if (parent && state !== 'failed') return countFinished(plan, q) // running: wait for it
  // A failed run: drop its reduce job and failed shards, keep the finished ones; the new flow adopts them.
  if (parent) await parent.remove({ removeChildren: false })
  for (const s of plan.shards) {
    const job = await Job.fromId(q.shardQueue, s.jobId)
    if (job && (await job.getState()) !== 'completed') await job.remove()
  }
  const reused = await countFinished(plan, q)
  const data: ReduceJob = { runId: plan.runId, methods: o.methods, specs: o.specs, samples: q.samples }
  await q.flows.add({
    name: 'reduce',
    queueName: REDUCE_QUEUE,
    data,
    opts: { jobId: plan.reduceId, attempts: o.attempts, backoff: { type: 'exponential', delay: o.backoffMs } },
    children: plan.shards.map(({ jobId, ...shard }) => ({
      name: 'shard',
      queueName: SHARD_QUEUE,
      data: shard,
      opts: { jobId, attempts: o.attempts, backoff: { type: 'exponential', delay: o.backoffMs }, failParentOnFailure: true },
    })),
  })
  return reused
}

async function countFinished(plan: RunPlan, q: Queues): Promise<number> {
  let n = 0
  for (const s of plan.shards) if ((await q.shardQueue.getJobState(s.jobId)) === 'completed') n++
  return n
}

function trackProgress(plan: RunPlan, events: QueueEvents, onProgress?: (p: DistributedProgress) => void) {
  const prefix = `run-${plan.runId}-`
  const fractions = new Map<string, number>()
  let reused = 0
  const report = () => {
    let done = 0
    let sum = 0
    for (const f of fractions.values()) {
      sum += f
      if (f === 1) done++
    }
    onProgress?.({
      runId: plan.runId,
      shards: plan.shards.length,
      done: Math.max(done, reused),
      fraction: Math.max(sum, reused) / plan.shards.length,
    })
  }
  if (onProgress) {
    events.on('progress', ({ jobId, data }) => {
      const p = data as { rows?: number; totalRows?: number }
      if (!jobId.startsWith(prefix) || !p?.totalRows) return
      fractions.set(jobId, Math.min(fractions.get(jobId) === 1 ? 1 : (p.rows ?? 0) / p.totalRows, 1))
      report()
    })
    events.on('completed', ({ jobId }) => {
      if (!jobId.startsWith(prefix)) return
      fractions.set(jobId, 1)
      report()
    })
  }
  return {
    reused(n: number) {
      reused = n
      if (n > 0) report()
    },
  }
}

/** Polls the reduce job until it completes, fails or disappears (Redis lost it), or the signal fires. */
async function waitForRun(plan: RunPlan, q: Queues & { signal?: AbortSignal; connection: Connection }): Promise<ReduceValue> {
  for (;;) {
    if (q.signal?.aborted) {
      await cancelRun({ connection: q.connection, runId: plan.runId })
      throw new XaiEvalError('ABORTED', 'signal', `run ${plan.runId} was cancelled; finished shards are kept for a resubmission`)
    }
    // The state first, then the job: a job read first may complete in between, without its value.
    const state = await reachable(q.reduceQueue.getJobState(plan.reduceId), plan)
    const parent = state === 'completed' || state === 'failed' ? await Job.fromId(q.reduceQueue, plan.reduceId) : undefined
    if (state === 'completed' && parent) return parent.returnvalue as ReduceValue
    if (state === 'failed' && parent) throw await failure(plan, q, parent)
    if (state === 'unknown') {
      const left = await countExisting(plan, q)
      throw new XaiEvalError(
        'QUEUE',
        'connection',
        `Redis lost run ${plan.runId}: its reduce job is gone and ${plan.shards.length - left} of ${plan.shards.length} shard jobs with it ` +
          '(Redis restarted without persistence, flushed, or evicted keys). Resubmit the run; shards still in Redis are reused.',
      )
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/** Redis unreachable this long ends the wait (the run's jobs stay in Redis for a resubmission). */
const UNREACHABLE_MS = 120_000

async function reachable<T>(request: Promise<T>, plan: RunPlan): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new XaiEvalError(
            'QUEUE',
            'connection',
            `Redis did not answer for ${UNREACHABLE_MS / 1000} s while waiting for run ${plan.runId}; ` +
              'its jobs stay in Redis if it comes back: resubmit the run to wait again, finished shards are reused',
          ),
        ),
      UNREACHABLE_MS,
    )
  })
  try {
    return await Promise.race([request, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function countExisting(plan: RunPlan, q: Queues): Promise<number> {
  let n = 0
  for (const s of plan.shards) if ((await q.shardQueue.getJobState(s.jobId)) !== 'unknown') n++
  return n
}

/** The error of a failed run: which shards failed, on which samples, and why. */
async function failure(plan: RunPlan, q: Queues, parent: Job): Promise<XaiEvalError> {
  if (await q.redis.exists(cancelKey(plan.runId))) {
    return new XaiEvalError('ABORTED', 'signal', `run ${plan.runId} was cancelled; finished shards are kept for a resubmission`)
  }
  const failed: string[] = []
  let finished = 0
  for (const s of plan.shards) {
    const state = await q.shardQueue.getJobState(s.jobId)
    const job = state === 'failed' ? await Job.fromId(q.shardQueue, s.jobId) : undefined
    if (state === 'completed') finished++
    if (job) failed.push(`shard ${describeShard(s)} (job ${s.jobId}) after ${job.attemptsMade} attempt(s): ${job.failedReason}`)
  }
  const why = failed.length > 0 ? failed.join('; ') : `the reduce failed: ${parent.failedReason}`
  return new XaiEvalError(
    'QUEUE',
    'shards',
    `run ${plan.runId} failed: ${why}. ${finished} of ${plan.shards.length} shards finished and are kept: resubmitting the run reuses them`,
  )
}

/** Cancels a run: queued shards fail at once, running ones are aborted on their workers. */
export async function cancelRun(o: { connection: Connection; runId: string }): Promise<void> {
  if (typeof o?.runId !== 'string' || !/^[0-9a-f]{24}$/.test(o.runId)) {
    throw new XaiEvalError('INVALID_OPTION', 'runId', 'expected a run id (24 hex digits)')
  }
  const redis = connect(o.connection)
  try {
    await redis.set(cancelKey(o.runId), '1', 'EX', 7 * 24 * 3600)
    await redis.publish(CANCEL_CHANNEL, o.runId)
  } finally {
    redis.disconnect()
  }
}
