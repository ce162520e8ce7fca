// Distributed runs on a real redis-server (Debian package; `.ci/run` installs it): each test starts
// its own server on a free loopback port and its own workers, and stops them. The numbers must be
// bit-identical to a single-process run whatever the shard size, worker count and faults.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'
import { Job, Queue, QueueEvents } from 'bullmq'
import {
  type Dataset,
  type DemoData,
  Deletion,
  evaluateDistributed,
  hashFile,
  hashReference,
  loadDemo,
  type MetricResult,
  OnnxModel,
  Soundness,
  startWorker,
  XaiEvalError,
} from 'xai-eval'

import { type RedisServer, startRedis } from './redis.js'

const cli = join(import.meta.dirname, '..', 'dist', 'cli.js')
let demo: DemoData
test.before(async () => {
  demo = await loadDemo()
})
const METHODS = ['gradient', 'random']

/** The single-process results of `metrics` on the demo set (|a|, tiled `repeat` times). */
async function local(metrics: { evaluate(m: OnnxModel, d: Dataset): Promise<MetricResult> }[], repeat = 1) {
  const model = await OnnxModel.load(demo.modelPath, { maxBatchSize: 32 })
  try {
    const [n, c, h, w] = demo.shape
    const tile = (v: Float32Array | Int32Array) => {
      const out = new (v.constructor as Float32ArrayConstructor)(v.length * repeat)
      for (let i = 0; i < repeat; i++) out.set(v, i * v.length)
      return out
    }
    const out: Record<string, MetricResult[]> = {}
    for (const method of METHODS) {
      const data: Dataset = {
        x: tile(demo.x) as Float32Array,
        shape: [n * repeat, c, h, w],
        y: tile(demo.y),
        a: (tile(demo.attributions[method]!) as Float32Array).map(Math.abs),
        aShape: [n * repeat, 1, h, w],
      }
      out[method] = []
      for (const m of metrics) out[method].push(await m.evaluate(model, data))
    }
    return out
  } finally {
    await model.close()
  }
}

/**
 * Results compared field by field as JSON: per-sample scores, curves, mean, std, parameters and
 * rows sent, bit for bit. Only `batches` (model calls) may differ: each shard fills its own last batch.
 */
function same(t: ExecutionContext, got: Record<string, MetricResult[]>, want: Record<string, MetricResult[]>, label: string) {
  for (const method of METHODS) {
    got[method]!.forEach((r, i) => {
      const w = want[method]![i]!
      t.true(Buffer.from(r.scores.buffer).equals(Buffer.from(w.scores.buffer)), `${label}: ${method} ${r.metric} scores`)
      const differ = Object.keys(w).filter((k) => k !== 'batches' && JSON.stringify((r as never)[k]) !== JSON.stringify((w as never)[k]))
      t.deepEqual(differ, [], `${label}: ${method} ${r.metric}`)
    })
  }
}

interface WorkerProcess {
  proc: ChildProcess
  /** Shards this worker finished, from its log. */
  shards: string[]
  log: string
  stop(signal?: NodeJS.Signals): Promise<void>
}

/** `xai-eval worker` as a child process. */
function spawnWorker(url: string, extra: string[] = []): Promise<WorkerProcess> {
  const proc = spawn(process.execPath, [cli, 'worker', '--redis', url, '--batch', '32', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] })
  const w: WorkerProcess = {
    proc,
    shards: [],
    log: '',
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill(signal)
      await exited
    },
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start: ${w.log}`)), 30_000)
    proc.stderr!.on('data', (b: Buffer) => {
      w.log += b.toString()
      for (const m of b.toString().matchAll(/: (.*) in \d+ ms/g)) w.shards.push(m[1]!)
      if (w.log.includes('waiting for shard jobs')) {
        clearTimeout(timer)
        resolve(w)
      }
    })
    proc.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${w.log}`)))
  })
}

