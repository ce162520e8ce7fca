// `node benches/run.js tuning`: what the `'auto'` batch climb costs on a large model. A 50-step
// Deletion of 2 random 3×224×224 images on the ResNet-18-sized model (benches/models/resnet18.onnx
// from scripts/make_resnet18.py; skipped when absent), each run in a fresh process (a settled size
// is cached per process): with 'auto', and with every fixed size it could choose. The climb's cost
// is the 'auto' time over the time at the size it settled on, and over the best fixed size; RSS
// growth is the process's resident memory after the run minus before the model was loaded.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'

export const name = 'tuning'

const MODEL = 'benches/models/resnet18.onnx'

const child = `
import { OnnxModel, Deletion } from 'xai-eval'
const mode = process.argv[1]
const n = 2
let s = 1
const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648
const x = Float32Array.from({ length: n * 3 * 224 * 224 }, rnd)
const a = Float32Array.from({ length: n * 3 * 224 * 224 }, rnd)
const rss0 = process.memoryUsage.rss()
const model = await OnnxModel.load('${MODEL}', mode === 'auto' ? {} : { maxBatchSize: Number(mode) })
const t0 = performance.now()
const r = await new Deletion({ steps: 50 }).evaluate(model, { x, y: Int32Array.from([0, 1]), a, shape: [n, 3, 224, 224] })
const ms = performance.now() - t0
console.log(JSON.stringify({ mode, ms, batch: r.batchSize, rows: r.forwardPasses, rss: process.memoryUsage.rss() - rss0 }))
await model.close()
`

const median = (v) => [...v].sort((p, q) => p - q)[v.length >> 1]

export async function run(rounds = 3) {
  if (!existsSync(MODEL)) {
    console.log(`  tuning: ${MODEL} missing (python scripts/make_resnet18.py): skipped`)
    return
  }
  const modes = ['auto', '1', '2', '4', '8']
  const runs = Object.fromEntries(modes.map((m) => [m, []]))
  for (let r = 0; r < rounds; r++) {
    for (const m of modes) {
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', child, m], { encoding: 'utf8' })
      runs[m].push(JSON.parse(out.trim().split('\n').pop()))
    }
  }
  const ms = (m) => median(runs[m].map((x) => x.ms))
  const settled = runs.auto.at(-1).batch
  const best = modes.slice(1).reduce((b, m) => (ms(m) < ms(b) ? m : b), '1')
  const result = {
    rounds,
    rows: runs.auto[0].rows,
    msByMode: Object.fromEntries(modes.map((m) => [m, Math.round(ms(m))])),
    settled,
    best: Number(best),
    overSettled: ms('auto') / ms(String(settled)) - 1,
    overBest: ms('auto') / ms(best) - 1,
    rssGrowthMB: Object.fromEntries(modes.map((m) => [m, Math.round(median(runs[m].map((x) => x.rss)) / 1e6)])),
  }
  console.log(
    `  tuning, ResNet-18 Deletion 50 steps, N 2 (${result.rows} rows): auto ${result.msByMode.auto} ms (settled at ${settled}), ` +
      `fixed ${modes
        .slice(1)
        .map((m) => `${m}: ${result.msByMode[m]} ms`)
        .join(
          ', ',
        )}; auto over its settled size ${(100 * result.overSettled).toFixed(1)} %, over the best fixed size ${(100 * result.overBest).toFixed(1)} %; ` +
      `RSS growth auto ${result.rssGrowthMB.auto} MB (fixed ${modes
        .slice(1)
        .map((m) => result.rssGrowthMB[m])
        .join('/')} MB)`,
  )
  await writeFile('benches/results/tuning.json', `${JSON.stringify(result, null, 2)}\n`)
}
