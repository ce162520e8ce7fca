// OnnxModel's `workers`/`threads: 'auto'`: the pool shape (sessions × threads, spinning or not) is
// measured on the metric's own rows within the tuning budgets, reported in the results, settable
// by passing the report back, and never changes a score.
import { availableParallelism } from 'node:os'

import test from 'ava'
import { FunctionModel, type Model, OnnxModel, PixelFlipping, type PoolShape, XaiEvalError } from 'xai-eval'

import { demoData } from './demo.js'

const cores = availableParallelism()
/** The default pool on this machine: what `'auto'` starts from. */
const defaultShape: PoolShape = {
  workers: Math.min(2, cores),
  threads: Math.max(1, Math.floor(cores / Math.min(2, cores))),
  spin: cores === 1,
}

test("'auto' pool shape: scores equal every fixed shape's, the reported shape is a candidate, and passing it back fixes it", async (t) => {
  const { path, data } = await demoData(12)
  const metric = new PixelFlipping({ featuresInStep: 7 })
  // A generous time budget so the measurement reaches every candidate shape on a busy machine.
  const auto = await OnnxModel.load(path, { workers: 'auto', threads: 'auto', maxBatchSize: 16, tuning: { ms: 60_000 } })
  const seen = new Set<string>()
  let last: PoolShape | undefined
  let scores: Float64Array | undefined
  try {
    // 12 × 113 rows a run, batches of 16: a few runs measure every shape, then the choice stays.
    for (let i = 0; i < 12; i++) {
      const r = await metric.evaluate(auto, data)
      t.truthy(r.pool)
      seen.add(JSON.stringify(r.pool))
      if (scores) t.deepEqual(r.scores, scores, `run ${i} on ${JSON.stringify(r.pool)}`)
      scores = r.scores
      last = r.pool
    }
  } finally {
    await auto.close()
  }
  // On one core there is one candidate; on two or more, the lone session was tried as well.
  if (cores > 1) t.true(seen.size > 1, `shapes seen: ${[...seen].join(' ')}`)
  for (const shape of [defaultShape, { workers: 1, threads: 1, spin: false }, last!]) {
    const fixed = await OnnxModel.load(path, { ...shape, maxBatchSize: 16 })
    try {
      const r = await metric.evaluate(fixed, data)
      t.deepEqual(r.scores, scores, JSON.stringify(shape))
      t.deepEqual(r.pool, shape)
    } finally {
      await fixed.close()
    }
  }
})

test("spent 'auto' budgets keep the first (default) shape", async (t) => {
  const { path, data } = await demoData(8)
  for (const tuning of [{ ms: 0 }, { rssBytes: 1 }]) {
    const model = await OnnxModel.load(path, { workers: 'auto', threads: 'auto', tuning })
    try {
      for (let i = 0; i < 3; i++) {
        const r = await new PixelFlipping({ featuresInStep: 7 }).evaluate(model, data)
        t.deepEqual(r.pool, defaultShape, JSON.stringify(tuning))
        t.deepEqual(model.pool, defaultShape)
      }
    } finally {
      await model.close()
    }
  }
})

test("a fixed 'workers' narrows 'auto' threads to that many sessions", async (t) => {
  const { path, data } = await demoData(8)
  const model = await OnnxModel.load(path, { workers: 1, threads: 'auto', maxBatchSize: 16, tuning: { ms: 60_000 } })
  try {
    for (let i = 0; i < 6; i++) {
      const r = await new PixelFlipping({ featuresInStep: 7 }).evaluate(model, data)
      t.is(r.pool?.workers, 1)
      t.is(r.pool?.threads, cores)
      t.is(model.concurrency, 1)
    }
  } finally {
    await model.close()
  }
})

test('bad pool shapes are typed errors', async (t) => {
  const { path } = await demoData(1)
  for (const options of [{ workers: 'x' }, { threads: 0 }, { workers: 'auto', spin: 'y' }, { threads: 1.5 }, { workers: 100_000 }]) {
    const e = await t.throwsAsync(() => OnnxModel.load(path, options as never))
    t.true(e instanceof XaiEvalError && e.code === 'INVALID_OPTION', `${JSON.stringify(options)}: ${e?.message}`)
  }
})

test('the engine keeps at most 2 × (concurrency + 1) small batches in flight while a model changes its concurrency mid-run', async (t) => {
  const { data } = await demoData(6)
  // Ten classes from the mean of each row: deterministic, so any schedule gives the same scores.
  const logits = (x: Float32Array, rows: number): Float32Array => {
    const len = x.length / rows
    const out = new Float32Array(10 * rows)
    for (let r = 0; r < rows; r++) {
      let s = 0
      for (let i = 0; i < len; i++) s += x[r * len + i]!
      for (let k = 0; k < 10; k++) out[10 * r + k] = ((k - 4.5) * s) / len
    }
    return out
  }
  let calls = 0
  let inFlight = 0
  const excess: string[] = []
  const concurrencyAt = (call: number): number => (call < 20 ? 3 : 1)
  const switching: Model = {
    output: 'probabilities',
    rawOutput: 'logits',
    maxBatchSize: 4,
    get concurrency() {
      return concurrencyAt(calls)
    },
    maxConcurrency: 3,
    stats: { forwardPasses: 0, rows: 0 },
    async forward(x, rows) {
      const c = concurrencyAt(calls++)
      inFlight++
      // Once the batches sent under the larger concurrency have drained, the smaller bound holds.
      if (inFlight > 2 * (c + 1) && calls > 40) excess.push(`${inFlight} in flight at concurrency ${c}`)
      if (inFlight > 2 * (3 + 1)) excess.push(`${inFlight} in flight, more than the most lanes`)
      await new Promise((r) => setTimeout(r, 1))
      inFlight--
      return logits(x, rows)
    },
    close: async () => {},
  }
  const metric = new PixelFlipping({ featuresInStep: 7 })
  const r = await metric.evaluate(switching, data)
  const plain = await metric.evaluate(new FunctionModel((x, [rows]) => logits(x, rows!), { maxBatchSize: 4 }), data)
  t.deepEqual(excess, [])
  t.true(calls > 40, `${calls} calls`)
  t.deepEqual(r.scores, plain.scores)
})
