// Load test of the example server on loopback, bounded in time: starts the server in its own
// process, sends `--requests` evaluations over `--connections` keep-alive connections with
// autocannon, and reports throughput, p50/p99 latency, the server's event-loop delay p99 during
// the load (`monitorEventLoopDelay`) and its RSS along the run (flat = no leak).
//
//   node --import=tsx examples/server/load-test.ts                       # 10 000 requests
//   node --import=tsx examples/server/load-test.ts --requests 300 --json # what npm test runs
//
// Exits 1 when a target is missed: every response 200, event-loop p99 < 20 ms, RSS flat (the
// second half's peak within 10 % of the first half's).
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

import autocannon from 'autocannon'

const args = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`)
  if (i < 0) return fallback
  const v = Number(args[i + 1])
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name}: expected a positive integer`)
  return v
}
const requests = option('requests', 10_000)
const connections = option('connections', 8)
const limitS = option('time-limit', 600)
const json = args.includes('--json')

// One cheap evaluation per request (1 sample, 5 curve points): the server's overhead is what is measured.
const body = JSON.stringify({
  model: 'demo',
  metric: { id: 'srg', params: { featuresInStep: 196 } },
  data: { ref: 'demo', start: 0, count: 1 },
})

const server = spawn(process.execPath, ['--import=tsx', new URL('./main.ts', import.meta.url).pathname], {
  env: { ...process.env, PORT: '0', MAX_CONCURRENT: '2', MAX_QUEUE: String(4 * connections) },
  stdio: ['ignore', 'pipe', 'inherit'],
})
const killer = setTimeout(() => {
  console.error(`load test: over its ${limitS} s limit`)
  server.kill('SIGKILL')
  process.exit(1)
}, limitS * 1000)
const url = await new Promise<string>((resolve, reject) => {
  createInterface({ input: server.stdout! }).on('line', (line) => {
    if (line.startsWith('listening ')) resolve(line.slice('listening '.length))
  })
  server.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)))
})

interface ServerMetrics {
  responses: Record<string, number>
  eventLoopDelayMs: { p50: number; p99: number; max: number; samples: number }
  memory: { rss: number; heapUsed: number }
}
const metrics = async (reset = false): Promise<ServerMetrics> =>
  (await fetch(`${url}/metrics${reset ? '?reset=1' : ''}`)).json() as Promise<ServerMetrics>

const load = (amount: number) =>
  autocannon({
    url: `${url}/evaluate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    amount,
    timeout: 30,
  })

// Warm-up (JIT, first batches, the pool's threads), then the measured run with RSS sampled along it.
await load(Math.min(500, requests))
await metrics(true)
const rss: { at: number; mb: number; heapMb: number }[] = []
const start = performance.now()
const sampler = setInterval(async () => {
  const m = await metrics()
  rss.push({ at: (performance.now() - start) / 1000, mb: m.memory.rss / 2 ** 20, heapMb: m.memory.heapUsed / 2 ** 20 })
}, 250)
const result = await load(requests)
clearInterval(sampler)
const after = await metrics()
rss.push({ at: (performance.now() - start) / 1000, mb: after.memory.rss / 2 ** 20, heapMb: after.memory.heapUsed / 2 ** 20 })
server.kill('SIGTERM')
await new Promise((resolve) => server.once('exit', resolve))
clearTimeout(killer)

// Flat RSS: the peak of the second half of the run is within 10 % of the first half's peak (the
// first half absorbs allocator and arena warm-up; the GC's sawtooth makes single samples noisy).
const mid = rss.at(-1)!.at / 2
const peak = (samples: typeof rss) => Math.max(...samples.map((s) => s.mb))
const half = rss.filter((s) => s.at >= mid)
const firstHalf = rss.filter((s) => s.at < mid)
const rssGrowth = half.length > 0 && firstHalf.length > 0 ? (peak(half) - peak(firstHalf)) / peak(firstHalf) : 0
const non2xx = result.non2xx + result.errors + result.timeouts
const figures = {
  requests: result.requests.total,
  connections,
  durationS: result.duration,
  throughputRps: result.requests.average,
  latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  eventLoopDelayMs: after.eventLoopDelayMs,
  rssMb: {
    first: rss[0]?.mb,
    peakFirstHalf: firstHalf.length ? peak(firstHalf) : undefined,
    peakSecondHalf: half.length ? peak(half) : undefined,
    last: rss.at(-1)!.mb,
    samples: rss.length,
  },
  rssGrowthSecondHalf: rssGrowth,
  heapUsedMb: after.memory.heapUsed / 2 ** 20,
  /** RSS and heap (MiB) at each tenth of the run. */
  series: Array.from({ length: 11 }, (_, i) => rss[Math.min(rss.length - 1, Math.round((i * (rss.length - 1)) / 10))]!).map((s) => ({
    at: Number(s.at.toFixed(1)),
    rss: Number(s.mb.toFixed(1)),
    heap: Number(s.heapMb.toFixed(1)),
  })),
}
const ok = non2xx === 0 && result.requests.total >= requests && after.eventLoopDelayMs.p99 < 20 && rssGrowth < 0.1
if (json) console.log(JSON.stringify({ ...figures, ok }))
else {
  console.log(`requests ${figures.requests} over ${connections} connections in ${figures.durationS.toFixed(1)} s`)
  console.log(
    `throughput ${figures.throughputRps.toFixed(0)} req/s; latency p50 ${figures.latencyMs.p50} ms, p99 ${figures.latencyMs.p99} ms`,
  )
  console.log(`event-loop delay p99 ${after.eventLoopDelayMs.p99.toFixed(2)} ms (max ${after.eventLoopDelayMs.max.toFixed(2)} ms)`)
  console.log(
    `RSS ${figures.rssMb.first?.toFixed(1)} → ${figures.rssMb.last.toFixed(1)} MiB; peak of the second half vs the first: ${(100 * rssGrowth).toFixed(1)} % (${rss.length} samples)`,
  )
  console.log(`RSS/heap MiB by tenth: ${figures.series.map((s) => `${s.rss}/${s.heap}`).join(' ')}`)
  console.log(`non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}: ${ok ? 'targets met' : 'TARGETS MISSED'}`)
}
process.exit(ok ? 0 : 1)
