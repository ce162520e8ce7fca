// Every metric by its stable id. The CLI, the report and distributed workers build metrics from
// `{ id, params }` here and read their meta (direction, needs, version, cost) from here, so a
// metric's knowledge lives in its class alone.
import { XaiEvalError } from './errors.js'
import { Completeness } from './metrics/completeness.js'
import { Irof } from './metrics/irof.js'
import {
  AttributionLocalisation,
  AUC,
  PointingGame,
  RelevanceMassAccuracy,
  RelevanceRankAccuracy,
  TopKIntersection,
} from './metrics/localisation.js'
import { Deletion, Insertion } from './metrics/deletion-insertion.js'
import { FaithfulnessCorrelation } from './metrics/faithfulness-correlation.js'
import { FaithfulnessEstimate } from './metrics/faithfulness-estimate.js'
import { Infidelity } from './metrics/infidelity.js'
import { Monotonicity } from './metrics/monotonicity.js'
import { MonotonicityCorrelation } from './metrics/monotonicity-correlation.js'
import { PixelFlipping } from './metrics/pixel-flipping.js'
import { createMetric, fromJSON, type MetricClass, type MetricResult, metricClass, registry } from './metrics/protocol.js'
import { QualityGapEstimator } from './metrics/qge.js'
import { DataRandomization, EfficientMPRT, ModelParameterRandomization, RandomLogit, SmoothMPRT } from './metrics/randomization.js'
import { RandomBaselineGap } from './metrics/random-baseline.js'
import { RegionPerturbation } from './metrics/region-perturbation.js'
import { Road } from './metrics/road.js'
import { Selectivity } from './metrics/selectivity.js'
import { AvgSensitivity, LocalLipschitzEstimate, MaxSensitivity, RelativeInputStability, SensitivityN } from './metrics/sensitivity.js'
import { Soundness } from './metrics/soundness.js'
import { SymmetricRelevanceGain } from './metrics/srg.js'
import { Sufficiency } from './metrics/sufficiency.js'

// Families in the order the CLI and the report list them.
const classes: MetricClass[] = [
  // perturbation curves
  SymmetricRelevanceGain,
  PixelFlipping,
  Deletion,
  Insertion,
  Road,
  RegionPerturbation,
  Selectivity,
  Irof,
  // correlations and estimates of the attribution's predictive power
  FaithfulnessCorrelation,
  FaithfulnessEstimate,
  Monotonicity,
  MonotonicityCorrelation,
  Infidelity,
  Sufficiency,
  // soundness and completeness (exact reduce)
  Soundness,
  Completeness,
  // quality of a quality: against the inverse or random explanations
  QualityGapEstimator,
  RandomBaselineGap,
  // localisation against object masks or boxes (no forward passes)
  PointingGame,
  RelevanceMassAccuracy,
  RelevanceRankAccuracy,
  TopKIntersection,
  AttributionLocalisation,
  AUC,
  // robustness of explanations to input noise (re-explain with an explainer)
  SensitivityN,
  MaxSensitivity,
  AvgSensitivity,
  LocalLipschitzEstimate,
  RelativeInputStability,
  // randomization sanity checks
  RandomLogit,
  DataRandomization,
  ModelParameterRandomization,
  SmoothMPRT,
  EfficientMPRT,
]
for (const c of classes) registry.set(c.meta.id, c)

export { createMetric, metricClass, registry, type MetricClass }

/** Adds a metric class (e.g. one of your own) under its `meta.id`. */
export function register(cls: MetricClass): void {
  if (typeof cls !== 'function' || typeof cls.meta?.id !== 'string') {
    throw new XaiEvalError('INVALID_OPTION', 'cls', 'expected a metric class with a static meta.id')
  }
  if (registry.has(cls.meta.id)) throw new XaiEvalError('INVALID_OPTION', 'cls', `a metric '${cls.meta.id}' is registered already`)
  registry.set(cls.meta.id, cls)
}

/** Rebuilds a result from its JSON (the text or the parsed object). */
export function resultFromJSON<R extends MetricResult = MetricResult>(json: unknown): R {
  const r = fromJSON<R>(json)
  metricClass(r.metric)
  return r
}
