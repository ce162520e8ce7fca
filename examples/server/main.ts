// Starts the example evaluation server on the demo model and data set.
//
//   node --import=tsx examples/server/main.ts                 # port 3000
//   PORT=0 MAX_CONCURRENT=2 MAX_QUEUE=16 BUDGET_MS=10000 WORKERS=2 node --import=tsx examples/server/main.ts
//
// Prints `listening <url>` on stdout once ready; SIGTERM/SIGINT close the server and the model.
import { loadDemo, OnnxModel } from 'xai-eval'

import { buildServer } from './app.js'

const env = (name: string, fallback: number) => {
  const v = process.env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}: expected a non-negative integer, got '${v}'`)
  return n
}

const demo = await loadDemo()
const model = await OnnxModel.load(demo.modelPath, { workers: env('WORKERS', 2), threads: env('THREADS', 1), maxBatchSize: 32 })
const app = buildServer({
  models: { demo: model },
  data: { demo: { x: demo.x, shape: demo.shape, y: demo.y, attributions: demo.attributions } },
  maxConcurrent: env('MAX_CONCURRENT', 2),
  maxQueue: env('MAX_QUEUE', 16),
  budgetMs: env('BUDGET_MS', 10_000),
  bodyLimit: env('BODY_LIMIT', 8 << 20),
  maxDataBytes: env('MAX_DATA_BYTES', 32 << 20),
})
const url = await app.listen({ port: env('PORT', 3000), host: '127.0.0.1' })
console.log(`listening ${url}`)
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
