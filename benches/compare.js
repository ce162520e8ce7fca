// `npm run bench:compare`: every perturbation-metric family against its physical limit, the bare
// forward passes of exactly the rows it needs in plain onnxruntime-node sessions at their best batch
// size and shape, in processes of their own (inputs already built, nothing scored; `bare-limit.js`). Small CNN (the demo, 1×28×28) and a
// ResNet-18-sized model (3×224×224, random weights: `python scripts/make_resnet18.py`, skipped when
// absent), 1 and 2 threads. The two sides alternate (interleaved pairs, each run after a pause that
// lets the other side's spinning threads sleep) so drift on a shared VM lands on both; we report the
// median ratio and its quartiles. Results: benches/results/compare.json
// and compare.md. Environment: BENCH_MODELS=small,resnet18  BENCH_PAIRS=<n>, and for a narrower run
// BENCH_POOLS=1x1,1x2,2x1,auto (sessions × threads) and BENCH_FAMILIES=srg,pf,del,road.
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'

import { Deletion, Insertion, OnnxModel, PixelFlipping, Road, SymmetricRelevanceGain } from 'xai-eval'

import { bareLimit, pause } from './bare-limit.js'
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
      warmups: 3,
    })
  }
  if (only.includes('resnet18')) {
    if (!existsSync(RESNET)) console.log(`  (${RESNET} missing: python scripts/make_resnet18.py; ResNet-18 skipped)`)
    else {
      const n = 2
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
        warmups: 0,
      })
    }
  }
  return out
}

/** `1 × 2 threads`, or for a measured shape `auto: 1 × 2 spin`. */
function poolLabel(options, chosen) {
  if (options.workers !== 'auto') return `${options.workers} × ${options.threads} thread${options.threads > 1 ? 's' : ''}`
  return chosen ? `auto: ${chosen.workers} × ${chosen.threads}${chosen.spin ? ' spin' : ''}` : 'auto'
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]
/** The most frequent value (the bare shape that was fastest most often). */
const mode = (v) => [...new Set(v)].map((x) => [x, v.filter((y) => y === x).length]).sort((a, b) => b[1] - a[1])[0][0]

const quartiles = (v) => {
  const s = [...v].sort((a, b) => a - b)
  return [s[Math.floor((s.length - 1) / 4)], s[Math.ceil((3 * (s.length - 1)) / 4)]]
}

export async function run() {
  const pairs = process.env.BENCH_PAIRS ? Number(process.env.BENCH_PAIRS) : undefined
  const rows = []
  const loadBefore = os.loadavg()
  const limits = new Map()
  for (const s of await setups()) {
    const rowShape = s.data.shape.slice(1)
    const pools = process.env.BENCH_POOLS?.split(',')
    for (const pool of s.pools.filter((p) => !pools || pools.includes(p.key))) {
      // One limit per model and thread count, whatever xai-eval's pool shape.
      const key = `${s.path}|${pool.threads}`
      if (!limits.has(key)) limits.set(key, await bareLimit(s.path, pool.threads, rowShape, s.sizes))
      const limit = limits.get(key)
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
        // Steady state on both sides: the bare sessions ran hundreds of batches while probing.
        for (let i = 0; i < s.warmups; i++) await evaluate()
        const ratios = []
        const ours = []
        const theirs = []
        const shapes = []
        let last = first
        for (let i = 0; i < (pairs ?? s.pairs); i++) {
          await pause()
          t = performance.now()
          last = await evaluate()
          ours.push(performance.now() - t)
          const bare = await limit.time(needed)
          theirs.push(bare.ms)
          shapes.push(`${bare.label}, batch ${bare.size}`)
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
          bareShape: mode(shapes),
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
          `  ${row.model} | ${row.pool} | ${row.family}: ${row.rows} rows, xai-eval ${row.ms.toFixed(0)} ms (batch ${row.batchSize}; first call ${row.firstMs.toFixed(0)} ms), bare ${row.bareMs.toFixed(0)} ms (${row.bareShape}), ratio ${row.ratio.toFixed(2)} (${q1.toFixed(2)}–${q3.toFixed(2)})`,
        )
      }
      await model.close()
    }
  }
  for (const limit of limits.values()) limit.close()
  await mkdir('benches/results', { recursive: true })
  await writeFile(
    'benches/results/compare.json',
    `${JSON.stringify({ machine: machine(), date: new Date().toISOString(), load: { before: loadBefore, after: os.loadavg() }, rows }, null, 2)}\n`,
  )
  const load = (l) => l.map((v) => v.toFixed(1)).join(' ')
  const md = [
    `Machine: ${machine()}; load average ${load(loadBefore)} before, ${load(os.loadavg())} after. Median of interleaved pairs (xai-eval ÷ bare forward passes), quartiles in brackets.`,
    '',
    '| model | pool (sessions × threads) | family | rows | xai-eval ms (batch) | bare ms (shape, batch) | ratio |',
    '|---|---|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.pool} | ${r.family} | ${r.rows} | ${r.ms.toFixed(0)} (${r.batchSize}) | ${r.bareMs.toFixed(0)} (${r.bareShape}) | ${r.ratio.toFixed(2)} (${r.q1.toFixed(2)}–${r.q3.toFixed(2)}) |`,
    ),
  ].join('\n')
  await writeFile('benches/results/compare.md', `${md}\n`)
  return { rows }
}