/** Runs `f` with a fresh redis-server and stops it (and every worker `f` registered) afterwards. */
async function withRedis<T>(f: (redis: RedisServer, workers: WorkerProcess[]) => Promise<T>, opts?: { appendonly?: boolean }): Promise<T> {
  const redis = await startRedis(opts)
  const workers: WorkerProcess[] = []
  try {
    return await f(redis, workers)
  } finally {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')))
    await redis.stop()
  }
}

const run = (url: string, o: { shardSize: number; metrics: unknown[]; repeat?: number; signal?: AbortSignal; attempts?: number }) =>
  evaluateDistributed({
    connection: url,
    model: { path: demo.modelPath },
    data: { reference: { demo: true, magnitude: true, ...(o.repeat ? { repeat: o.repeat } : {}) } },
    metrics: o.metrics as never,
    methods: METHODS,
    shardSize: o.shardSize,
    signal: o.signal,
    attempts: o.attempts,
    backoffMs: 100,
  })

const metrics = () => [new Deletion(), new Soundness()]
let reference: Promise<Record<string, MetricResult[]>> | undefined

for (const workerCount of [1, 3]) {
  test.serial(`${workerCount} worker(s): 1, 3 and 7 shards give the single-process numbers bit for bit`, async (t) => {
    reference ??= local(metrics())
    const want = await reference
    await withRedis(async (redis, workers) => {
      workers.push(...(await Promise.all(Array.from({ length: workerCount }, () => spawnWorker(redis.url)))))
      for (const [shards, shardSize] of [
        [1, 64],
        [3, 22],
        [7, 10],
      ] as const) {
        const before = workers.reduce((s, w) => s + w.shards.length, 0)
        const got = await run(redis.url, { shardSize, metrics: metrics() })
        t.is(got.shards, shards * METHODS.length * 2)
        t.is(got.reused, 0)
        t.is(got.duplicates, 0)
        same(t, got.results, want, `${workerCount} workers, ${shards} shards`)
        // Every shard computed exactly once, across all workers.
        t.is(workers.reduce((s, w) => s + w.shards.length, 0) - before, got.shards)
        // The same run again: every shard (and the reduce) reused, nothing recomputed.
        const again = await run(redis.url, { shardSize, metrics: metrics() })
        t.is(again.reused, again.shards)
        same(t, again.results, want, `${workerCount} workers, ${shards} shards, resubmitted`)
        t.is(workers.reduce((s, w) => s + w.shards.length, 0) - before, got.shards)
      }
    })
  })
}

const loopback = (redis: RedisServer) => ({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null })

/** Resolves with the id of the first shard job that becomes active. */
async function firstActive(redis: RedisServer): Promise<{ jobId: string; close: () => Promise<void> }> {
  const events = new QueueEvents('xai-eval-shards', { connection: loopback(redis) })
  await events.waitUntilReady()
  const jobId = await new Promise<string>((resolve) => events.once('active', ({ jobId }) => resolve(jobId)))
  return { jobId, close: () => events.close() }
}

test.serial('a worker killed with SIGKILL mid-shard: another retries the shard, same numbers', async (t) => {
  const want = await local([new Soundness()], 2)
  await withRedis(async (redis, workers) => {
    const fast = ['--lock-duration', '2000', '--stalled-interval', '500']
    const a = await spawnWorker(redis.url, fast)
    workers.push(a)
    const active = firstActive(redis)
    const result = run(redis.url, { shardSize: 64, metrics: [new Soundness()], repeat: 2 })
    const { jobId, close } = await active
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.is(a.shards.length, 0, 'killed before it finished a shard')
    await a.stop('SIGKILL')
    await close()
    const b = await spawnWorker(redis.url, fast)
    workers.push(b)
    const got = await result
    same(t, got.results, want, 'after SIGKILL')
    t.is(b.shards.length, got.shards, 'the second worker computed every shard, the killed one included')
    const queue = new Queue('xai-eval-shards', { connection: loopback(redis) })
    const job = await Job.fromId(queue, jobId)
    t.true((job?.stalledCounter ?? 0) >= 1, 'the killed shard was detected as stalled')
    await queue.close()
  })
})

