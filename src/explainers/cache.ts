// Explanations of the same (explainer, input, target) are computed once per evaluation run: every
// metric that re-explains the data set's inputs (the facade's sensitivity, randomization and
// localization metrics) gets the first answer back. A row is recognised by a 128-bit hash of its
// exact bytes, so a hit is the very attribution the explainer gave for those bytes and that class.

import { XaiEvalError } from '../errors.js'
import { describeValue } from '../options.js'
import { rowKeys } from '../row-cache.js'
import { checkExplainer, type Explainer, type ExplainerLike, type NamedExplainer, underlyingModel } from './explainer.js'

/** Default memory bound: 256 MiB of attributions. */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024

/**
 * Attributions by (explainer, input row bytes, target), least recently used evicted beyond
 * `maxBytes`. Use {@link wrap} to get an explainer that consults the cache: hand the same wrapped
 * explainer to every metric of a run.
 */
export class ExplanationCache {
  private readonly entries = new Map<string, Float32Array>()
  private readonly ids = new WeakMap<object, number>()
  private bytes = 0
  /** Rows answered from the cache. */
  hits = 0
  /** Rows the explainers computed. */
  misses = 0

  constructor(readonly maxBytes = DEFAULT_CACHE_BYTES) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new XaiEvalError('INVALID_OPTION', 'maxBytes', `expected a non-negative integer, got ${describeValue(maxBytes)}`)
    }
  }

  /** Entries (rows) held. */
  get size(): number {
    return this.entries.size
  }

  /** Bytes of attributions held. */
  get heldBytes(): number {
    return this.bytes
  }

  clear(): void {
    this.entries.clear()
    this.bytes = 0
  }

  /**
   * `e` with this cache in front: only rows (model, input bytes, target) it has not answered before reach
   * `e`, in one call. Rows answered from the cache keep the channel count they were computed with.
   */
  wrap(e: ExplainerLike): NamedExplainer {
    const inner = checkExplainer(e)
    let id = this.ids.get(inner.source)
    if (id === undefined) {
      id = nextId++
      this.ids.set(inner.source, id)
    }
    const explain: Explainer = async (model, x, shape, targets, options) => {
      // Keyed by the model too: the same input on another model (e.g. a weight-randomized copy
      // in the parameter randomization test) is another explanation.
      // A metric's counting wrapper (countingModel) is keyed as the model it counts for.
      const key = underlyingModel(model)
      let modelId = this.ids.get(key)
      if (modelId === undefined) {
        modelId = nextId++
        this.ids.set(key, modelId)
      }
      const prefix = `${id}|${modelId}|`
      const [n, c, h, w] = shape
      const len = c * h * w
      const keys = rowKeys(x, n).map((key, r) => `${prefix}${key}|${targets[r]}`)
      const known = keys.map((k) => this.get(k))
      const missing = known.flatMap((v, i) => (v ? [] : [i]))
      if (missing.length > 0) {
        const sub = new Float32Array(missing.length * len)
        const subTargets = new Int32Array(missing.length)
        const subSamples = options.samples ? new Int32Array(missing.length) : undefined
        missing.forEach((r, j) => {
          sub.set(x.subarray(r * len, (r + 1) * len), j * len)
          subTargets[j] = targets[r]!
          if (subSamples) subSamples[j] = options.samples![r]!
        })
        const { a } = await inner.explain(model, sub, [missing.length, c, h, w], subTargets, {
          ...(options.signal ? { signal: options.signal } : {}),
          ...(subSamples ? { samples: subSamples } : {}),
        })
        const per = a.length / missing.length
        missing.forEach((r, j) => {
          const v = a.slice(j * per, (j + 1) * per)
          known[r] = v
          this.set(keys[r]!, v)
        })
        this.misses += missing.length
      }
      this.hits += n - missing.length
      const per = known[0]!.length
      if (known.some((v) => v!.length !== per)) {
        throw new XaiEvalError(
          'SHAPE_MISMATCH',
          `explainer '${inner.name}'`,
          'answered some rows with [C, H, W] and others with [1, H, W] maps',
        )
      }
      const out = new Float32Array(n * per)
      known.forEach((v, r) => {
        out.set(v!, r * per)
      })
      return out
    }
    return Object.freeze({ name: inner.name, explain, batchSize: inner.batchSize })
  }

  private get(key: string): Float32Array | undefined {
    const v = this.entries.get(key)
    if (v) {
      // Most recently used last: Map keeps insertion order.
      this.entries.delete(key)
      this.entries.set(key, v)
    }
    return v
  }

  private set(key: string, v: Float32Array): void {
    if (v.byteLength > this.maxBytes) return
    const old = this.entries.get(key)
    if (old) {
      this.bytes -= old.byteLength
      this.entries.delete(key)
    }
    this.entries.set(key, v)
    this.bytes += v.byteLength
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break
      this.entries.delete(k)
      this.bytes -= e.byteLength
    }
  }
}

let nextId = 0
