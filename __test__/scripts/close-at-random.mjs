// Loads the demo model `rounds` times and closes it once at a random moment of a running
// evaluation; prints the outcomes as JSON. Run as its own process (plain node, no loader) by
// embedding.spec.ts: a close that aborts the process shows as its exit status.
// Usage: node close-at-random.mjs [rounds] [seed]
import { loadDemo, OnnxModel, SymmetricRelevanceGain, XaiEvalError } from 'xai-eval'

const rounds = Number(process.argv[2] ?? 200)
let state = Number(process.argv[3] ?? 11) >>> 0
/** mulberry32: reproducible close moments. */
const rand = () => {
  state = (state + 0x6d2b79f5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const demo = await loadDemo()
const [, c, h, w] = demo.shape
const n = 8
const data = {
  x: demo.x.subarray(0, n * c * h * w),
  shape: [n, c, h, w],
  y: demo.y.subarray(0, n),
  a: demo.attributions.gradient.subarray(0, n * h * w),
  aShape: [n, 1, h, w],
}
const options = { maxBatchSize: 8, workers: 1, threads: 1 }
const metric = new SymmetricRelevanceGain({ featuresInStep: 64 })

// How long one evaluation takes here, so the close moments cover all of it.
const probe = await OnnxModel.load(demo.modelPath, options)
const start = performance.now()
await metric.evaluate(probe, data)
const span = 1.2 * (performance.now() - start)
await probe.close()

const outcomes = { resolved: 0, CLOSED: 0, ABORTED: 0, refusedAfterClose: 0 }
for (let i = 0; i < rounds; i++) {
  const model = await OnnxModel.load(demo.modelPath, options)
  // Observed from the start, so a rejection before close() returns is never an unhandled one.
  const outcome = metric.evaluate(model, data).then(
    () => 'resolved',
    (e) => e,
  )
  await sleep(rand() * span)
  await model.close()
  const e = await outcome
  if (e === 'resolved') outcomes.resolved++
  else if (e instanceof XaiEvalError && (e.code === 'CLOSED' || e.code === 'ABORTED')) outcomes[e.code]++
  else throw e
  // A closed model refuses work with CLOSED, and never starts its pool again.
  const again = await metric.evaluate(model, data).then(
    () => undefined,
    (err) => err,
  )
  if (again instanceof XaiEvalError && again.code === 'CLOSED') outcomes.refusedAfterClose++
  await model.close() // idempotent
}
console.log(JSON.stringify({ rounds, spanMs: span, ...outcomes }))
