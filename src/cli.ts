#!/usr/bin/env node
// xai-eval's command line. `xai-eval demo` compares the embedded attribution methods on every metric.
import { parseArgs } from 'node:util'

import { loadDemo } from './data.js'
import { XaiEvalError } from './errors.js'
import { Deletion, Insertion } from './metrics/deletion-insertion.js'
import { Completeness } from './metrics/completeness.js'
import { PixelFlipping } from './metrics/pixel-flipping.js'
import { Road } from './metrics/road.js'
import { Soundness } from './metrics/soundness.js'
import { SymmetricRelevanceGain } from './metrics/srg.js'
import { OnnxModel } from './models/onnx-model.js'
import type { MetricResult } from './result.js'

const USAGE = `Usage: xai-eval demo [--features-in-step N] [--batch N|auto] [--workers N] [--json]

  demo   Evaluate the embedded demo model's attribution methods (gradient, gradient × input,
         integrated gradients, occlusion, random) with every metric and print a comparison table.`

/**
 * The metrics of the demo table: header (arrow: which way is better) and metric. Soundness and
 * completeness measure attribution mass, which must be non-negative: they see |a| (`magnitude`).
 */
function metrics(featuresInStep: number) {
  return [
    { column: 'SRG ↑', metric: new SymmetricRelevanceGain({ featuresInStep }) },
    { column: 'MIF ↓', metric: new PixelFlipping({ order: 'mif', featuresInStep }) },
    { column: 'LIF ↑', metric: new PixelFlipping({ order: 'lif', featuresInStep }) },
    { column: 'Deletion ↓', metric: new Deletion({ baseline: 'black' }) },
    { column: 'Insertion ↑', metric: new Insertion({ baseline: 'blur' }) },
    { column: 'ROAD MoRF ↓', metric: new Road({ order: 'morf' }) },
    { column: 'Soundness ↑', metric: new Soundness(), magnitude: true },
    { column: 'Completeness ↑', metric: new Completeness(), magnitude: true },
  ]
}

async function demo(args: { featuresInStep: number; batch: number | 'auto'; workers?: number; json: boolean }): Promise<void> {
  const data = await loadDemo()
  const model = await OnnxModel.load(data.modelPath, { maxBatchSize: args.batch, workers: args.workers })
  try {
    const [n, c, h, w] = data.shape
    const table: { method: string; results: MetricResult[]; ms: number }[] = []
    const columns = metrics(args.featuresInStep)
    for (const [method, a] of Object.entries(data.attributions)) {
      const dataset = { x: data.x, shape: data.shape, y: data.y, a, aShape: [n, 1, h, w] }
      const magnitude = { ...dataset, a: a.map(Math.abs) }
      const start = performance.now()
      const results: MetricResult[] = []
      for (const c of columns) results.push(await c.metric.evaluate(model, 'magnitude' in c ? magnitude : dataset))
      table.push({ method, results, ms: performance.now() - start })
    }
    if (args.json) {
      console.log(JSON.stringify(table.map((r) => ({
        method: r.method,
        ms: r.ms,
        metrics: Object.fromEntries(r.results.map((m, i) => [columns[i]!.column.split(' ')[0], { mean: m.mean, std: m.std, rows: m.forwardPasses }])),
      })), null, 2))
      return
    }
    console.log(`xai-eval demo: ${n} samples ${c}×${h}×${w}, ${data.classes.length} classes (${data.classes.join(', ')})`)
    console.log(`model ${model.provider}, batch ${model.maxBatchSize} × ${model.concurrency} workers, featuresInStep ${args.featuresInStep}; mean ± std over samples`)
    console.log('Soundness and Completeness on |a| (paper mode, accuracy indicator); ROAD: label probability averaged over 10–90 % removed\n')
    const header = ['method', ...columns.map((c) => c.column), 'rows', 'time']
    const rows = table.map(({ method, results, ms }) => [
      method,
      ...results.map((r) => `${r.mean.toFixed(3)} ± ${r.std.toFixed(3)}`),
      String(results.reduce((s, r) => s + r.forwardPasses, 0)),
      `${ms.toFixed(0)} ms`,
    ])
    const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => [...r[i]!].length)))
    const line = (r: string[]) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
    console.log(line(header))
    console.log(widths.map((wd) => '─'.repeat(wd)).join('  '))
    for (const r of rows) console.log(line(r))
    console.log(`\n${model.stats.rows} model rows in ${model.stats.forwardPasses} forward calls.`)
  } finally {
    await model.close()
  }
}

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'features-in-step': { type: 'string', default: '8' },
      batch: { type: 'string', default: 'auto' },
      workers: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help || positionals[0] !== 'demo') {
    console.log(USAGE)
    if (!values.help) process.exitCode = 2
    return
  }
  await demo({
    featuresInStep: Number(values['features-in-step']),
    batch: values.batch === 'auto' ? 'auto' : Number(values.batch),
    workers: values.workers === undefined ? undefined : Number(values.workers),
    json: values.json,
  })
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof XaiEvalError ? `xai-eval: ${e.message} (${e.code})` : e)
  process.exitCode = 1
})
