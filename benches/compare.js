// `npm run bench:compare`: every perturbation-metric family against its physical limit, the bare
// forward passes of exactly the rows it needs in a plain onnxruntime-node session at that session's
// best batch size (inputs already built, nothing scored). Small CNN (the demo, 1×28×28) and a
// ResNet-18-sized model (3×224×224, random weights: `python scripts/make_resnet18.py`, skipped when
// absent), 1 and 2 threads. The two sides alternate (interleaved pairs) so drift on a shared VM
// lands on both; we report the median ratio and its quartiles. Results: benches/results/compare.json
// and compare.md. Environment: BENCH_MODELS=small,resnet18  BENCH_PAIRS=<n>, and for a narrower run
// BENCH_POOLS=1x1,1x2,2x1,auto (sessions × threads) and BENCH_FAMILIES=srg,pf,del,road.
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'

import * as ort from 'onnxruntime-node'
import { Deletion, Insertion, OnnxModel, PixelFlipping, Road, SymmetricRelevanceGain } from 'xai-eval'

import { demoSubset, machine, randomArray } from './common.js'

export const name = 'compare'

const RESNET = 'benches/models/resnet18.onnx'

/**
 * 1 thread; 2 threads as one spinning session, as the default pool of two 1-thread sessions, and
 * as the pool shape xai-eval measures itself (`workers`/`threads: 'auto'`, against 2 bare threads).
 */
const POOLS = [
  { key: '1x1', threads: 1, options: { workers: 1, threads: 1 } },
  { key: '1x2', threads: 2, options: { workers: 1, threads: 2 } },
  { key: '2x1', threads: 2, options: { workers: 2, threads: 1 } },
  { key: 'auto', threads: 2, options: { workers: 'auto', threads: 'auto' } },
]

/** Deletion and Insertion are one family: their curves share a model and a substrate. */
function families(steps) {
  const only = process.env.BENCH_FAMILIES?.split(',')
  return [
    { key: 'srg', name: `SRG (featuresInStep ${steps.srg} values)`, metrics: [new SymmetricRelevanceGain({ featuresInStep: steps.srg })] },
    { key: 'pf', name: `PixelFlipping (featuresInStep ${steps.srg} values)`, metrics: [new PixelFlipping({ featuresInStep: steps.srg })] },
    {
      key: 'del',
      name: `Deletion + Insertion (${steps.del} steps)`,
      metrics: [new Deletion({ steps: steps.del }), new Insertion({ steps: steps.del })],
    },
    { key: 'road', name: 'ROAD (7 percentages, MoRF)', metrics: [new Road()] },
  ].filter((f) => !only || only.includes(f.key))
}

async function setups() {
  const out = []
  const only = (process.env.BENCH_MODELS ?? 'small,resnet18').split(',')
  if (only.includes('small')) {
    const { modelPath, data } = await demoSubset(64)
    out.push({
      label: 'small CNN 1×28×28, N 64',
      path: modelPath,
      data,
      steps: { srg: 28, del: 50 },
      sizes: [8, 16, 32, 64, 128, 256],
      pairs: 9,
      pools: POOLS,
    })
  }
  if (only.includes('resnet18')) {
    if (!existsSync(RESNET)) console.log(`  (${RESNET} missing: python scripts/make_resnet18.py; ResNet-18 skipped)`)
    else {
      const n = 1
      const data = {
        x: randomArray(n * 3 * 224 * 224, 1).map((v) => (v + 1) / 2),
        shape: [n, 3, 224, 224],
        y: new Int32Array(n),
        a: randomArray(n * 224 * 224, 2),
        aShape: [n, 1, 224, 224],
      }
      out.push({
        label: `ResNet-18 3×224×224, N ${n}`,
        path: RESNET,
        data,
        steps: { srg: 9408, del: 16 },
        sizes: [1, 2, 4],
        pairs: 3,
        pools: [POOLS[0], POOLS[2], POOLS[3]],
      })
    }
  }
  return out
}

/** A plain session: what a hand-written loop over onnxruntime-node gets, ORT's defaults otherwise. */
async function bare(path, threads, rowShape, sizes) {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: threads, graphOptimizationLevel: 'all' })
  const rowLen = rowShape.reduce((p, d) => p * d, 1)
  const input = session.inputNames[0]
  const forwards = async (rows, size) => {
    for (let done = 0; done < rows; done += size) {
      const n = Math.min(size, rows - done)
      const x = new Float32Array(n * rowLen).fill(0.5)
      await session.run({ [input]: new ort.Tensor('float32', x, [n, ...rowShape]) })
    }
  }
  // Its best batch size: each candidate on the same rows (the largest candidate, twice), fastest kept.
  const probe = 2 * sizes.at(-1)
  let best = { size: sizes[0], ms: Number.POSITIVE_INFINITY }
  for (const size of sizes) {
    await forwards(size, size)
    const t = performance.now()
    await forwards(probe, size)
    const ms = performance.now() - t
    if (ms < best.ms) best = { size, ms }
  }
  return { session, size: best.size, run: (rows) => forwards(rows, best.size) }
}

