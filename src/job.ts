// The main job: several attribution methods of one data set scored by several metrics, the data
// streamed in chunks of samples. Every (metric, method) pair maps each chunk to a shard keyed by its
// global first sample and reduces the shards at the end, so the numbers equal one whole-data-set
// evaluation (the protocol's guarantee) while memory holds one chunk of inputs at a time. An abort
// (Ctrl-C) stops within a batch and keeps the chunks that finished: the results cover a prefix of
// the samples and are marked partial.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'

import { compareMethods, type Comparison, rankAgreement } from './compare.js'
import type { Dataset } from './data.js'
import { XaiEvalError } from './errors.js'
import type { Model } from './models/model.js'
import { createMetric, type Metric, type MetricResult, metricClass, type Shard } from './metrics/protocol.js'
import { StepwiseImputationMetric } from './metrics/stepwise.js'
import { describeValue, parseOptions, z } from './options.js'
import './registry.js'

/** Inputs, labels and attribution maps, read by sample range. */
export interface Source {
  /** Samples in the source. */
  readonly n: number
  /** `[C, H, W]` of one input (NCHW, after any layout conversion). */
  readonly rowShape: readonly [number, number, number]
  /** Method names, in order. */
  readonly methods: readonly string[]
  /** Channels of each method's maps (1: broadcast over the input's channels). */
  readonly aChannels: Readonly<Record<string, number>>
  read(start: number, end: number): Promise<{ x: Float32Array; y: Int32Array; a: Record<string, Float32Array> }>
}

/** One metric to run: its id and the options given (defaults fill the rest). */
export interface MetricSpec {
  id: string
  options?: Record<string, unknown>
}

export interface ProgressEvent {
  /** The metric being computed, and the attribution method. */
  metric: string
  method: string
  /** Model rows of this (metric, method) on the current chunk, done and planned. */
  rows: number
  total: number
  /** Samples of the current chunk `[chunkStart, chunkEnd)`, and of the whole job. */
  chunkStart: number
  chunkEnd: number
  samples: number
  /** Fraction of the whole job done, 0…1 (pairs × chunks, rows within a pair). */
  fraction: number
  /** Model rows sent since the job started. */
  forwardRows: number
  /** `'rows'` during a pair, `'pair'` when a (metric, method) pair finished a chunk. */
  kind: 'rows' | 'pair'
}

export interface JobOptions {
  metrics: readonly MetricSpec[]
  /** First sample and count (default: all of the source). */
  first?: number
  count?: number
  /** Samples per chunk (default: as many as fit 64 MiB of inputs). */
  chunk?: number
  /** Bootstrap of the comparison. */
  reps?: number
  seed?: number
  signal?: AbortSignal
  onProgress?: (p: ProgressEvent) => void
}

export interface MetricEntry {
  id: string
  name: string
  version: number
  higherIsBetter: boolean
  cost: string
  reference: string
  /** The effective parameters (defaults included). */
  params: Record<string, unknown>
  /** `'|a|'` where the metric scores the magnitude of the maps (soundness, completeness), else `'a'`. */
  attributions: 'a' | '|a|'

  /** Result by method. */
  results: Record<string, MetricResult>
  /** Milliseconds spent on this metric (all methods). */
  ms: number
}

export interface JobResult {
  /** Samples `[first, first + samples)` are covered. */
  first: number
  samples: number
  /** Samples asked for; more than `samples` when the job was aborted. */
  requested: number
  partial: boolean
  methods: string[]
  metrics: MetricEntry[]
  comparisons: Comparison[]
  agreement: { metrics: string[]; rho: number[][] }
  /** Metrics not run, and why. */
  skipped: { id: string; reason: string }[]
  ms: number
  forwardRows: number
}

const jobOptions = z.strictObject({
  metrics: z.array(z.strictObject({ id: z.string(), options: z.record(z.string(), z.unknown()).optional() })).min(1),
  first: z.int().min(0).optional(),
  count: z.int().min(1).optional(),
  chunk: z.int().min(1).optional(),
  reps: z.int().min(100).max(1_000_000).optional(),
  seed: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
  onProgress: z.custom<(p: ProgressEvent) => void>((v) => typeof v === 'function', 'expected a function').optional(),
})

