// A shard worker: takes shard jobs from Redis, loads the model and the data by reference (checking
// their content hashes against the run's), runs the metric's `map` on the job's sample range and
// returns the shard; and takes reduce jobs, which merge a run's shards with the metric's exact
// `reduce`. One process per machine (or per GPU); `concurrency` shard jobs at a time share one model.
import { hostname } from 'node:os'

import { type Job, UnrecoverableError, Worker } from 'bullmq'

import type { Dataset } from '../data.js'
import { XaiEvalError } from '../errors.js'
import { createMetric } from '../metrics/protocol.js'
import { OnnxModel, type OnnxModelOptions } from '../models/onnx-model.js'
import { parseOptions, z } from '../options.js'
import '../registry.js'
import { canonical } from '../serial.js'
import { type Connection, connect, quiet } from './connection.js'
import {
  CANCEL_CHANNEL,
  cancelKey,
  describeShard,
  REDUCE_QUEUE,
  type ReduceJob,
  reduceShards,
  SHARD_QUEUE,
  type ShardJob,
  type ShardValue,
} from './plan.js'
import { hashFile, type LoadedData, loadReference } from './reference.js'

export interface ShardWorkerOptions {
  connection: Connection
  /** Shard jobs run at once (default 1); they share one model. */
  concurrency?: number
  /** ONNX Runtime execution providers, in order of preference (default cpu). */
  providers?: OnnxModelOptions['executionProviders']
  /** Rows per forward call (default `'auto'`). */
  maxBatchSize?: number | 'auto'
  /** BullMQ lock of a running job, ms (default 30 000): a worker silent this long is taken for dead. */
  lockDuration?: number
  /** How often stalled jobs are looked for, ms (default 30 000). */
  stalledInterval?: number
  /** Name in logs and errors (default host-pid). */
  name?: string
  /** Log lines (default none). */
  log?: (line: string) => void
}

const workerOptions = z.strictObject({
  connection: z.union([z.string(), z.looseObject({})]),
  concurrency: z.int().min(1).max(1024).default(1),
  providers: z.array(z.unknown()).optional(),
  maxBatchSize: z.union([z.int().min(1), z.literal('auto')]).default('auto'),
  lockDuration: z.int().min(100).default(30_000),
  stalledInterval: z.int().min(100).default(30_000),
  name: z.string().default(`${hostname()}-${process.pid}`),
  log: z.custom<(line: string) => void>((v) => typeof v === 'function', 'expected a function').optional(),
})

/** A running worker; `close` lets the running jobs finish (or, with `force`, abandons them). */
export interface ShardWorker {
  readonly name: string
  close(force?: boolean): Promise<void>
}

/** Data sets a worker keeps loaded (the oldest is dropped first). */
const KEEP_DATASETS = 2

/** Errors of the input (or a refusal): retrying cannot help, so the shard fails at once. */
const PERMANENT = new Set(['SHAPE_MISMATCH', 'INVALID_OPTION', 'NON_FINITE', 'EMPTY_INPUT', 'MODEL_LOAD', 'ABORTED'])

