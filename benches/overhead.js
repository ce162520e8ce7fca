// `node benches/run.js overhead`: where a small-model evaluation spends its CPU, thread by thread,
// against the bare forward passes of the same rows. On a shared machine wall times swing by tens
// of percent while CPU time barely moves, so this is the steadier view of per-batch overhead:
// anything beyond the session's own inference (the main thread's building, hand-offs and GC, the
// native row building on libuv threads) shows here even when a busy neighbour hides it in the
// wall time. Linux only (reads /proc/self/task). Environment: BENCH_REPS=<n> (default 60).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'

import * as ort from 'onnxruntime-node'
import { OnnxModel, PixelFlipping, SymmetricRelevanceGain } from 'xai-eval'

import { demoSubset, machine } from './common.js'

export const name = 'overhead'

/** CPU milliseconds of every thread of this process so far, by thread id. */
function threadCpu() {
  const ticks = 1000 / 100 // USER_HZ is 100 on Linux
  const out = new Map()
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(Number(tid), (Number(fields[11]) + Number(fields[12])) * ticks)
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out
}

/** Per-run wall and CPU of `fn`, split into the main thread, the `sessions` busiest other threads and the rest. */
async function measure(fn, reps, sessions = 1) {
  for (let i = 0; i < 5; i++) await fn()
  const before = threadCpu()
  const t = performance.now()
  for (let i = 0; i < reps; i++) await fn()
  const wall = (performance.now() - t) / reps
  const after = threadCpu()
  const spent = [...after].map(([tid, ms]) => [tid, (ms - (before.get(tid) ?? 0)) / reps]).filter(([, ms]) => ms > 0)
  const main = spent.find(([tid]) => tid === process.pid)?.[1] ?? 0
  const others = spent
    .filter(([tid]) => tid !== process.pid)
    .map(([, ms]) => ms)
    .sort((a, b) => b - a)
  const busiest = others.slice(0, sessions).reduce((a, ms) => a + ms, 0)
  const total = spent.reduce((a, [, ms]) => a + ms, 0)
  return { wall, cpu: total, main, busiest, rest: total - main - busiest }
}

export async function run() {
  if (!existsSync('/proc/self/task')) {
    console.log('  (overhead: needs /proc/self/task; skipped)')
    return { rows: [] }
  }
  const reps = Number(process.env.BENCH_REPS ?? 60)
  const { modelPath, data } = await demoSubset(64)
  const rowShape = data.shape.slice(1)
  const rowLen = rowShape.reduce((p, d) => p * d, 1)
  const loadBefore = os.loadavg()
  const rows = []
  // Fixed sizes on one session, then the default 'auto' size on one and on two sessions (on two,
  // the CPU beside the sessions competes with them for the cores: the bare CPU is the floor).
  const configs = [
    { workers: 1, batch: 64 },
    { workers: 1, batch: 128 },
    { workers: 1, batch: 'auto' },
    { workers: 2, batch: 'auto' },
  ]
  for (const { workers, batch: size } of configs) {
    const batch = size === 'auto' ? 64 : size
    const model = await OnnxModel.load(modelPath, { workers, threads: 1, maxBatchSize: size })
    const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' })
    const input = session.inputNames[0]
    for (const metric of [new PixelFlipping({ featuresInStep: 28 }), new SymmetricRelevanceGain({ featuresInStep: 28 })]) {
      const needed = (await metric.evaluate(model, data)).forwardPasses
      const bare = async () => {
        for (let done = 0; done < needed; done += batch) {
          const n = Math.min(batch, needed - done)
          await session.run({ [input]: new ort.Tensor('float32', new Float32Array(n * rowLen).fill(0.5), [n, ...rowShape]) })
        }
      }
      const ours = await measure(() => metric.evaluate(model, data), reps, workers)
      const theirs = await measure(bare, reps)
      const settled = size === 'auto' ? `auto (${(await metric.evaluate(model, data)).batchSize})` : size
      const row = { metric: metric.constructor.name, batch: settled, workers, rows: needed, ours, bare: theirs }
      rows.push(row)
      const f = (m) =>
        `wall ${m.wall.toFixed(1)} ms, CPU ${m.cpu.toFixed(1)} ms (main ${m.main.toFixed(1)}, session${workers > 1 ? 's' : ''} ${m.busiest.toFixed(1)}, rest ${m.rest.toFixed(1)}; ${(m.cpu / m.wall).toFixed(2)} cores busy)`
      console.log(
        `  ${row.metric}, ${needed} rows, batch ${settled}, ${workers} × 1 thread: xai-eval ${f(ours)}; bare (1 thread, batch ${batch}) ${f(theirs)}`,
      )
    }
    await model.close()
    await session.release()
  }
  const load = { before: loadBefore, after: os.loadavg() }
  await mkdir('benches/results', { recursive: true })
  await writeFile(
    'benches/results/overhead.json',
    `${JSON.stringify({ machine: machine(), date: new Date().toISOString(), load, reps, rows }, null, 2)}\n`,
  )
  return { rows }
}
