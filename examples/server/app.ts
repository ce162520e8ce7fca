// An evaluation service on fastify: `POST /evaluate` runs one metric (built from `{ id, params }`
// by the registry) on one shared model, with the data in the body or by reference to a data set
// the server holds. What keeps it up under load:
// - bounded concurrency: `maxConcurrent` evaluations run, `maxQueue` wait; one more is a 429;
// - a time budget per request (an AbortSignal that also fires when the client goes away), in the
//   queue as well as in the evaluation: 504 when it runs out;
// - bounded memory per request: bodies above `bodyLimit` and referenced slices above
//   `maxDataBytes` are a 413 before anything is allocated for them;
// - one model pool shared by all requests, closed once on shutdown (requests still running then
//   get a 503 with CLOSED);
// - `GET /health` and `GET /metrics` (counts by status, queue, event-loop delay, memory). The delay
//   is sampled by a 1 ms timer, so its figures include that 1 ms.
import { monitorEventLoopDelay } from 'node:perf_hooks'

import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { createMetric, type Dataset, type Model, XaiEvalError } from 'xai-eval'

/** A data set the server holds, referenced by id from a request (`data: { ref, start, count }`). */
export interface HeldData {
  x: Float32Array
  /** `[N, C, H, W]`. */
  shape: readonly [number, number, number, number]
  y: Int32Array
  /** Attributions `[N, 1, H, W]` by method. */
  attributions: Record<string, Float32Array>
}

export interface ServerConfig {
  /** The shared models by id (loaded by the caller, closed by the server on close). */
  models: Record<string, Model>
  /** Data sets requests may reference by id. */
  data?: Record<string, HeldData>
  /** Evaluations running at once (default 2). */
  maxConcurrent?: number
  /** Requests waiting for a slot; one more is refused with 429 (default 16). */
  maxQueue?: number
  /** Time budget per request, queue included, in ms (default 10 000). */
  budgetMs?: number
  /** Largest request body in bytes (default 8 MiB): 413 above. */
  bodyLimit?: number
  /** Largest input (`x` and `a`, as Float32) a request may evaluate, in bytes (default 32 MiB): 413 above. */
  maxDataBytes?: number
  logger?: boolean
}

/** A float array in JSON: numbers, or the base64 of little-endian Float32 values. */
type Floats = number[] | string

interface EvaluateBody {
  model: string
  metric: { id: string; params?: unknown }
  data:
    | { x: Floats; shape: number[]; y: number[]; a: Floats; aShape: number[] }
    | { ref: string; start?: number; count?: number; attribution?: string }
}

const evaluateSchema = {
  body: {
    type: 'object',
    required: ['model', 'metric', 'data'],
    additionalProperties: false,
    properties: {
      model: { type: 'string', maxLength: 200 },
      metric: {
        type: 'object',
        required: ['id'],
        additionalProperties: false,
        properties: { id: { type: 'string', maxLength: 200 }, params: { type: 'object' } },
      },
      data: {
        oneOf: [
          {
            type: 'object',
            required: ['x', 'shape', 'y', 'a', 'aShape'],
            additionalProperties: false,
            properties: {
              x: { oneOf: [{ type: 'array', items: { type: 'number' } }, { type: 'string' }] },
              a: { oneOf: [{ type: 'array', items: { type: 'number' } }, { type: 'string' }] },
              shape: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 4, maxItems: 4 },
              aShape: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 4, maxItems: 4 },
              y: { type: 'array', items: { type: 'integer', minimum: 0 } },
            },
          },
          {
            type: 'object',
            required: ['ref'],
            additionalProperties: false,
            properties: {
              ref: { type: 'string', maxLength: 200 },
              start: { type: 'integer', minimum: 0 },
              count: { type: 'integer', minimum: 1 },
              attribution: { type: 'string', maxLength: 200 },
            },
          },
        ],
      },
    },
  },
} as const

