// OnnxModel's 'auto' batch size: a climb on the metric's own rows that stays within its byte and
// memory budgets, settles once per (model, input shape, provider, pool shape), is reported in the
// results, and never changes a score.
import { existsSync } from 'node:fs'

import test from 'ava'
import { Deletion, OnnxModel, SymmetricRelevanceGain, XaiEvalError, type Dataset } from 'xai-eval'

import { demoData } from './demo.js'
import { prng } from './reference.js'

test("'auto' never sends a batch over its byte budget, and scores equal a fixed batch size's", async (t) => {
  const { path, data } = await demoData(8)
  const rowBytes = 4 * 28 * 28
  // A pool shape no other test uses, so this climb starts fresh.
  const auto = await OnnxModel.load(path, { workers: 1, threads: 1, spin: false, tuning: { batchBytes: 5 * rowBytes } })
  const fixed = await OnnxModel.load(path, { workers: 1, threads: 1, maxBatchSize: 3 })
  const sizes: number[] = []
  const forward = auto.forward.bind(auto)
  auto.forward = (x, rows, shape) => {
    sizes.push(rows)
    return forward(x, rows, shape)
  }
  try {
    const srg = new SymmetricRelevanceGain({ featuresInStep: 7 })
    const r = await srg.evaluate(auto, data)
    const expected = await srg.evaluate(fixed, data)
    t.true(Math.max(...sizes) <= 5, `largest batch ${Math.max(...sizes)} rows`)
    t.is(r.batchSize !== undefined && r.batchSize <= 5, true, `reported ${r.batchSize}`)
    t.is(r.forwardPasses, expected.forwardPasses)
    t.is(r.batches, sizes.length)
    t.deepEqual(r.scores, expected.scores)
    t.is(expected.batchSize, 3)
  } finally {
    await auto.close()
    await fixed.close()
  }
})

test("'auto' settles once per model file, input shape and pool shape, for every model of the process", async (t) => {
  const { path, data } = await demoData(16)
  const options = { workers: 1, threads: 1, spin: false, tuning: { ms: 60_000 } } as const
  const first = await OnnxModel.load(path, options)
  const srg = new SymmetricRelevanceGain({ featuresInStep: 1 })
  let settled: number | undefined
  try {
    // Enough rows for the climb to finish (16 × 1568 rows); it goes on across evaluations until it has.
    for (let i = 0; i < 20 && settled === undefined; i++) {
      const size = (await srg.evaluate(first, data)).batchSize
      if (size === (await srg.evaluate(first, data)).batchSize) settled = size
    }
  } finally {
    await first.close()
  }
  t.truthy(settled)
  const second = await OnnxModel.load(path, options)
  try {
    t.is(second.batchSize([1, 28, 28]), settled!)
    t.is((await srg.evaluate(second, data)).batchSize, settled)
    t.is(second.maxBatchSize, settled!)
  } finally {
    await second.close()
  }
})

test('bad tuning budgets are typed errors', async (t) => {
  const { path } = await demoData(1)
  for (const tuning of [{ batchBytes: 0 }, { rssBytes: -1 }, { ms: Number.NaN }, { margin: 'x' }, { other: 1 }]) {
    const e = await t.throwsAsync(() => OnnxModel.load(path, { tuning } as never))
    t.true(
      e instanceof XaiEvalError && e.code === 'INVALID_OPTION' && e.arg.startsWith('tuning'),
      `${JSON.stringify(tuning)}: ${e?.message}`,
    )
  }
  const e = await t.throwsAsync(() => OnnxModel.load(path, { spin: 1 } as never))
  t.true(e instanceof XaiEvalError && e.code === 'INVALID_OPTION' && e.arg === 'spin')
})

// A ResNet-18-sized model (3×224×224, 11.7 M random weights, activations of ~100 MB at batch 16):
// `python scripts/make_resnet18.py` writes it (torch needed, so CI without it skips this test).
const RESNET = 'benches/models/resnet18.onnx'
const resnet = existsSync(RESNET) ? test : test.skip

resnet("ResNet-18-sized model: 'auto' stays within the default byte and memory budgets", async (t) => {
  const n = 1
  const rand = prng(7)
  const data: Dataset = {
    x: Float32Array.from({ length: n * 3 * 224 * 224 }, () => rand()),
    shape: [n, 3, 224, 224],
    y: [0],
    a: Float32Array.from({ length: n * 224 * 224 }, () => rand() - 0.5),
    aShape: [n, 1, 224, 224],
  }
  const rss0 = process.memoryUsage.rss()
  let peak = rss0
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 5)
  const model = await OnnxModel.load(RESNET)
  try {
    const r = await new Deletion({ steps: 24, baseline: 0 }).evaluate(model, data)
    peak = Math.max(peak, process.memoryUsage.rss())
    t.is(r.forwardPasses, 25)
    // The default byte budget (32 MiB) allows at most 55 rows of 602 kB; powers of two: 32.
    t.true(r.batchSize! * 3 * 224 * 224 * 4 <= 32 * 2 ** 20, `batch ${r.batchSize}`)
    // Session, weights and activations included: far from the 16 GB of an unbounded climb.
    t.true(peak - rss0 < 2 ** 30, `RSS grew by ${((peak - rss0) / 2 ** 20).toFixed(0)} MB`)
  } finally {
    clearInterval(timer)
    await model.close()
  }
})
