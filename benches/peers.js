// `node benches/run.js peers`: xai-eval on the workloads `python scripts/bench_peers.py` timed in
// the Python peers (read from benches/results/peers.json), at the same threads (xai-eval's default
// pool on that many cores: one 1-thread session per thread, so neither side has more cores), with
// the same warm-up and repeats. Writes the
// speed-ups to benches/results/peers.md. The two sides run one after the other, not interleaved:
// run both on a quiet machine.
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'

import { OnnxModel, PixelFlipping, Road, SymmetricRelevanceGain } from 'xai-eval'

import { demoSubset, machine, randomArray } from './common.js'

export const name = 'peers'

const RESNET = 'benches/models/resnet18.onnx'
const percentages = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]

async function ours(workload) {
  if (workload.startsWith('pytorch-grad-cam ROAD')) {
    const n = 2
    const data = {
      x: randomArray(n * 3 * 224 * 224, 1).map((v) => (v + 1) / 2),
      shape: [n, 3, 224, 224],
      y: new Int32Array(n),
      a: randomArray(n * 224 * 224, 2),
      aShape: [n, 1, 224, 224],
    }
    return { path: RESNET, data, metric: new Road({ percentages }) }
  }
  const road = workload.startsWith('quantus ROAD')
  const { modelPath, data } = await demoSubset(road ? 16 : 64)
  if (road) return { path: modelPath, data, metric: new Road({ percentages }) }
  if (workload.includes('SRG')) return { path: modelPath, data, metric: new SymmetricRelevanceGain({ featuresInStep: 28 }) }
  return { path: modelPath, data, metric: new PixelFlipping({ featuresInStep: 28 }) }
}

export async function run() {
  const file = 'benches/results/peers.json'
  if (!existsSync(file)) {
    console.log(`  ${file} missing: run python scripts/bench_peers.py first`)
    return {}
  }
  const peers = JSON.parse(await readFile(file, 'utf8'))
  const rows = []
  for (const p of peers.results) {
    const { path, data, metric } = await ours(p.workload)
    if (!existsSync(path)) continue
    const model = await OnnxModel.load(path, { workers: p.threads, threads: 1 })
    await metric.evaluate(model, data)
    const times = []
    for (let i = 0; i < p.runs; i++) {
      const t = performance.now()
      await metric.evaluate(model, data)
      times.push(performance.now() - t)
    }
    await model.close()
    times.sort((a, b) => a - b)
    const ms = times[Math.floor(times.length / 2)]
    rows.push({ ...p, xaiEvalMs: ms, speedup: p.ms / ms })
    console.log(
      `  ${p.threads} thread(s) | ${p.workload}: peer ${p.ms.toFixed(0)} ms, xai-eval ${ms.toFixed(0)} ms, ${(p.ms / ms).toFixed(1)}× faster`,
    )
  }
  const md = [
    `Machine: ${machine()}; peers: ${JSON.stringify(peers.versions)}. Medians of ${peers.results[0]?.runs} runs after a warm-up.`,
    '',
    '| threads | workload | peer ms | xai-eval ms | xai-eval speed-up |',
    '|---:|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.threads} | ${r.workload} | ${r.ms.toFixed(0)} | ${r.xaiEvalMs.toFixed(0)} | ${r.speedup.toFixed(1)}× |`),
  ].join('\n')
  await writeFile('benches/results/peers.md', `${md}\n`)
  return { rows }
}