/** An HTTP error with a body `{ code, arg?, message }`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly arg?: string,
  ) {
    super(message)
  }
}

/** HTTP status of an XaiEvalError: the caller's input is a 400; an abort is the budget's 504. */
function statusOf(e: XaiEvalError): number {
  switch (e.code) {
    case 'ABORTED':
      return 504
    case 'CLOSED':
      return 503
    case 'MODEL_OUTPUT':
    case 'MODEL_LOAD':
    case 'INTERNAL':
    case 'NATIVE_LOAD':
      return 500
    default:
      return 400
  }
}

/**
 * Slots for `max` evaluations at once and a queue of at most `maxQueue` waiters. A waiter whose
 * signal fires leaves the queue at once.
 */
class Gate {
  running = 0
  private readonly waiting: { resolve: () => void; reject: (e: unknown) => void; signal: AbortSignal; onAbort: () => void }[] = []

  constructor(
    private readonly max: number,
    private readonly maxQueue: number,
  ) {}

  get queued(): number {
    return this.waiting.length
  }

  /** Resolves when a slot is free; 429 if the queue is full, ABORTED if `signal` fires first. */
  acquire(signal: AbortSignal): Promise<void> {
    if (this.running < this.max) {
      this.running++
      return Promise.resolve()
    }
    if (this.waiting.length >= this.maxQueue) {
      return Promise.reject(new HttpError(429, 'QUEUE_FULL', `${this.running} evaluations run and ${this.waiting.length} wait`))
    }
    return new Promise((resolve, reject) => {
      const entry = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.waiting.splice(this.waiting.indexOf(entry), 1)
          reject(new XaiEvalError('ABORTED', 'signal', 'the time budget ran out in the queue'))
        },
      }
      signal.addEventListener('abort', entry.onAbort, { once: true })
      this.waiting.push(entry)
    })
  }

  release(): void {
    const next = this.waiting.shift()
    if (next) {
      next.signal.removeEventListener('abort', next.onAbort)
      next.resolve() // the slot passes on: `running` is unchanged
    } else this.running--
  }
}

function floats(name: string, v: Floats, maxBytes: number): Float32Array {
  if (typeof v === 'string') {
    // base64 is 4 characters per 3 bytes: the decoded size is known before decoding.
    if ((v.length / 4) * 3 > maxBytes) throw new HttpError(413, 'TOO_LARGE', `${name} is above ${maxBytes} bytes`)
    const bytes = Buffer.from(v, 'base64')
    if (bytes.length % 4 !== 0) throw new HttpError(400, 'INVALID_OPTION', `${name}: base64 of Float32 values expected`, name)
    const out = new Float32Array(bytes.length / 4)
    new Uint8Array(out.buffer).set(bytes)
    return out
  }
  if (v.length * 4 > maxBytes) throw new HttpError(413, 'TOO_LARGE', `${name} is above ${maxBytes} bytes`)
  return Float32Array.from(v)
}

function dataOf(body: EvaluateBody['data'], held: Record<string, HeldData>, maxBytes: number): Dataset {
  if ('ref' in body) {
    const set = held[body.ref]
    if (!set) throw new HttpError(404, 'UNKNOWN_DATA', `no data set '${body.ref}'; known: ${Object.keys(held).join(', ')}`, 'data.ref')
    const [n, c, h, w] = set.shape
    const start = body.start ?? 0
    const count = body.count ?? n - start
    if (start + count > n)
      throw new HttpError(400, 'INVALID_OPTION', `samples [${start}, ${start + count}) exceed the ${n} held`, 'data.count')
    if (count * (c + 1) * h * w * 4 > maxBytes) throw new HttpError(413, 'TOO_LARGE', `${count} samples are above ${maxBytes} bytes`)
    const method = body.attribution ?? Object.keys(set.attributions)[0]!
    const a = set.attributions[method]
    if (!a) throw new HttpError(404, 'UNKNOWN_DATA', `no attribution '${method}' for '${body.ref}'`, 'data.attribution')
    return {
      x: set.x.subarray(start * c * h * w, (start + count) * c * h * w),
      shape: [count, c, h, w],
      y: set.y.subarray(start, start + count),
      a: a.subarray(start * h * w, (start + count) * h * w),
      aShape: [count, 1, h, w],
    }
  }
  const x = floats('data.x', body.x, maxBytes)
  const a = floats('data.a', body.a, maxBytes - x.byteLength)
  return { x, shape: body.shape as Dataset['shape'], y: body.y, a, aShape: body.aShape as Dataset['aShape'] }
}

