// Data, errors and results
export { loadDemo, type Dataset, type DemoData } from './data.js'
export { XaiEvalError, type ErrorCode } from './errors.js'
export type { Curves, CurveResult, Target } from './metrics/curve.js'
export {
  Metric,
  fromJSON,
  type Column,
  type Cost,
  type MapOptions,
  type Merged,
  type MetricMeta,
  type MetricResult,
  type Need,
  type Shard,
} from './metrics/protocol.js'
export { registry, register, createMetric, metricClass, resultFromJSON, type MetricClass } from './registry.js'
export { RowCache } from './row-cache.js'
export {
  checkExplainer,
  countingModel,
  underlyingModel,
  DEFAULT_EXPLAIN_BATCH,
  explainerName,
  mapAttributions,
  named,
  precomputed,
  type CheckedExplainer,
  type Explained,
  type ExplainOptions,
  type Explainer,
  type ExplainerLike,
  type NamedExplainer,
  type Shape4,
} from './explainers/explainer.js'
export { DEFAULT_CACHE_BYTES, ExplanationCache } from './explainers/cache.js'
export {
  MAX_MASK_VALUES,
  occlusion,
  rise,
  shapley,
  type OcclusionOptions,
  type RiseOptions,
  type ShapleyOptions,
} from './explainers/builtin.js'
export {
  AvgSensitivity,
  LocalLipschitzEstimate,
  type LocalLipschitzEstimateOptions,
  type LocalLipschitzEstimateParams,
  type LocalLipschitzEstimateResult,
  MaxSensitivity,
  RelativeInputStability,
  type RelativeInputStabilityOptions,
  type RelativeInputStabilityParams,
  type RelativeInputStabilityResult,
  SensitivityN,
  type SensitivityNOptions,
  type SensitivityNParams,
  type SensitivityNResult,
  type YehSensitivityOptions,
  type YehSensitivityParams,
  type YehSensitivityResult,
} from './metrics/sensitivity.js'

// Comparing methods on a data set (what `xai-eval evaluate` runs)
export { compareMethods, rankAgreement, type Comparison, type CompareOptions, type MethodComparison } from './compare.js'
export {
  runJob,
  type JobOptions,
  type JobResult,
  type MetricEntry,
  type MetricSpec,
  type ProgressEvent,
  type Source,
} from './job.js'
export { NpySource, readNpy, type NpyArray } from './io/npy.js'

