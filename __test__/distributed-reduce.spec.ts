// The reduce of a distributed run without Redis: a shard delivered twice is counted once, two
// different shards for one range are an error, and gaps and overlaps are refused by the metric.
import test from 'ava'
import { type Dataset, Deletion, loadDemo, OnnxModel, type Shard, XaiEvalError } from 'xai-eval'

import { type ReduceJob, reduceShards, type ShardValue } from '../dist/distributed/plan.js'

test('reduceShards: duplicates by range counted once; different duplicates, gaps and overlaps refused', async (t) => {
  const demo = await loadDemo()
  const model = await OnnxModel.load(demo.modelPath, { maxBatchSize: 32 })
  const [, c, h, w] = demo.shape
  const slice = (method: string, first: number, n: number): Dataset => ({
    x: demo.x.slice(first * c * h * w, (first + n) * c * h * w),
    shape: [n, c, h, w],
    y: demo.y.slice(first, first + n),
    a: demo.attributions[method]!.slice(first * h * w, (first + n) * h * w),
    aShape: [n, 1, h, w],
  })
  const metric = new Deletion()
  const shard = async (method: string, first: number, n: number): Promise<ShardValue> => ({
    method: 'gradient',
    metric: 0,
    shard: JSON.stringify((await metric.map(model, slice(method, first, n), { firstSample: first })) as Shard),
  })
  try {
    const job: ReduceJob = { runId: 'r', methods: ['gradient'], specs: [metric.toJSON()], samples: 30 }
    const parts = [await shard('gradient', 0, 10), await shard('gradient', 10, 10), await shard('gradient', 20, 10)]
    const whole = await metric.evaluate(model, slice('gradient', 0, 30))
    const once = reduceShards(job, parts)
    t.is(once.duplicates, 0)
    t.deepEqual((once.results.gradient![0] as { scores: unknown }).scores, JSON.parse(JSON.stringify(whole)).scores)
    const twice = reduceShards(job, [parts[1]!, ...parts, parts[1]!])
    t.is(twice.duplicates, 2)
    t.deepEqual(twice.results, once.results)

    const other = await shard('random', 10, 10)
    const e = t.throws(() => reduceShards(job, [...parts, other]), { instanceOf: XaiEvalError })
    t.regex(e!.message, /two different shards of metric 0 on 'gradient' for samples 10…19/)
    t.throws(() => reduceShards(job, [parts[0]!, parts[2]!]), { instanceOf: XaiEvalError, message: /samples 10…19 are in no shard/ })
    const overlapping = await shard('gradient', 5, 10)
    t.throws(() => reduceShards(job, [...parts, overlapping]), { instanceOf: XaiEvalError, message: /overlap/ })
    t.throws(() => reduceShards({ ...job, samples: 40 }, parts), { instanceOf: XaiEvalError, message: /covers samples 0…29 of 40/ })
  } finally {
    await model.close()
  }
})