function checkSource(s: unknown): asserts s is Source {
  const o = s as Partial<Source> | null
  const ok =
    o !== null &&
    typeof o === 'object' &&
    Number.isInteger(o.n) &&
    (o.n as number) > 0 &&
    Array.isArray(o.rowShape) &&
    o.rowShape.length === 3 &&
    o.rowShape.every((d) => Number.isInteger(d) && d > 0) &&
    Array.isArray(o.methods) &&
    o.methods.length > 0 &&
    o.methods.every((m) => typeof m === 'string' && Number.isInteger(o.aChannels?.[m])) &&
    typeof o.read === 'function'
  if (!ok) {
    throw new XaiEvalError('INVALID_OPTION', 'source', 'expected a Source { n, rowShape [C, H, W], methods, aChannels, read(start, end) }')
  }
}

/** A chunk size that keeps about 64 MiB of float32 inputs (and as much of each method's maps) in memory. */
export function defaultChunk(rowShape: readonly number[]): number {
  const floats = rowShape.reduce((p, d) => p * d, 1)
  return Math.max(1, Math.floor((64 * 2 ** 20) / (4 * floats)))
}

/** Builds the metrics of `specs` (unknown ids and options are typed errors naming `--metrics`/`--set`). */
export function buildMetrics(specs: readonly MetricSpec[]): { metrics: Metric<object, MetricResult>[]; skipped: JobResult['skipped'] } {
  const metrics: Metric<object, MetricResult>[] = []
  const skipped: JobResult['skipped'] = []
  const seen = new Set<string>()
  for (const s of specs) {
    const cls = metricClass(s.id)
    if (seen.has(s.id)) throw new XaiEvalError('INVALID_OPTION', 'metrics', `'${s.id}' is listed twice`)
    seen.add(s.id)
    const missing = cls.meta.needs.filter((n) => n !== 'attributions')
    if (missing.length > 0) {
      skipped.push({ id: s.id, reason: `needs ${missing.join(' and ')}, which this run does not give` })
      continue
    }
    try {
      metrics.push(createMetric({ id: s.id, params: s.options ?? {} }))
    } catch (e) {
      if (e instanceof XaiEvalError)
        throw new XaiEvalError(e.code, `${s.id}.${e.arg === 'options' ? '' : e.arg}`.replace(/\.$/, ''), e.message.replace(/^[^:]*: /, ''))
      throw e
    }
  }
  return { metrics, skipped }
}

