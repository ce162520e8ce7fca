// Distributed runs on one machine: throughput of 1, 2 and 3 local `xai-eval worker` processes on
// soundness (CPU-bound shards) over the demo set tiled 8 times, the reduce time, and the queue's
// overhead per shard (wall time minus the workers' own shard times, over many small shards).
// Needs redis-server on the PATH (Debian: apt-get install -y redis-server).
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Deletion, evaluateDistributed, loadDemo, OnnxModel, Soundness } from 'xai-eval'

import { machine } from './common.js'

export const name = 'distributed'

const cli = join(import.meta.dirname, '..', 'dist', 'cli.js')
const REPEAT = 8

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

function started(proc, marker) {
  return new Promise((resolve, reject) => {
    let out = ''
    const on = (b) => {
      out += b.toString()
      if (out.includes(marker)) resolve()
    }
    proc.stdout?.on('data', on)
    proc.stderr?.on('data', on)
    proc.once('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)))
  })
}

function spawnWorker(url) {
  const proc = spawn(process.execPath, [cli, 'worker', '--redis', url], { stdio: ['ignore', 'ignore', 'pipe'] })
  const shardMs = []
  proc.stderr.on('data', (b) => {
    for (const m of b.toString().matchAll(/ in (\d+) ms/g)) shardMs.push(Number(m[1]))
  })
  return { proc, shardMs, ready: started(proc, 'waiting for shard jobs') }
}

function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve()
    proc.once('exit', resolve)
    proc.kill('SIGTERM')
  })
}

export async function run() {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'xai-eval-bench-redis-'))
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir])
  await started(redis, 'Ready to accept connections')
  const url = `redis://127.0.0.1:${port}`
  const demo = await loadDemo()
  const n = demo.shape[0] * REPEAT
  const data = { reference: { demo: true, repeat: REPEAT, magnitude: true } }
  const submit = (metric, shardSize) =>
    evaluateDistributed({ connection: url, model: { path: demo.modelPath }, data, metrics: [metric], methods: ['occlusion'], shardSize })
  const figures = { machine: machine(), samples: n, workers: [] }
  try {
    // Single process, same model options (model loading left out).
    const model = await OnnxModel.load(demo.modelPath)
    const [, c, h, w] = demo.shape
    const tile = (v) => {
      const out = new v.constructor(v.length * REPEAT)
      for (let i = 0; i < REPEAT; i++) out.set(v, i * v.length)
      return out
    }
    const local = {
      x: tile(demo.x),
      shape: [n, c, h, w],
      y: tile(demo.y),
      a: tile(demo.attributions.occlusion).map(Math.abs),
      aShape: [n, 1, h, w],
    }
    await new Soundness().evaluate(model, local)
    let t = performance.now()
    await new Soundness().evaluate(model, local)
    figures.singleProcessMs = performance.now() - t
    await model.close()

    let shardSize = 64
    for (const k of [1, 2, 3]) {
      const workers = Array.from({ length: k }, () => spawnWorker(url))
      await Promise.all(workers.map((wk) => wk.ready))
      // Cold: every worker loads the model within its first shard. Warm: a second run (other shard ids).
      t = performance.now()
      const cold = await submit(new Soundness(), shardSize++)
      const coldMs = performance.now() - t
      t = performance.now()
      const warm = await submit(new Soundness(), shardSize++)
      const warmMs = performance.now() - t
      figures.workers.push({
        workers: k,
        shards: warm.shards,
        coldMs,
        warmMs,
        samplesPerSecond: (n / warmMs) * 1000,
        reduceMs: warm.reduceMs,
        coldReduceMs: cold.reduceMs,
      })
      if (k === 1) {
        // Queue overhead: 64 shards of 8 samples of a cheap metric on one (warm) worker.
        const before = workers[0].shardMs.length
        t = performance.now()
        const many = await submit(new Deletion(), 8)
        const wall = performance.now() - t
        const compute = workers[0].shardMs.slice(before).reduce((a, b) => a + b, 0)
        figures.overhead = {
          shards: many.shards,
          wallMs: wall,
          shardComputeMs: compute,
          reduceMs: many.reduceMs,
          perShardMs: (wall - compute - many.reduceMs) / many.shards,
        }
      }
      await Promise.all(workers.map((wk) => stop(wk.proc)))
    }
  } finally {
    await stop(redis)
  }
  console.log(JSON.stringify(figures, null, 2))
  writeFileSync(join(import.meta.dirname, 'results', 'distributed.json'), `${JSON.stringify(figures, null, 2)}\n`)
  return figures
}

if (import.meta.url === `file://${process.argv[1]}`) await run()