test.serial('Redis restarted without persistence mid-run: a clear error naming what was lost', async (t) => {
  await withRedis(async (redis, workers) => {
    workers.push(await spawnWorker(redis.url))
    const active = firstActive(redis)
    const result = run(redis.url, { shardSize: 32, metrics: [new Soundness()], repeat: 4 })
    result.catch(() => {})
    await (await active).close()
    await redis.stop()
    await redis.start()
    const e = await t.throwsAsync(result, { instanceOf: XaiEvalError })
    t.is(e?.code, 'QUEUE')
    t.regex(e!.message, /Redis lost run [0-9a-f]{24}: its reduce job is gone and \d+ of 16 shard jobs with it/)
  })
})

test.serial('Redis restarted with persistence (appendonly) mid-run: the run resumes, same numbers', async (t) => {
  const want = await local([new Soundness()], 2)
  await withRedis(
    async (redis, workers) => {
      workers.push(await spawnWorker(redis.url))
      const active = firstActive(redis)
      const result = run(redis.url, { shardSize: 32, metrics: [new Soundness()], repeat: 2 })
      result.catch(() => {})
      await (await active).close()
      await redis.stop()
      await redis.start()
      same(t, (await result).results, want, 'after a restart')
    },
    { appendonly: true },
  )
})

/** A minimal .npy (version 1.0) writer. */
function npy(descr: string, shape: number[], data: ArrayBufferView): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  const total = 10 + header.length + 1
  header += `${' '.repeat((64 - (total % 64)) % 64)}\n`
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head.writeUInt8(1, 6)
  head.writeUInt16LE(header.length, 8)
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
}

test.serial('a shard that fails for good: the error names the shard and its samples; finished shards are reused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xai-eval-dist-'))
  const [n, c, h, w] = [20, ...demo.shape.slice(1)] as [number, number, number, number]
  const x = demo.x.slice(0, n * c * h * w)
  x[9 * c * h * w + 5] = Number.NaN // sample 9: in the shard of samples 8…11
  writeFileSync(join(dir, 'x.npy'), npy('<f4', [n, c, h, w], x))
  writeFileSync(join(dir, 'y.npy'), npy('<i4', [n], demo.y.slice(0, n)))
  writeFileSync(join(dir, 'a.npy'), npy('<f4', [n, 1, h, w], demo.attributions.gradient!.slice(0, n * h * w)))
  const reference = { x: join(dir, 'x.npy'), y: join(dir, 'y.npy'), attributions: { gradient: join(dir, 'a.npy') } }
  await withRedis(async (redis, workers) => {
    workers.push(await spawnWorker(redis.url))
    const submit = () =>
      evaluateDistributed({
        connection: redis.url,
        model: { path: demo.modelPath },
        data: { reference },
        metrics: [new Deletion()],
        methods: ['gradient'],
        shardSize: 4,
        backoffMs: 100,
      })
    const e = await t.throwsAsync(submit(), { instanceOf: XaiEvalError })
    t.is(e?.code, 'QUEUE')
    t.regex(
      e!.message,
      /shard 'deletion' on 'gradient', samples 8…11 \(job run-[0-9a-f]{24}-m0-k0-s8-12\) after 1 attempt\(s\): .*NON_FINITE/,
    )
    t.regex(e!.message, /of 5 shards finished and are kept/)
    // Once the other four are done, a resubmission recomputes only the failed shard.
    const queue = new Queue('xai-eval-shards', { connection: loopback(redis) })
    const runId = /run ([0-9a-f]{24})/.exec(e!.message)![1]!
    const others = [0, 4, 12, 16].map((s) => `run-${runId}-m0-k0-s${s}-${s + 4}`)
    const deadline = Date.now() + 30_000
    while (!(await Promise.all(others.map((id) => queue.getJobState(id)))).every((s) => s === 'completed')) {
      if (Date.now() > deadline) throw new Error('the other shards did not finish')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const finished = await Promise.all(others.map(async (id) => (await Job.fromId(queue, id))!.finishedOn))
    const computed = workers[0]!.shards.length
    const again = await t.throwsAsync(submit(), { instanceOf: XaiEvalError })
    t.regex(again!.message, /samples 8…11 .*4 of 5 shards finished and are kept/)
    t.deepEqual(await Promise.all(others.map(async (id) => (await Job.fromId(queue, id))!.finishedOn)), finished)
    t.is(workers[0]!.shards.length, computed, 'no finished shard computed again')
    await queue.close()
  })
})

