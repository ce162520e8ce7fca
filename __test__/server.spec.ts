// The example server (examples/server): every limit answers with its status and a typed body,
// never a hang or a crash, and a small load test on loopback runs clean.
import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { join } from 'node:path'

import test from 'ava'
import { FunctionModel, loadDemo, SymmetricRelevanceGain, type Model } from 'xai-eval'

import { buildServer, type ServerConfig } from '../examples/server/app.js'

const demo = loadDemo()

/** The demo's classes. */
const CLASSES = 4

/** A linear model on the demo's 1 × 28 × 28 inputs: fast and deterministic. */
const linear = () =>
  new FunctionModel(
    (x, shape) => {
      const rows = shape[0]!
      const len = x.length / rows
      const out = new Float32Array(rows * CLASSES)
      for (let r = 0; r < rows; r++) {
        for (let k = 0; k < CLASSES; k++) {
          let s = 0
          for (let i = 0; i < len; i++) s += x[r * len + i]! * (((i + k) % 7) - 3)
          out[r * CLASSES + k] = s / len
        }
      }
      return out
    },
    { maxBatchSize: 16 },
  )

/** A model whose calls wait until `release()`; `started` counts calls. */
function gated(): { model: Model; release: () => void; started: () => number } {
  let open: () => void = () => {}
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  let calls = 0
  const model = new FunctionModel(async (_x, shape) => {
    calls++
    await gate
    return new Float32Array(shape[0]! * CLASSES)
  })
  return { model, release: () => open(), started: () => calls }
}

async function server(config: Partial<ServerConfig> & { models: Record<string, Model> }) {
  const d = await demo
  return buildServer({ data: { demo: { x: d.x, shape: d.shape, y: d.y, attributions: d.attributions } }, ...config })
}

const byRef = (count: number, metric: unknown = { id: 'srg', params: { featuresInStep: 196 } }) => ({
  model: 'm',
  metric,
  data: { ref: 'demo', start: 0, count },
})

test('POST /evaluate with the data in the body (numbers or base64) or by reference gives the library result', async (t) => {
  const d = await demo
  const app = await server({ models: { m: linear() } })
  t.teardown(() => app.close())
  const n = 2
  const px = 28 * 28
  const data = {
    x: d.x.subarray(0, n * px),
    shape: [n, 1, 28, 28] as const,
    y: d.y.subarray(0, n),
    a: d.attributions.gradient!.subarray(0, n * px),
  }
  const expected = await new SymmetricRelevanceGain({ featuresInStep: 196 }).evaluate(linear(), { ...data, aShape: [n, 1, 28, 28] })
  const b64 = (f: Float32Array) => Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64')
  const bodies = [
    {
      ...byRef(n),
      data: { x: Array.from(data.x), shape: [n, 1, 28, 28], y: Array.from(data.y), a: Array.from(data.a), aShape: [n, 1, 28, 28] },
    },
    { ...byRef(n), data: { x: b64(data.x), shape: [n, 1, 28, 28], y: Array.from(data.y), a: b64(data.a), aShape: [n, 1, 28, 28] } },
    byRef(n),
  ]
  for (const body of bodies) {
    const res = await app.inject({ method: 'POST', url: '/evaluate', payload: body })
    t.is(res.statusCode, 200, res.body)
    t.is(res.json().mean, expected.mean)
  }
})

test('bad requests are 4xx with a typed body: unknown model or data, bad params, bad schema', async (t) => {
  const app = await server({ models: { m: linear() } })
  t.teardown(() => app.close())
  const cases: [unknown, number, string][] = [
    [{ ...byRef(1), model: 'nope' }, 404, 'UNKNOWN_MODEL'],
    [{ ...byRef(1), data: { ref: 'nope' } }, 404, 'UNKNOWN_DATA'],
    [byRef(1, { id: 'srg', params: { featuresInStepp: 3 } }), 400, 'INVALID_OPTION'],
    [byRef(1, { id: 'deletion', params: { baseline: { blur: 1e9 } } }), 400, 'INVALID_OPTION'],
    [byRef(1, { id: 'no-such-metric' }), 400, 'INVALID_OPTION'],
    [{ ...byRef(1), data: { ref: 'demo', start: 60, count: 10 } }, 400, 'INVALID_OPTION'],
    [{ ...byRef(1), extra: 1 }, 400, 'FST_ERR_VALIDATION'],
    [{ ...byRef(1), data: { x: [1, 2], shape: [1, 1, 1, 1], y: [0], a: [1], aShape: [1, 1, 1, 1] } }, 400, 'SHAPE_MISMATCH'],
  ]
  for (const [payload, status, code] of cases) {
    const res = await app.inject({ method: 'POST', url: '/evaluate', payload: payload as object })
    t.is(res.statusCode, status, res.body)
    t.is(res.json().code, code, res.body)
  }
})