export async function startWorker(options: ShardWorkerOptions): Promise<ShardWorker> {
  const o = parseOptions(workerOptions, options)
  const log = o.log ?? (() => {})
  const redis = connect(o.connection as Connection)
  const subscriber = quiet(redis.duplicate())
  const models = new Map<string, Promise<OnnxModel>>()
  const datasets = new Map<string, Promise<LoadedData>>()
  /** Running shard jobs → their run, so a cancellation reaches them. */
  const active = new Map<string, string>()

  const refuse = (d: ShardJob, why: string) => new UnrecoverableError(`worker ${o.name} refuses ${describeShard(d)}: ${why}`)

  async function modelFor(d: ShardJob): Promise<OnnxModel> {
    const hash = await hashFile(d.model.path)
    if (hash !== d.model.hash) throw refuse(d, `model ${d.model.path} has hash ${hash}, the run expects ${d.model.hash}`)
    const key = `${d.model.path}\u0000${hash}`
    let model = models.get(key)
    if (!model) {
      model = OnnxModel.load(d.model.path, {
        maxBatchSize: o.maxBatchSize,
        executionProviders: o.providers as OnnxModelOptions['executionProviders'],
      })
      models.set(key, model)
      model.catch(() => models.delete(key))
    }
    return model
  }

  async function dataFor(d: ShardJob): Promise<LoadedData> {
    const key = canonical(d.data.reference)
    let data = datasets.get(key)
    if (!data) {
      data = loadReference(d.data.reference)
      // Keep the data sets of the last few runs only: a long-running worker sees many.
      if (datasets.size >= KEEP_DATASETS) datasets.delete(datasets.keys().next().value!)
      datasets.set(key, data)
      data.catch(() => datasets.delete(key))
    }
    const loaded = await data
    if (loaded.hash !== d.data.hash) {
      // The files may have changed since they were loaded: read them once more before refusing.
      datasets.delete(key)
      const fresh = await loadReference(d.data.reference)
      if (fresh.hash !== d.data.hash) throw refuse(d, `data ${key} has hash ${fresh.hash}, the run expects ${d.data.hash}`)
      datasets.set(key, Promise.resolve(fresh))
      return fresh
    }
    return loaded
  }

  async function processShard(job: Job<ShardJob>, _token?: string, signal?: AbortSignal): Promise<ShardValue> {
    const d = job.data
    if (await redis.exists(cancelKey(d.runId))) throw new UnrecoverableError(`run ${d.runId} was cancelled`)
    active.set(job.id!, d.runId)
    const started = performance.now()
    try {
      const [model, data] = await Promise.all([modelFor(d), dataFor(d)])
      const att = data.attributions[d.method]
      if (!att) throw refuse(d, `the data has no attributions '${d.method}' (it has ${Object.keys(data.attributions).join(', ')})`)
      const [n, c, h, w] = data.shape
      const end = d.firstSample + d.samples
      if (end > n) throw refuse(d, `the data holds ${n} samples`)
      const row = c * h * w
      const aRow = att.aShape.slice(1).reduce((p, v) => p * v, 1)
      const slice: Dataset = {
        x: data.x.subarray(d.firstSample * row, end * row),
        shape: [d.samples, c, h, w],
        y: data.y.subarray(d.firstSample, end),
        a: att.a.subarray(d.firstSample * aRow, end * aRow),
        aShape: [d.samples, ...att.aShape.slice(1)],
      }
      let last = 0
      const shard = await createMetric(d.spec).map(model, slice, {
        firstSample: d.firstSample,
        signal,
        onProgress: ({ rows, totalRows }) => {
          const now = performance.now()
          if (now - last < 250) return
          last = now
          job.updateProgress({ rows, totalRows }).catch(() => {})
        },
      })
      log(`${o.name}: ${describeShard(d)} in ${(performance.now() - started).toFixed(0)} ms`)
      return { method: d.method, metric: d.metric, shard: JSON.stringify(shard) }
    } catch (e) {
      if (e instanceof UnrecoverableError) throw e
      if (e instanceof XaiEvalError && PERMANENT.has(e.code)) {
        throw new UnrecoverableError(`${describeShard(d)} failed: ${e.message} (${e.code})`)
      }
      throw new Error(`${describeShard(d)} failed on ${o.name}: ${(e as Error).message}`, { cause: e })
    } finally {
      active.delete(job.id!)
    }
  }

  const common = { connection: redis, lockDuration: o.lockDuration, stalledInterval: o.stalledInterval, autorun: true }
  const shards = new Worker<ShardJob, ShardValue>(SHARD_QUEUE, processShard, { ...common, concurrency: o.concurrency, name: o.name })
  const reduces = new Worker<ReduceJob>(REDUCE_QUEUE, async (job) => reduceShards(job.data, Object.values(await job.getChildrenValues())), {
    ...common,
    concurrency: 1,
    name: o.name,
  })
  for (const w of [shards, reduces]) {
    // Lost connections and jobs Redis forgot are reported here; the worker keeps going.
    w.on('error', (e) => log(`${o.name}: ${e.message}`))
    w.on('failed', (job, e) => log(`${o.name}: job ${job?.id} failed: ${e.message}`))
  }
  await subscriber.subscribe(CANCEL_CHANNEL)
  subscriber.on('message', (_channel, runId: string) => {
    for (const [jobId, run] of active) if (run === runId) shards.cancelJob(jobId, 'cancelled')
  })
  await Promise.all([shards.waitUntilReady(), reduces.waitUntilReady()])
  log(`${o.name}: waiting for shard jobs (concurrency ${o.concurrency})`)

  return {
    name: o.name,
    async close(force = false) {
      await Promise.all([shards.close(force), reduces.close(force)])
      subscriber.disconnect()
      redis.disconnect()
      for (const m of models.values()) await (await m.catch(() => undefined))?.close()
    },
  }
}