test.serial("a worker refuses a job whose model or data hash is not the run's", async (t) => {
  await withRedis(async (redis) => {
    const worker = await startWorker({ connection: redis.url, maxBatchSize: 32 })
    try {
      const base = {
        connection: redis.url,
        metrics: [new Deletion()],
        methods: ['gradient'],
        shardSize: 64,
      }
      const modelHash = await hashFile(demo.modelPath)
      const dataHash = await hashReference({ demo: true })
      const wrongData = await t.throwsAsync(
        evaluateDistributed({
          ...base,
          model: { path: demo.modelPath },
          data: { reference: { demo: true }, hash: 'f'.repeat(64), samples: 64 },
        }),
      )
      t.regex(
        wrongData!.message,
        new RegExp(`worker .* refuses 'deletion' on 'gradient', samples 0…63: data .* has hash ${dataHash}, the run expects f{64}`),
      )
      const wrongModel = await t.throwsAsync(
        evaluateDistributed({
          ...base,
          model: { path: demo.modelPath, hash: '0'.repeat(64) },
          data: { reference: { demo: true }, hash: dataHash, samples: 64 },
        }),
      )
      t.regex(wrongModel!.message, new RegExp(`refuses .*: model .* has hash ${modelHash}, the run expects 0{64}`))
    } finally {
      await worker.close()
    }
  })
})

test.serial('cancelling a run aborts its running shard on the worker', async (t) => {
  await withRedis(async (redis, workers) => {
    const w = await spawnWorker(redis.url)
    workers.push(w)
    const abort = new AbortController()
    const active = firstActive(redis)
    const result = run(redis.url, { shardSize: 256, metrics: [new Soundness()], repeat: 4, signal: abort.signal })
    result.catch(() => {})
    await (await active).close()
    abort.abort()
    const e = await t.throwsAsync(result, { instanceOf: XaiEvalError })
    t.is(e?.code, 'ABORTED')
    const deadline = Date.now() + 20_000
    while (!/failed: .*(cancelled|aborted)/.test(w.log) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    t.regex(w.log, /failed: .*(cancelled|aborted)/)
    t.is(w.shards.length, 0, 'the running shard did not finish')
  })
})

test.serial('xai-eval evaluate --demo --distributed gives the API numbers; cancel checks its run id', async (t) => {
  await withRedis(async (redis, workers) => {
    workers.push(await spawnWorker(redis.url))
    const exec = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
        let stdout = ''
        let stderr = ''
        p.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
        p.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
        p.on('exit', (code) => resolve({ code, stdout, stderr }))
      })
    const out = await exec([
      'evaluate',
      '--demo',
      '--distributed',
      redis.url,
      '--metrics',
      'deletion',
      '--methods',
      'gradient',
      '--shard-size',
      '20',
      '--json',
    ])
    t.is(out.code, 0, out.stderr)
    const printed = JSON.parse(out.stdout)
    t.is(printed.runs[0].shards, 4)
    const api = await evaluateDistributed({
      connection: redis.url,
      model: { path: demo.modelPath },
      data: { reference: { demo: true, magnitude: false } },
      metrics: [new Deletion()],
      methods: ['gradient'],
      shardSize: 20,
    })
    t.is(api.reused, 4, 'the API submission is the same run')
    t.deepEqual(printed.methods.gradient.deletion.scores, Array.from(api.results.gradient![0]!.scores))
    const bad = await exec(['cancel', 'not-a-run', '--redis', redis.url])
    t.is(bad.code, 1)
    t.regex(bad.stderr, /runId: expected a run id \(24 hex digits\) \(INVALID_OPTION\)/)
    const ok = await exec(['cancel', api.runId, '--redis', redis.url])
    t.is(ok.code, 0, ok.stderr)
  })
})