/** `1 × 2 threads`, or for a measured shape `auto: 1 × 2 spin`. */
function poolLabel(options, chosen) {
  if (options.workers !== 'auto') return `${options.workers} × ${options.threads} thread${options.threads > 1 ? 's' : ''}`
  return chosen ? `auto: ${chosen.workers} × ${chosen.threads}${chosen.spin ? ' spin' : ''}` : 'auto'
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]
const quartiles = (v) => {
  const s = [...v].sort((a, b) => a - b)
  return [s[Math.floor((s.length - 1) / 4)], s[Math.ceil((3 * (s.length - 1)) / 4)]]
}

export async function run() {
  const pairs = process.env.BENCH_PAIRS ? Number(process.env.BENCH_PAIRS) : undefined
  const rows = []
  const loadBefore = os.loadavg()
  for (const s of await setups()) {
    const rowShape = s.data.shape.slice(1)
    const pools = process.env.BENCH_POOLS?.split(',')
    for (const pool of s.pools.filter((p) => !pools || pools.includes(p.key))) {
      const limit = await bare(s.path, pool.threads, rowShape, s.sizes)
      const rss0 = process.memoryUsage.rss()
      const model = await OnnxModel.load(s.path, pool.options)
      for (const f of families(s.steps)) {
        const evaluate = async () => {
          const results = []
          for (const m of f.metrics) results.push(await m.evaluate(model, s.data))
          return results
        }
        let t = performance.now()
        const first = await evaluate() // the 'auto' climb happens here, on the metric's own rows
        const firstMs = performance.now() - t
        const needed = first.reduce((a, r) => a + r.forwardPasses, 0)
        const ratios = []
        const ours = []
        const theirs = []
        let last = first
        for (let i = 0; i < (pairs ?? s.pairs); i++) {
          t = performance.now()
          last = await evaluate()
          ours.push(performance.now() - t)
          t = performance.now()
          await limit.run(needed)
          theirs.push(performance.now() - t)
          ratios.push(ours.at(-1) / theirs.at(-1))
        }
        const [q1, q3] = quartiles(ratios)
        const row = {
          model: s.label,
          pool: poolLabel(pool.options, last.at(-1).pool),
          threads: pool.threads,
          family: f.name,
          rows: needed,
          batchSize: last.at(-1).batchSize,
          bareBatchSize: limit.size,
          firstMs,
          ms: median(ours),
          bareMs: median(theirs),
          ratio: median(ratios),
          q1,
          q3,
          rssGrowthMB: (process.memoryUsage.rss() - rss0) / 2 ** 20,
        }
        rows.push(row)
        console.log(
          `  ${row.model} | ${row.pool} | ${row.family}: ${row.rows} rows, xai-eval ${row.ms.toFixed(0)} ms (batch ${row.batchSize}; first call ${row.firstMs.toFixed(0)} ms), bare ${row.bareMs.toFixed(0)} ms (batch ${row.bareBatchSize}), ratio ${row.ratio.toFixed(2)} (${q1.toFixed(2)}–${q3.toFixed(2)})`,
        )
      }
      await model.close()
      await limit.session.release()
    }
  }
  await mkdir('benches/results', { recursive: true })
  await writeFile(
    'benches/results/compare.json',
    `${JSON.stringify({ machine: machine(), date: new Date().toISOString(), load: { before: loadBefore, after: os.loadavg() }, rows }, null, 2)}\n`,
  )
  const load = (l) => l.map((v) => v.toFixed(1)).join(' ')
  const md = [
    `Machine: ${machine()}; load average ${load(loadBefore)} before, ${load(os.loadavg())} after. Median of interleaved pairs (xai-eval ÷ bare forward passes), quartiles in brackets.`,
    '',
    '| model | pool (sessions × threads) | family | rows | xai-eval ms (batch) | bare ms (batch) | ratio |',
    '|---|---|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.pool} | ${r.family} | ${r.rows} | ${r.ms.toFixed(0)} (${r.batchSize}) | ${r.bareMs.toFixed(0)} (${r.bareBatchSize}) | ${r.ratio.toFixed(2)} (${r.q1.toFixed(2)}–${r.q3.toFixed(2)}) |`,
    ),
  ].join('\n')
  await writeFile('benches/results/compare.md', `${md}\n`)
  return { rows }
}
