// The one place that loads the Rust addon. napi-rs's generated loader prefers an installed
// prebuilt platform package (`xai-eval-<platform>`) and falls back to the local build in native/.
import { createRequire } from 'node:module'

import { fromNative } from './errors.js'
import type * as Binding from '../native/binding.cjs'

const binding = createRequire(import.meta.url)('../native/binding.cjs') as typeof Binding

export type { BaselineSpec, LayoutSpec, RowScores } from '../native/binding.cjs'

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
export const noisyLinearBatch = typed(binding.noisyLinearBatch)
export const imputeRows = typed(binding.imputeRows)