/** Runs every metric on every method of `source`, chunk by chunk. */
export async function runJob(model: Model, source: Source, options: JobOptions): Promise<JobResult> {
  const started = performance.now()
  checkSource(source)
  options = parseOptions(jobOptions, options)
  const { metrics, skipped } = buildMetrics(options.metrics)
  const first = options.first ?? 0
  const count = options.count ?? source.n - first
  if (!Number.isInteger(first) || first < 0 || !Number.isInteger(count) || count < 1 || first + count > source.n) {
    throw new XaiEvalError('INVALID_OPTION', 'samples', `expected a range inside 0:${source.n}, got ${first}:${first + count}`)
  }
  const chunk = options.chunk ?? defaultChunk(source.rowShape)
  const methods = [...source.methods]
  const shards = metrics.map(() => methods.map((): Shard[] => []))
  const ms = metrics.map(() => 0)
  const pairs = metrics.length * methods.length
  const chunks = Math.ceil(count / chunk)
  const [c, h, w] = source.rowShape
  let done = first
  let forwardRows = 0
  // Soundness and completeness measure attribution mass, which the paper takes non-negative: they see |a|.
  const abs = new WeakMap<Float32Array, Float32Array>()
  const magnitude = (a: Float32Array) => {
    let m = abs.get(a)
    if (!m) {
      m = a.map(Math.abs)
      abs.set(a, m)
    }
    return m
  }
  let aborted = false
  try {
    for (let k = 0, start = first; start < first + count; k++, start += chunk) {
      const end = Math.min(start + chunk, first + count)
      const { x, y, a } = await readChecked(source, start, end)
      for (const [i, metric] of metrics.entries()) {
        for (const [j, method] of methods.entries()) {
          const t0 = performance.now()
          const pairIndex = k * pairs + i * methods.length + j
          const event = (rows: number, total: number, kind: ProgressEvent['kind']): ProgressEvent => ({
            metric: metric.meta.id,
            method,
            rows,
            total,
            chunkStart: start,
            chunkEnd: end,
            samples: count,
            fraction: (pairIndex + (total > 0 ? rows / total : 1)) / (pairs * chunks),
            forwardRows: forwardRows + rows,
            kind,
          })
          const maps = metric instanceof StepwiseImputationMetric ? magnitude(a[method]!) : a[method]!
          const data: Dataset = { x, shape: [end - start, c, h, w], y, a: maps, aShape: [end - start, source.aChannels[method]!, h, w] }
          const shard = await metric.map(model, data, {
            firstSample: start,
            signal: options.signal,
            onProgress: options.onProgress ? (p) => options.onProgress!(event(p.rows, p.totalRows, 'rows')) : undefined,
          })
          shards[i]![j]!.push(shard)
          forwardRows += shard.forwardPasses
          ms[i]! += performance.now() - t0
          options.onProgress?.(event(shard.forwardPasses, shard.forwardPasses, 'pair'))
        }
      }
      done = end
    }
  } catch (e) {
    if (!(e instanceof XaiEvalError && e.code === 'ABORTED')) throw e
    aborted = true
    if (done === first) throw e
  }
  const entries: MetricEntry[] = metrics.map((metric, i) => {
    const results: Record<string, MetricResult> = {}
    methods.forEach((method, j) => {
      // Chunks of an aborted run: only those every pair finished.
      results[method] = metric.reduce(shards[i]![j]!.filter((s) => s.firstSample < done))
    })
    const meta = metric.meta
    return {
      id: meta.id,
      name: meta.name,
      version: meta.version,
      higherIsBetter: metric.higherIsBetter,
      cost: meta.cost,
      reference: meta.reference,
      params: { ...metric.params },
      attributions: metric instanceof StepwiseImputationMetric ? '|a|' : 'a',
      results,
      ms: ms[i]!,
    }
  })
  const comparisons = entries.flatMap((e) => {
    const scores = Object.fromEntries(methods.map((m) => [m, e.results[m]!.scores]))
    try {
      return [compareMethods(e.id, e.higherIsBetter, scores, { reps: options.reps, seed: options.seed })]
    } catch (err) {
      if (err instanceof XaiEvalError && err.code === 'EMPTY_INPUT') return []
      throw err
    }
  })
  return {
    first,
    samples: done - first,
    requested: count,
    partial: aborted,
    methods,
    metrics: entries,
    comparisons,
    agreement: rankAgreement(comparisons),
    skipped,
    ms: performance.now() - started,
    forwardRows,
  }
}

/** A chunk from the source, checked: the metrics would refuse bad arrays anyway, but name them less well. */
async function readChecked(source: Source, start: number, end: number) {
  const got = (await source.read(start, end)) as Partial<Awaited<ReturnType<Source['read']>>> | null
  const rows = end - start
  const floats = source.rowShape.reduce((p, d) => p * d, 1)
  if (!(got?.x instanceof Float32Array) || got.x.length !== rows * floats || got.a === null || typeof got.a !== 'object') {
    throw new XaiEvalError('SHAPE_MISMATCH', 'source', `read(${start}, ${end}) must give x of ${rows} × ${floats} floats, y and a`)
  }
  for (const m of source.methods) {
    if (!(got.a[m] instanceof Float32Array))
      throw new XaiEvalError('SHAPE_MISMATCH', `source.a.${m}`, `read(${start}, ${end}) gave no maps`)
  }
  return got as Awaited<ReturnType<Source['read']>>
}

/** Hex SHA-256 of a file, streamed. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(path)
      .on('data', (b) => hash.update(b))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject)
  })
}

/** Parses `a:b` (either side optional) into a first sample and a count within `n`. */
export function parseSamples(text: string, n: number): { first: number; count: number } {
  const m = /^(\d*):(\d*)$/.exec(text.trim())
  if (!m) throw new XaiEvalError('INVALID_OPTION', 'samples', `expected a range START:END (e.g. 0:1000), got ${describeValue(text)}`)
  const first = m[1] === '' ? 0 : Number(m[1])
  const end = m[2] === '' ? n : Number(m[2])
  if (end > n) throw new XaiEvalError('INVALID_OPTION', 'samples', `the data set has ${n} samples; ${text} ends past it`)
  if (end <= first) throw new XaiEvalError('INVALID_OPTION', 'samples', `the range ${text} is empty`)
  return { first, count: end - first }
}
