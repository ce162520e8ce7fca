// The demo's second question: which explanation *method* is best on the embedded model, and is
// that real? The built-in gradient-free explainers (occlusion, RISE, permutation Shapley) are run
// on the demo's inputs next to its precomputed maps, and every method is scored through the
// `ExplanationMetrics` facade: deletion, insertion, sensitivity-N, the parameter and data
// randomization checks and the pointing game on the demo's object masks. Each method's
// explanations are computed once and shared by every metric (the facade's explanation cache);
// precomputed maps cannot explain new inputs, so their re-explaining cells are n/a.
//
// The settings are the demo's preset, chosen to keep `xai-eval demo` within seconds on two cores:
// coarse occlusion (4×4 windows), 100 RISE masks, 4 Shapley permutations of 7×7 patches,
// 5 noisy copies per sample for sensitivity-N (autotimm's default is 50), its maps normalised by
// their peak so that methods with maps of different scales compare.
import type { DemoData } from './data.js'
import { XaiEvalError } from './errors.js'
import type { NamedExplainer } from './explainers/explainer.js'
import { occlusion, rise, shapley } from './explainers/builtin.js'
import { type ComparisonTable, ExplanationMetrics, type FacadeProgress, type Method } from './facade.js'
import type { Model } from './models/model.js'

/** The built-in explainers the demo can run, by name. */
export const DEMO_EXPLAINERS = ['occlusion', 'rise', 'shapley'] as const
export type DemoExplainer = (typeof DEMO_EXPLAINERS)[number]

/** The demo's explainer settings (printed with the table). */
export function demoExplainerSettings(seed: number): Record<DemoExplainer, Record<string, unknown>> {
  return {
    occlusion: { patch: 4, stride: 4, baseline: 0 },
    rise: { masks: 100, cell: 7, p: 0.5, seed, baseline: 0 },
    shapley: { patch: 7, permutations: 4, seed, baseline: 0 },
  }
}

/** Options of the facade metrics the demo sets (the rest are each metric's defaults). */
export const DEMO_FACADE_OPTIONS = { sensitivity: { nSamples: 5, normalise: true } } as const

export interface DemoComparisonOptions {
  /** Samples `[first, first + count)` of the demo. */
  first: number
  count: number
  /** Built-in explainers to run next to the precomputed maps (default all three). */
  explainers?: readonly DemoExplainer[]
  seed?: number
  /** Bootstrap resamples (default 2000). */
  reps?: number
  signal?: AbortSignal
  onProgress?: (p: FacadeProgress) => void
}

export interface DemoComparison {
  table: ComparisonTable
  /** Settings of each built-in explainer run. */
  explainers: Partial<Record<DemoExplainer, Record<string, unknown>>>
  /** Rows the demo model evaluated for this comparison (explainers and metrics; the randomized copies' rows are not counted). */
  modelRows: number
  ms: number
}

/** Suffix of a precomputed method's name in the table: `integrated-gradients (maps)`. */
export const MAPS_SUFFIX = ' (maps)'

/**
 * Runs the demo's methods × metrics comparison on `model` (the demo model, loaded by the caller).
 * Precomputed maps appear as `NAME (maps)`, built-in explainers by their name.
 */
export async function compareDemoMethods(model: Model, demo: DemoData, options: DemoComparisonOptions): Promise<DemoComparison> {
  const t0 = performance.now()
  const { first, count } = options
  const [n, c, h, w] = demo.shape
  if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 1 || first + count > n) {
    throw new XaiEvalError('INVALID_OPTION', 'samples', `expected samples within 0…${n - 1}, got ${first}…${first + count - 1}`)
  }
  const seed = options.seed ?? 0
  const chosen = options.explainers ?? DEMO_EXPLAINERS
  const all = demoExplainerSettings(seed)
  const make: Record<DemoExplainer, (o: Record<string, unknown>) => NamedExplainer> = {
    occlusion: (o) => occlusion(o),
    rise: (o) => rise(o),
    shapley: (o) => shapley(o),
  }
  const methods: Record<string, Method> = {}
  const explainers: DemoComparison['explainers'] = {}
  for (const name of chosen) {
    explainers[name] = all[name]
    methods[name] = make[name](all[name])
  }
  const plane = h * w
  for (const [name, maps] of Object.entries(demo.attributions))
    methods[`${name}${MAPS_SUFFIX}`] = maps.subarray(first * plane, (first + count) * plane)
  const rowsBefore = model.stats.rows
  const facade = new ExplanationMetrics(model, {
    explainers: methods,
    onnx: demo.modelPath,
    modelOptions: { workers: 1, output: model.output },
    seed,
  })
  const table = await facade.compareMethods(
    {
      x: demo.x.subarray(first * c * plane, (first + count) * c * plane),
      shape: [count, c, h, w],
      y: demo.y.subarray(first, first + count),
      masks: demo.masks.subarray(first * plane, (first + count) * plane),
    },
    {
      ...DEMO_FACADE_OPTIONS,
      resamples: options.reps ?? 2000,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    },
  )
  return { table, explainers, modelRows: model.stats.rows - rowsBefore, ms: performance.now() - t0 }
}