test('413 above the body limit and above the data limit, before any evaluation', async (t) => {
  const model = linear()
  const app = await server({ models: { m: model }, bodyLimit: 64 << 10, maxDataBytes: 16 << 10 })
  t.teardown(() => app.close())
  const big = { ...byRef(1), data: { x: 'A'.repeat(100 << 10), shape: [1, 1, 1, 1], y: [0], a: 'AAAA', aShape: [1, 1, 1, 1] } }
  t.is((await app.inject({ method: 'POST', url: '/evaluate', payload: big })).statusCode, 413)
  const overData = { ...byRef(1), data: { x: 'A'.repeat(32 << 10), shape: [1, 1, 1, 1], y: [0], a: 'AAAA', aShape: [1, 1, 1, 1] } }
  const res = await app.inject({ method: 'POST', url: '/evaluate', payload: overData })
  t.is(res.statusCode, 413)
  t.is(res.json().code, 'TOO_LARGE')
  t.is((await app.inject({ method: 'POST', url: '/evaluate', payload: byRef(64) })).statusCode, 413)
  t.is(model.stats.forwardPasses, 0)
})

test('a full queue is a 429; the queued and running requests finish once the model answers', async (t) => {
  const { model, release, started } = gated()
  const app = await server({ models: { m: model }, maxConcurrent: 1, maxQueue: 1 })
  t.teardown(() => app.close())
  const first = app.inject({ method: 'POST', url: '/evaluate', payload: byRef(1) })
  while (started() === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const second = app.inject({ method: 'POST', url: '/evaluate', payload: byRef(1) })
  await new Promise((resolve) => setTimeout(resolve, 20))
  const third = await app.inject({ method: 'POST', url: '/evaluate', payload: byRef(1) })
  t.is(third.statusCode, 429)
  t.is(third.json().code, 'QUEUE_FULL')
  const m = (await app.inject({ method: 'GET', url: '/metrics' })).json()
  t.is(m.running, 1)
  t.is(m.queued, 1)
  release()
  t.is((await first).statusCode, 200)
  t.is((await second).statusCode, 200)
})

test('the time budget ends a hanging evaluation (and a wait in the queue) with 504 ABORTED', async (t) => {
  const { model, release } = gated()
  t.teardown(release)
  const app = await server({ models: { m: model }, maxConcurrent: 1, budgetMs: 150 })
  t.teardown(() => app.close())
  const [running, queued] = await Promise.all([
    app.inject({ method: 'POST', url: '/evaluate', payload: byRef(1) }),
    app.inject({ method: 'POST', url: '/evaluate', payload: byRef(1) }),
  ])
  for (const res of [running, queued]) {
    t.is(res.statusCode, 504, res.body)
    t.is(res.json().code, 'ABORTED')
  }
  const m = (await app.inject({ method: 'GET', url: '/metrics' })).json()
  t.is(m.running, 0)
  t.is(m.queued, 0)
})

test('a client that disconnects aborts its evaluation and frees its slot', async (t) => {
  const { model, release, started } = gated()
  t.teardown(release)
  const app = await server({ models: { m: model }, maxConcurrent: 1, budgetMs: 60_000 })
  t.teardown(() => app.close())
  const url = new URL(await app.listen({ port: 0, host: '127.0.0.1' }))
  const req = request({
    host: url.hostname,
    port: url.port,
    path: '/evaluate',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  })
  req.on('error', () => {})
  req.end(JSON.stringify(byRef(1)))
  while (started() === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  req.destroy()
  let running = 1
  for (let i = 0; i < 200 && running > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    running = (await app.inject({ method: 'GET', url: '/metrics' })).json().running
  }
  t.is(running, 0, 'the slot must be freed long before the 60 s budget')
})

test('health and metrics; closing the server closes the shared model', async (t) => {
  const model = linear()
  const app = await server({ models: { m: model } })
  t.is((await app.inject({ method: 'POST', url: '/evaluate', payload: byRef(2) })).statusCode, 200)
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.deepEqual(health.json(), { status: 'ok', models: ['m'] })
  const m = (await app.inject({ method: 'GET', url: '/metrics' })).json()
  t.is(m.responses['200'], 2) // the evaluation and the health check
  t.true(m.memory.rss > 0)
  t.true(m.eventLoopDelayMs.samples >= 0)
  t.is(m.models.m.rows, model.stats.rows)
  await app.close()
  await t.throwsAsync(model.forward(new Float32Array(784), 1, [1, 28, 28]), { message: /closed/ })
})

test('load test on loopback at a small size: every response 200, figures reported', async (t) => {
  const script = join(import.meta.dirname, '..', 'examples', 'server', 'load-test.ts')
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import=tsx', script, '--requests', '400', '--connections', '4', '--time-limit', '120', '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => {
      stdout += b
    })
    child.stderr.on('data', (b: Buffer) => {
      stderr += b
    })
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
  const figures = JSON.parse(out.stdout.trim().split('\n').at(-1)!)
  const { series: _series, ...summary } = figures
  t.log(summary)
  // Correctness only: the latency, event-loop and RSS targets are checked by the full run
  // (docs/x11b.md), not on a shared CI machine at this size.
  t.true(figures.requests >= 400, out.stderr)
  t.is(figures.non2xx, 0)
  t.is(figures.errors, 0)
  t.is(figures.timeouts, 0)
  t.true(figures.eventLoopDelayMs.samples > 0)
})
