// The one place that loads the Rust addon. napi-rs's generated loader prefers an installed
// prebuilt platform package (`xai-eval-<platform>`) and falls back to the local build in native/.
import { createRequire } from 'node:module'

import { fromNative } from './errors.js'
import type * as Binding from '../native/binding.cjs'

const binding = createRequire(import.meta.url)('../native/binding.cjs') as typeof Binding

export type { BaselineSpec, GroupFillSpec, GroupSpec, LayoutSpec, RowScores } from '../native/binding.cjs'

/** Calls a binding function, rethrowing its `"CODE|arg|message"` errors as typed XaiEvalErrors. */
function typed<A extends unknown[], R>(f: (...args: A) => R): (...args: A) => R {
  return (...args: A): R => {
    try {
      const out = f(...args)
      if (out instanceof Promise) return out.catch((e: unknown) => Promise.reject(fromNative(e))) as R
      return out
    } catch (e) {
      throw fromNative(e)
    }
  }
}

export const rankFeatures = typed(binding.rankFeatures)
export const computeBaselines = typed(binding.computeBaselines)
export const fillRows = typed(binding.fillRows)
export const scoreRows = typed(binding.scoreRows)
export const areas = typed(binding.areas)
export const summarize = typed(binding.summarize)
export const imputeRows = typed(binding.imputeRows)
export const imputeMasked = typed(binding.imputeMasked)
export const pixelMaps = typed(binding.pixelMaps)
export const fillSubsetRows = typed(binding.fillSubsetRows)
export const subsetSums = typed(binding.subsetSums)
export const fillGroupRows = typed(binding.fillGroupRows)
export const groupSums = typed(binding.groupSums)
export const fillQuantusMonotonicityRows = typed(binding.fillQuantusMonotonicityRows)
export const rowCorrelations = typed(binding.rowCorrelations)
export const socoSoundnessRatios = typed(binding.socoSoundnessRatios)
export const socoSoundnessMasks = typed(binding.socoSoundnessMasks)
export const socoCompletenessThresholds = typed(binding.socoCompletenessThresholds)
export const socoCompletenessMasks = typed(binding.socoCompletenessMasks)
export const socoQuantize = typed(binding.socoQuantize)
export const patchGrid = typed(binding.patchGrid)
export const regionOrders = typed(binding.regionOrders)
export const fillRegionRows = typed(binding.fillRegionRows)
export const slicSegments = typed(binding.slicSegments)
export const randomRankings = typed(binding.randomRankings)
export const agreement = typed(binding.agreement)
export const randomBaselineGaps = typed(binding.randomBaselineGaps)
export const infidelityRows = typed(binding.infidelityRows)
export const sufficiencyScores = typed(binding.sufficiencyScores)
export const localisationStats = typed(binding.localisationStats)
export const otherClasses = typed(binding.otherClasses)
export const compareExplanations = typed(binding.compareExplanations)
export const randomWeights = typed(binding.randomWeights)
export const bootstrapCi = typed(binding.bootstrapCi)
export const pairedPermutationP = typed(binding.pairedPermutationP)
export const occlusionMasks = typed(binding.occlusionMasks)
export const riseMasks = typed(binding.riseMasks)
export const shapleyMasks = typed(binding.shapleyMasks)
export const fillMaskRows = typed(binding.fillMaskRows)
export const maskSums = typed(binding.maskSums)
export const noisyRows = typed(binding.noisyRows)
/** Mergeable statistics: their methods throw native errors, rethrown typed by {@link typedCall}. */
export const { SocoSoundnessStats, SocoCompletenessStats } = binding

/** Runs `f`, rethrowing a native error as a typed XaiEvalError. */
export function typedCall<R>(f: () => R): R {
  try {
    return f()
  } catch (e) {
    throw fromNative(e)
  }
}
