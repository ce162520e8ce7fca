#!/usr/bin/env node
// xai-eval's command line: `demo` compares the embedded attribution methods on every metric,
// `evaluate` scores a data set given as .npy files.
import { parseArgs } from 'node:util'

import { loadDemo, type Dataset } from './data.js'
import { DISTRIBUTED_USAGE, distributedCli } from './distributed/cli.js'
import { XaiEvalError } from './errors.js'
import { readNpy } from './io/npy.js'
import { Deletion, Insertion } from './metrics/deletion-insertion.js'
import { Completeness } from './metrics/completeness.js'
import { PixelFlipping } from './metrics/pixel-flipping.js'
import { Road } from './metrics/road.js'
import { Soundness } from './metrics/soundness.js'
import { SymmetricRelevanceGain } from './metrics/srg.js'
import { OnnxModel, type OnnxModelOptions } from './models/onnx-model.js'
import type { MetricResult } from './metrics/protocol.js'

interface Column {
  /** Name on the command line and in JSON. */
  name?: string
  /** Header; an arrow saying which way is better is added from the result. */
  column: string
  metric: { readonly higherIsBetter: boolean; evaluate(model: OnnxModel, data: Dataset): Promise<MetricResult> }
  /** Soundness and completeness measure attribution mass, which must be non-negative: they see |a|. */
  magnitude?: boolean
}

/** Every metric the CLI runs, by name. */
const METRICS: Record<string, (featuresInStep: number) => Column> = {
  srg: (featuresInStep) => ({ column: 'SRG', metric: new SymmetricRelevanceGain({ featuresInStep }) }),
  mif: (featuresInStep) => ({ column: 'MIF', metric: new PixelFlipping({ order: 'morf', featuresInStep }) }),
  lif: (featuresInStep) => ({ column: 'LIF', metric: new PixelFlipping({ order: 'lerf', featuresInStep }) }),
  deletion: () => ({ column: 'Deletion', metric: new Deletion() }),
  insertion: () => ({ column: 'Insertion', metric: new Insertion() }),
  road: () => ({ column: 'ROAD MoRF', metric: new Road({ order: 'morf' }) }),
  soundness: () => ({ column: 'Soundness', metric: new Soundness(), magnitude: true }),
  completeness: () => ({ column: 'Completeness', metric: new Completeness(), magnitude: true }),
}

function columns(names: string | undefined, featuresInStep: number): Column[] {
  const list = names === undefined ? Object.keys(METRICS) : names.split(',').map((s) => s.trim().toLowerCase())
  return list.map((name) => {
    const make = METRICS[name]
    if (!make) throw new XaiEvalError('INVALID_OPTION', 'metrics', `unknown metric '${name}'; one of ${Object.keys(METRICS).join(', ')}`)
    return { ...make(featuresInStep), name }
  })
}

const USAGE = `Usage:
  xai-eval demo [options]
      Evaluate the embedded demo model's attribution methods (gradient, gradient × input,
      integrated gradients, occlusion, random) with every metric and print a comparison table.
  xai-eval evaluate --model M.onnx --x X.npy --y Y.npy --a A.npy [--metrics srg,deletion,…] [options]
      Evaluate one data set: x [N, C, H, W] float, y [N] int, a [N, C|1, H, W] float (.npy files).

Options:
  --metrics LIST           ${Object.keys(METRICS).join(', ')} (default: all)
  --features-in-step N     for SRG, MIF and LIF (default 8)
  --batch N|auto           rows per forward call (default auto: measured)
  --workers N              ONNX Runtime sessions (default 2 on CPU)
  --providers LIST         execution providers in order of preference, e.g. cuda,cpu
  --json                   machine-readable output (per-sample scores included for evaluate)

Distributed runs (BullMQ over Redis):
${DISTRIBUTED_USAGE}`

/** Runs every column on `dataset` and times the whole. */
async function evaluateAll(model: OnnxModel, dataset: Dataset, cols: Column[]) {
  const magnitude = cols.some((c) => c.magnitude) ? { ...dataset, a: dataset.a.map(Math.abs) } : dataset
  const start = performance.now()
  const results: MetricResult[] = []
  for (const c of cols) results.push(await c.metric.evaluate(model, c.magnitude ? magnitude : dataset))
  return { results, ms: performance.now() - start }
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => [...r[i]!].length)))
  const line = (r: string[]) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  console.log(line(header))
  console.log(widths.map((wd) => '─'.repeat(wd)).join('  '))
  for (const r of rows) console.log(line(r))
}

const meanStd = (r: MetricResult) => `${r.mean.toFixed(3)} ± ${r.std.toFixed(3)}`

interface CommonArgs {
  featuresInStep: number
  batch: number | 'auto'
  workers?: number
  providers?: string[]
  json: boolean
  metrics?: string
}

function loadModel(path: string, args: CommonArgs): Promise<OnnxModel> {
  return OnnxModel.load(path, {
    maxBatchSize: args.batch,
    workers: args.workers,
    executionProviders: args.providers as OnnxModelOptions['executionProviders'],
  })
}