// Models
export type { Model, ModelStats, OutputKind, PoolShape } from './models/model.js'
export { OnnxModel, type ExecutionProvider, type OnnxModelOptions } from './models/onnx-model.js'
export { FunctionModel, type FunctionModelOptions } from './models/function-model.js'
export {
  writeOnnx,
  type OnnxAttribute,
  type OnnxElementType,
  type OnnxGraph,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from './models/onnx-writer.js'

// Metrics: perturbation curves
export type { Baseline } from './metrics/baseline.js'
export { PixelFlipping, type PixelFlippingOptions } from './metrics/pixel-flipping.js'
export { SymmetricRelevanceGain, type SymmetricRelevanceGainOptions } from './metrics/srg.js'
export {
  Deletion,
  Insertion,
  type DeletionInsertionOptions,
  type DeletionResult,
  type InsertionResult,
} from './metrics/deletion-insertion.js'
export { Road, type RoadOptions, type RoadResult } from './metrics/road.js'

// Metrics: region perturbation (patches and superpixels)
export { RegionPerturbation, type RegionPerturbationOptions, type RegionPerturbationParams } from './metrics/region-perturbation.js'
export { Selectivity, type SelectivityOptions, type SelectivityParams } from './metrics/selectivity.js'
export { Irof, type IrofOptions, type IrofParams, type IrofResult } from './metrics/irof.js'

// Quality Gap Estimator
export { QualityGapEstimator, type QualityGapEstimatorOptions, type QualityGapResult } from './metrics/qge.js'
export { invert, type InverseMethod } from './metrics/inverse.js'
export { RandomBaselineGap, type RandomBaselineGapOptions, type RandomBaselineGapResult } from './metrics/random-baseline.js'
export { latentQuality, type Agreement, type LatentQuality, type LatentQualityOptions } from './latent-quality.js'

// Metrics: faithfulness of the attribution values and across samples
export { Infidelity, type InfidelityOptions, type InfidelityParams, type InfidelityResult } from './metrics/infidelity.js'
export {
  Sufficiency,
  SUFFICIENCY_MAX_VALUES,
  type SufficiencyOptions,
  type SufficiencyParams,
  type SufficiencyResult,
} from './metrics/sufficiency.js'

// Metrics: soundness and completeness (map + reduce)
export type { Imputation, Indicator, StepwiseOptions } from './metrics/stepwise.js'
export { Soundness, type SoundnessResult } from './metrics/soundness.js'
export { Completeness, type CompletenessResult } from './metrics/completeness.js'
export type { CorrelationResult, UndefinedScore } from './metrics/correlation.js'
export {
  FaithfulnessCorrelation,
  type FaithfulnessCorrelationOptions,
  type FaithfulnessCorrelationResult,
} from './metrics/faithfulness-correlation.js'
export { FaithfulnessEstimate, type FaithfulnessEstimateOptions } from './metrics/faithfulness-estimate.js'
export { Monotonicity, type MonotonicityOptions } from './metrics/monotonicity.js'
export { MonotonicityCorrelation, type MonotonicityCorrelationOptions } from './metrics/monotonicity-correlation.js'

// Metrics: localisation against object masks or boxes
export {
  PointingGame,
  RelevanceMassAccuracy,
  RelevanceRankAccuracy,
  TopKIntersection,
  AttributionLocalisation,
  AUC,
  type LocalisationResult,
  type PointingGameOptions,
  type PointingGameParams,
  type PointingGameResult,
  type RelevanceMassAccuracyOptions,
  type RelevanceMassAccuracyParams,
  type RelevanceRankAccuracyOptions,
  type RelevanceRankAccuracyParams,
  type TopKIntersectionOptions,
  type TopKIntersectionParams,
  type AttributionLocalisationOptions,
  type AttributionLocalisationParams,
  type AUCOptions,
  type AUCParams,
} from './metrics/localisation.js'

// Metrics: randomization sanity checks
export {
  RandomLogit,
  DataRandomization,
  ModelParameterRandomization,
  EfficientMPRT,
  type EfficientMPRTOptions,
  SmoothMPRT,
  type SmoothMPRTOptions,
  type SmoothMPRTParams,
  type ReferenceKind,
  type ClassRandomizationResult,
  type DataRandomizationOptions,
  type DataRandomizationParams,
  type DataRandomizationResult,
  type ModelParameterRandomizationOptions,
  type ModelParameterRandomizationParams,
  type ModelParameterRandomizationResult,
  type RandomizedLayer,
  type RandomLogitOptions,
  type RandomLogitParams,
  type SimilarityKind,
} from './metrics/randomization.js'
export { onnxLayers, randomizeLayers, type OnnxLayer } from './models/onnx-edit.js'

// The facade: several methods × the autotimm suite, and the comparison table
export {
  ExplanationMetrics,
  FACADE_METRICS,
  type ComparisonCell,
  type ComparisonTable,
  type CompareMethodsOptions,
  type EvaluateAllOptions,
  type ExplanationMetricsOptions,
  type FacadeData,
  type FacadeMetric,
  type FacadeProgress,
  type Method,
  type MethodResults,
  type Unavailable,
} from './facade.js'

// Utilities
export * as impute from './impute.js'
export * as modify from './modify.js'
export type { ModificationKind, ModifyOptions } from './modify.js'
export { hausdorff, minimalHausdorff, type CurvePoints, type MinimalHausdorff } from './hausdorff.js'

// Distributed evaluation (BullMQ over Redis)
export {
  evaluateDistributed,
  cancelRun,
  type DistributedOptions,
  type DistributedProgress,
  type DistributedResult,
} from './distributed/evaluate.js'
export { startWorker, type ShardWorker, type ShardWorkerOptions } from './distributed/worker.js'
export { hashFile, hashReference, type DataReference } from './distributed/reference.js'
export type { Connection } from './distributed/connection.js'
