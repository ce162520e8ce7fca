// The one place that loads the Rust addon, through napi-rs's generated loader (native/binding.cjs).
// That loader tries, in order: NAPI_RS_NATIVE_LIBRARY_PATH if set, the local build
// native/xai-eval.<platform>.node (what `npm install` in a clone builds), then the prebuilt
// platform package xai-eval-<platform> (an optionalDependency). When none loads, this file throws
// a typed XaiEvalError that names the platform, what was looked for and how to build from source.
import { createRequire } from 'node:module'

import { abortedBy, fromNative, unlessAborted, XaiEvalError } from './errors.js'
import type * as Binding from '../native/binding.cjs'

/** The platforms with a prebuilt package: package.json's `napi.targets`, in napi-rs's naming. */
export const PREBUILT_PLATFORMS = [
  'linux-x64-gnu',
  'linux-x64-musl',
  'linux-arm64-gnu',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
] as const

/** The minimum Rust version for a source build (Cargo.toml's `rust-version`). */
const MIN_RUST = '1.88'

/** This process's platform in napi-rs's naming, e.g. `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`. */
export function nativePlatform(): string {
  const base = `${process.platform}-${process.arch}`
  if (process.platform === 'win32') return `${base}-msvc`
  if (process.platform !== 'linux') return base
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header
  return `${base}-${header?.glibcVersionRuntime ? 'gnu' : 'musl'}`
}

function causeLines(err: unknown, depth = 0): string[] {
  if (!(err instanceof Error) || depth > 8) return []
  const first = err.message.split('\n')[0] ?? ''
  return [`  - ${first}`, ...causeLines(err.cause, depth + 1)]
}

/** The typed error for "no native addon loads here": what was tried and the ways out. */
export function nativeLoadError(cause: unknown): XaiEvalError {
  const platform = nativePlatform()
  const pkg = `xai-eval-${platform}`
  const prebuilt = (PREBUILT_PLATFORMS as readonly string[]).includes(platform)
  const lines = [
    `no native addon loads on ${platform} (Node ${process.version}).`,
    'Looked for:',
    process.env.NAPI_RS_NATIVE_LIBRARY_PATH
      ? `  - NAPI_RS_NATIVE_LIBRARY_PATH=${process.env.NAPI_RS_NATIVE_LIBRARY_PATH} (when set, nothing else is tried)`
      : `  - the local build native/xai-eval.${platform}.node`,
    prebuilt
      ? `  - the prebuilt package ${pkg} (an optional dependency: reinstall without --omit=optional / --no-optional; if it is still missing, delete node_modules and package-lock.json and run npm install again)`
      : `  - a prebuilt package: none is published for ${platform} (prebuilt: ${PREBUILT_PLATFORMS.join(', ')})`,
    `To build from source: install Rust >= ${MIN_RUST} with cargo, then in a clone of the xai-eval source run \`npm install\` (it builds native/xai-eval.${platform}.node) and install that folder, or set NAPI_RS_NATIVE_LIBRARY_PATH to the built .node file.`,
    'Load errors:',
    ...causeLines(cause),
  ]
  return new XaiEvalError('NATIVE_LOAD', 'native', lines.join('\n'), { cause })
}

function loadBinding(): typeof Binding {
  try {
    return createRequire(import.meta.url)('../native/binding.cjs') as typeof Binding
  } catch (e) {
    throw nativeLoadError(e)
  }
}

const binding = loadBinding()

export type { BaselineSpec, GroupFillSpec, GroupSpec, LayoutSpec, RowScores } from '../native/binding.cjs'

/**
 * Calls a binding function, rethrowing its `"CODE|arg|message"` errors as typed XaiEvalErrors. An
 * async call whose last argument is an AbortSignal rejects with ABORTED as soon as it fires: napi-rs
 * cancels only work not yet started, and not every core loop polls the signal's stop flag.
 */
function typed<A extends unknown[], R>(f: (...args: A) => R): (...args: A) => R {
  return (...args: A): R => {
    try {
      const out = f(...args)
      if (out instanceof Promise) {
        const last = args.at(-1)
        const signal = last instanceof AbortSignal ? last : undefined
        const settled = out.catch((e: unknown) => Promise.reject(fromNative(e)))
        return unlessAborted(settled, signal, () => abortedBy(signal)) as R
      }
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
export const keyedUniforms = typed(binding.keyedUniforms)
export const agreement = typed(binding.agreement)
export const bootstrapMeans = typed(binding.bootstrapMeans)
export const randomBaselineGaps = typed(binding.randomBaselineGaps)
export const infidelityRows = typed(binding.infidelityRows)
export const sufficiencyScores = typed(binding.sufficiencyScores)
export const localisationStats = typed(binding.localisationStats)
export const otherClasses = typed(binding.otherClasses)
export const compareExplanations = typed(binding.compareExplanations)
export const randomWeights = typed(binding.randomWeights)
export const occlusionMasks = typed(binding.occlusionMasks)
export const riseMasks = typed(binding.riseMasks)
export const shapleyMasks = typed(binding.shapleyMasks)
export const fillMaskRows = typed(binding.fillMaskRows)
export const maskSums = typed(binding.maskSums)
export const noisyRows = typed(binding.noisyRows)
/** Mergeable statistics: their methods throw native errors, rethrown typed by {@link typedCall}. */
export const { SocoSoundnessStats, SocoCompletenessStats, NpyLayout } = binding

/** Runs `f`, rethrowing a native error as a typed XaiEvalError. */
export function typedCall<R>(f: () => R): R {
  try {
    return f()
  } catch (e) {
    throw fromNative(e)
  }
}
