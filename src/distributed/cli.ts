// The command line of distributed runs, kept apart from `cli.ts` (which calls `distributedCli`
// first): `worker`, `cancel RUN`, and `evaluate … --distributed redis://…`.
import { basename, extname } from 'node:path'
import { parseArgs } from 'node:util'

import { XaiEvalError } from '../errors.js'
import { createMetric, type Metric, type MetricResult } from '../metrics/protocol.js'
import type { ExecutionProvider } from '../models/onnx-model.js'
import '../registry.js'
import { cancelRun, type DistributedResult, evaluateDistributed } from './evaluate.js'
import type { DataReference } from './reference.js'
import { startWorker } from './worker.js'

export const DISTRIBUTED_USAGE = `  xai-eval worker --redis redis://HOST:PORT [--concurrency N] [--providers LIST] [--batch N|auto]
      Take shard jobs of distributed runs until stopped (SIGINT/SIGTERM: running shards finish first).
      --lock-duration MS and --stalled-interval MS: how soon a dead worker's shard is retried (default 30000).
  xai-eval evaluate --model M.onnx --x X.npy --y Y.npy --a A.npy --distributed redis://HOST:PORT [--shard-size N]
      The same evaluation, sharded over the workers (every worker must see the same files at the same paths).
      --a may be given as NAME=PATH,NAME=PATH to evaluate several methods; --demo evaluates the demo set instead.
  xai-eval cancel RUN --redis redis://HOST:PORT
      Cancel a distributed run: running shards are aborted, finished ones kept for a resubmission.`

/** Soundness and completeness measure attribution mass: they see |a| (as in \`xai-eval evaluate\`). */
const MAGNITUDE = new Set(['soundness', 'completeness'])

const int = (v: string | undefined, arg: string, fallback: number): number => {
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new XaiEvalError('INVALID_OPTION', arg, `--${arg} expects a positive integer, got '${v}'`)
  return n
}

/** Runs a distributed command; false when `argv` is not one (the regular CLI takes it). */
export async function distributedCli(argv: string[]): Promise<boolean> {
  const command = argv[0]
  if (command === 'worker') await worker(argv.slice(1))
  else if (command === 'cancel') await cancel(argv.slice(1))
  else if (command === 'evaluate' && argv.some((a) => a === '--distributed' || a.startsWith('--distributed=')))
    await evaluate(argv.slice(1))
  else return false
  return true
}

async function worker(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      redis: { type: 'string' },
      concurrency: { type: 'string' },
      providers: { type: 'string' },
      batch: { type: 'string', default: 'auto' },
      'lock-duration': { type: 'string' },
      'stalled-interval': { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
  })
  if (!values.redis) throw new XaiEvalError('INVALID_OPTION', 'redis', '--redis redis://HOST:PORT is required')
  const w = await startWorker({
    connection: values.redis,
    concurrency: int(values.concurrency, 'concurrency', 1),
    providers: values.providers?.split(',') as ExecutionProvider[] | undefined,
    maxBatchSize: values.batch === 'auto' ? 'auto' : int(values.batch, 'batch', 1),
    lockDuration: int(values['lock-duration'], 'lock-duration', 30_000),
    stalledInterval: int(values['stalled-interval'], 'stalled-interval', 30_000),
    log: values.quiet ? undefined : (line) => console.error(line),
  })
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  await w.close()
}

async function cancel(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { redis: { type: 'string' } } })
  if (!values.redis) throw new XaiEvalError('INVALID_OPTION', 'redis', '--redis redis://HOST:PORT is required')
  if (positionals.length !== 1) throw new XaiEvalError('INVALID_OPTION', 'run', 'expected one run id: xai-eval cancel RUN --redis …')
  await cancelRun({ connection: values.redis, runId: positionals[0]! })
  console.log(`cancelled run ${positionals[0]}`)
}

async function evaluate(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      distributed: { type: 'string' },
      'shard-size': { type: 'string' },
      model: { type: 'string' },
      x: { type: 'string' },
      y: { type: 'string' },
      a: { type: 'string' },
      demo: { type: 'boolean', default: false },
      methods: { type: 'string' },
      metrics: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  })
  const ids = (values.metrics ?? 'srg,deletion,insertion,soundness').split(',').map((s) => s.trim())
  const metrics = ids.map((id) => createMetric({ id }))
  let reference: DataReference
  let model = values.model
  let methods: string[]
  if (values.demo) {
    const { loadDemo } = await import('../data.js')
    const demo = await loadDemo()
    model ??= demo.modelPath
    reference = { demo: true }
    methods = values.methods?.split(',') ?? Object.keys(demo.attributions)
  } else {
    for (const k of ['model', 'x', 'y', 'a'] as const) {
      if (!values[k]) throw new XaiEvalError('INVALID_OPTION', k, `--${k} is required`)
    }
    const attributions = Object.fromEntries(
      values.a!.split(',').map((part) => {
        const eq = part.indexOf('=')
        return eq > 0 ? [part.slice(0, eq), part.slice(eq + 1)] : [basename(part, extname(part)), part]
      }),
    )
    reference = { x: values.x!, y: values.y!, attributions }
    methods = Object.keys(attributions)
  }
  const abort = new AbortController()
  process.once('SIGINT', () => abort.abort())
  const groups = [false, true]
    .map((magnitude) => ({ magnitude, metrics: metrics.filter((m) => MAGNITUDE.has(m.meta.id) === magnitude) }))
    .filter((g) => g.metrics.length > 0)
  const shardSize = int(values['shard-size'], 'shard-size', 64)
  const runs: { metrics: Metric<object, MetricResult>[]; run: DistributedResult }[] = []
  for (const g of groups) {
    const run = await evaluateDistributed({
      connection: values.distributed!,
      model: { path: model! },
      data: { reference: { ...reference, magnitude: g.magnitude } },
      metrics: g.metrics,
      methods,
      shardSize,
      signal: abort.signal,
      onProgress: values.json
        ? undefined
        : (p) => process.stderr.write(`\rrun ${p.runId}: ${p.done}/${p.shards} shards, ${(100 * p.fraction).toFixed(0)} %  `),
    })
    if (!values.json) process.stderr.write('\n')
    runs.push({ metrics: g.metrics, run })
  }
  const table = methods.map((method) => ({
    method,
    metrics: Object.fromEntries(runs.flatMap(({ metrics: ms, run }) => ms.map((m, i) => [m.meta.id, run.results[method]![i]!]))),
  }))
  if (values.json) {
    console.log(
      JSON.stringify({
        runs: runs.map(({ run }) => ({ runId: run.runId, shards: run.shards, reused: run.reused, reduceMs: run.reduceMs })),
        methods: Object.fromEntries(
          table.map((t) => [
            t.method,
            Object.fromEntries(
              Object.entries(t.metrics).map(([id, r]) => [
                id,
                { mean: r.mean, std: r.std, skipped: r.skipped, scores: Array.from(r.scores) },
              ]),
            ),
          ]),
        ),
      }),
    )
    return
  }
  for (const { run } of runs)
    console.log(`run ${run.runId}: ${run.shards} shards (${run.reused} reused), reduce ${run.reduceMs.toFixed(0)} ms`)
  for (const t of table) {
    console.log(
      `${t.method}: ${Object.entries(t.metrics)
        .map(([id, r]) => `${id} ${r.mean.toFixed(3)} ± ${r.std.toFixed(3)}`)
        .join(', ')}`,
    )
  }
}
