// Every metric by its stable id. The CLI, the report and distributed workers build metrics from
// `{ id, params }` here and read their meta (direction, needs, version, cost) from here, so a
// metric's knowledge lives in its class alone.
import { XaiEvalError } from './errors.js'
import { Completeness } from './metrics/completeness.js'
import { Deletion, Insertion } from './metrics/deletion-insertion.js'
import { Infidelity } from './metrics/infidelity.js'
import { PixelFlipping } from './metrics/pixel-flipping.js'
import { fromJSON, type Metric, type MetricMeta, type MetricResult } from './metrics/protocol.js'
import { Road } from './metrics/road.js'
import { Soundness } from './metrics/soundness.js'
import { SymmetricRelevanceGain } from './metrics/srg.js'
import { Sufficiency } from './metrics/sufficiency.js'
import { closest } from './options.js'
import { decode } from './serial.js'

/** A metric class: constructible from its options, with its meta. */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds classes of every option type.
export type MetricClass = (new (options?: any) => Metric<any, MetricResult>) & { readonly meta: MetricMeta }

const classes: MetricClass[] = [
  SymmetricRelevanceGain,
  PixelFlipping,
  Deletion,
  Insertion,
  Road,
  Soundness,
  Completeness,
  Infidelity,
  Sufficiency,
]

/** id → class, in the order the CLI and the report list them. */
export const registry: ReadonlyMap<string, MetricClass> = new Map(classes.map((c) => [c.meta.id, c]))

/** Adds a metric class (e.g. one of your own) under its `meta.id`. */
export function register(cls: MetricClass): void {
  if (typeof cls !== 'function' || typeof cls.meta?.id !== 'string') {
    throw new XaiEvalError('INVALID_OPTION', 'cls', 'expected a metric class with a static meta.id')
  }
  if (registry.has(cls.meta.id)) throw new XaiEvalError('INVALID_OPTION', 'cls', `a metric '${cls.meta.id}' is registered already`)
  ;(registry as Map<string, MetricClass>).set(cls.meta.id, cls)
}

/** The class registered under `id`, or a typed error suggesting the closest id. */
export function metricClass(id: unknown): MetricClass {
  const cls = typeof id === 'string' ? registry.get(id) : undefined
  if (!cls) {
    const ids = [...registry.keys()]
    const hint = typeof id === 'string' ? closest(id, ids) : undefined
    throw new XaiEvalError(
      'INVALID_OPTION',
      'id',
      `unknown metric ${JSON.stringify(id)}${hint ? ` (did you mean '${hint}'?)` : ''}; one of ${ids.join(', ')}`,
    )
  }
  return cls
}

/** Builds a metric from `{ id, params }` (what `metric.toJSON()` gives; a version, if given, must match). */
export function createMetric(spec: { id: string; params?: unknown; version?: number } | string): Metric<object, MetricResult> {
  const s = typeof spec === 'string' ? (JSON.parse(spec) as unknown) : spec
  if (s === null || typeof s !== 'object') throw new XaiEvalError('INVALID_OPTION', 'spec', 'expected { id, params }')
  const { id, params, version } = s as { id: unknown; params?: unknown; version?: unknown }
  const cls = metricClass(id)
  if (version !== undefined && version !== cls.meta.version) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      'version',
      `'${cls.meta.id}' is at version ${cls.meta.version}, the spec asks for ${String(version)}`,
    )
  }
  return new cls(decode(params))
}

/** Rebuilds a result from its JSON (the text or the parsed object). */
export function resultFromJSON<R extends MetricResult = MetricResult>(json: unknown): R {
  const r = fromJSON<R>(json)
  metricClass(r.metric)
  return r
}