/** The server, ready to `listen`; its `close()` also closes the models. */
export function buildServer(config: ServerConfig): FastifyInstance {
  const maxConcurrent = config.maxConcurrent ?? 2
  const budgetMs = config.budgetMs ?? 10_000
  const maxDataBytes = config.maxDataBytes ?? 32 << 20
  const held = config.data ?? {}
  const gate = new Gate(maxConcurrent, config.maxQueue ?? 16)
  const app = Fastify({
    bodyLimit: config.bodyLimit ?? 8 << 20,
    logger: config.logger ?? false,
    // fastify's defaults strip unknown keys (which breaks `oneOf` between the two data forms) and
    // coerce types: both off, so a request is checked as sent.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  })

  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const counts: Record<string, number> = {}
  let closing = false

  const send = (reply: FastifyReply, status: number, body: unknown) => {
    counts[status] = (counts[status] ?? 0) + 1
    return reply.code(status).send(body)
  }

  app.setErrorHandler((e: Error & { statusCode?: number; code?: string }, _request, reply) => {
    if (e instanceof HttpError) return send(reply, e.status, { code: e.code, arg: e.arg, message: e.message })
    if (e instanceof XaiEvalError) return send(reply, statusOf(e), { code: e.code, arg: e.arg, message: e.message })
    const status = e.statusCode ?? 500
    // fastify's own: 413 for a body above bodyLimit, 400 for JSON or schema errors.
    return send(reply, status, { code: e.code ?? 'INTERNAL', message: status < 500 ? e.message : 'internal error' })
  })

  app.post<{ Body: EvaluateBody }>('/evaluate', { schema: evaluateSchema }, async (request, reply) => {
    if (closing) throw new HttpError(503, 'CLOSED', 'the server is shutting down')
    const model = config.models[request.body.model]
    if (!model) throw new HttpError(404, 'UNKNOWN_MODEL', `no model '${request.body.model}'`, 'model')
    // Inputs are checked (and a 4xx sent) before the request takes a slot or waits for one.
    const metric = createMetric(request.body.metric)
    const data = dataOf(request.body.data, held, maxDataBytes)

    // One controller per request, fired by the budget's timer or by the response's 'close' before
    // it finished (the client went away); both are cleared when the request ends, so nothing
    // outlives it (AbortSignal.timeout would keep every signal alive for the whole budget).
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new Error(`over the ${budgetMs} ms budget`)), budgetMs)
    const onGone = () => {
      if (!reply.raw.writableFinished) controller.abort(new Error('the client went away'))
    }
    reply.raw.once('close', onGone)
    const { signal } = controller
    try {
      await gate.acquire(signal)
      try {
        const result = await metric.evaluate(model, data, { signal })
        return send(reply, 200, result)
      } finally {
        gate.release()
      }
    } finally {
      clearTimeout(timer)
      reply.raw.off('close', onGone)
    }
  })

  app.get('/health', async (_request, reply) =>
    send(reply, closing ? 503 : 200, { status: closing ? 'closing' : 'ok', models: Object.keys(config.models) }),
  )

  /** Counters since start; the event-loop delay since the last `?reset=1`. */
  app.get<{ Querystring: { reset?: string } }>('/metrics', async (request) => {
    const ms = (ns: number) => ns / 1e6
    const memory = process.memoryUsage()
    const body = {
      responses: { ...counts },
      running: gate.running,
      queued: gate.queued,
      eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max), samples: delay.count },
      memory: { rss: memory.rss, heapUsed: memory.heapUsed, external: memory.external, arrayBuffers: memory.arrayBuffers },
      models: Object.fromEntries(Object.entries(config.models).map(([id, m]) => [id, { ...m.stats }])),
    }
    if (request.query.reset === '1') delay.reset()
    return body
  })

  app.addHook('onClose', async () => {
    closing = true
    delay.disable()
    await Promise.all(Object.values(config.models).map((m) => m.close()))
  })
  return app
}