async function demo(args: CommonArgs): Promise<void> {
  const data = await loadDemo()
  const model = await loadModel(data.modelPath, args)
  try {
    const [n, c, h, w] = data.shape
    const cols = columns(args.metrics, args.featuresInStep)
    const table: { method: string; results: MetricResult[]; ms: number }[] = []
    for (const [method, a] of Object.entries(data.attributions)) {
      table.push({ method, ...(await evaluateAll(model, { x: data.x, shape: data.shape, y: data.y, a, aShape: [n, 1, h, w] }, cols)) })
    }
    if (args.json) {
      console.log(
        JSON.stringify(
          table.map((r) => ({
            method: r.method,
            ms: r.ms,
            metrics: Object.fromEntries(r.results.map((m, i) => [cols[i]!.name, { mean: m.mean, std: m.std, rows: m.forwardPasses }])),
          })),
          null,
          2,
        ),
      )
      return
    }
    console.log(`xai-eval demo: ${n} samples ${c}×${h}×${w}, ${data.classes.length} classes (${data.classes.join(', ')})`)
    console.log(
      `model ${model.provider}, batch ${model.maxBatchSize} × ${model.concurrency} workers, featuresInStep ${args.featuresInStep}; mean ± std over samples`,
    )
    console.log(
      'Soundness and Completeness on |a| (paper mode, accuracy indicator); ROAD: label probability averaged over 10–90 % removed\n',
    )
    printTable(
      ['method', ...cols.map((c) => `${c.column} ${c.metric.higherIsBetter ? '↑' : '↓'}`), 'rows', 'time'],
      table.map(({ method, results, ms }) => [
        method,
        ...results.map(meanStd),
        String(results.reduce((s, r) => s + r.forwardPasses, 0)),
        `${ms.toFixed(0)} ms`,
      ]),
    )
    console.log(`\n${model.stats.rows} model rows in ${model.stats.forwardPasses} forward calls.`)
  } finally {
    await model.close()
  }
}

async function evaluate(args: CommonArgs & { model?: string; x?: string; y?: string; a?: string }): Promise<void> {
  for (const k of ['model', 'x', 'y', 'a'] as const) {
    if (!args[k]) throw new XaiEvalError('INVALID_OPTION', k, `--${k} is required`)
  }
  const [x, y, a] = await Promise.all([readNpy(args.x!, 'x'), readNpy(args.y!, 'y'), readNpy(args.a!, 'a')])
  if (!(x.data instanceof Float32Array) || !(a.data instanceof Float32Array)) {
    throw new XaiEvalError('INVALID_OPTION', x.data instanceof Float32Array ? 'a' : 'x', 'expected a float array')
  }
  if (x.shape.length !== 4) throw new XaiEvalError('SHAPE_MISMATCH', 'x', `expected [N, C, H, W], got [${x.shape.join(', ')}]`)
  const dataset: Dataset = { x: x.data, shape: x.shape as [number, number, number, number], y: y.data, a: a.data, aShape: a.shape }
  const cols = columns(args.metrics, args.featuresInStep)
  const model = await loadModel(args.model!, args)
  try {
    const { results, ms } = await evaluateAll(model, dataset, cols)
    if (args.json) {
      console.log(
        JSON.stringify({
          provider: model.provider,
          ms,
          metrics: Object.fromEntries(
            results.map((r, i) => [
              cols[i]!.name,
              {
                mean: r.mean,
                std: r.std,
                skipped: r.skipped,
                forwardPasses: r.forwardPasses,
                params: r.params,
                scores: Array.from(r.scores),
              },
            ]),
          ),
        }),
      )
      return
    }
    console.log(
      `${x.shape[0]} samples ${x.shape.slice(1).join('×')}, model ${model.provider}, batch ${model.maxBatchSize} × ${model.concurrency} workers\n`,
    )
    printTable(
      ['metric', 'mean ± std', 'rows'],
      results.map((r, i) => [`${cols[i]!.column} ${r.higherIsBetter ? '↑' : '↓'}`, meanStd(r), String(r.forwardPasses)]),
    )
    console.log(`\n${model.stats.rows} model rows in ${model.stats.forwardPasses} forward calls, ${ms.toFixed(0)} ms.`)
  } finally {
    await model.close()
  }
}

async function main(argv: string[]): Promise<void> {
  if (await distributedCli(argv)) return
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      x: { type: 'string' },
      y: { type: 'string' },
      a: { type: 'string' },
      metrics: { type: 'string' },
      'features-in-step': { type: 'string', default: '8' },
      batch: { type: 'string', default: 'auto' },
      workers: { type: 'string' },
      providers: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  const command = positionals[0]
  if (values.help || (command !== 'demo' && command !== 'evaluate')) {
    console.log(USAGE)
    if (!values.help) process.exitCode = 2
    return
  }
  const args: CommonArgs = {
    featuresInStep: Number(values['features-in-step']),
    batch: values.batch === 'auto' ? 'auto' : Number(values.batch),
    workers: values.workers === undefined ? undefined : Number(values.workers),
    providers: values.providers?.split(','),
    json: values.json,
    metrics: values.metrics,
  }
  if (command === 'demo') await demo(args)
  else await evaluate({ ...args, model: values.model, x: values.x, y: values.y, a: values.a })
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof XaiEvalError) {
    console.error(`xai-eval: ${e.message} (${e.code})`)
    process.exitCode = 1
  } else if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`xai-eval: ${(e as Error).message}\n\n${USAGE}`)
    process.exitCode = 2
  } else {
    console.error(e)
    process.exitCode = 1
  }
})
