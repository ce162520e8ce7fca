#!/usr/bin/env node
// Runs the Rust core through the built dist/ (SRG and Deletion on 8 demo samples with a fixed JS
// model, so ONNX Runtime is not involved) and prints the scores and the addon file the process
// mapped, as one JSON line. scripts/cross-linux.sh runs it natively and under qemu-user with
// NAPI_RS_NATIVE_LIBRARY_PATH pointing at a cross-built addon, and compares the two lines.
import { readFileSync } from 'node:fs'

const base = new URL('../dist/', import.meta.url)
const { loadDemo } = await import(new URL('data.js', base))
const { FunctionModel } = await import(new URL('models/function-model.js', base))
const { SymmetricRelevanceGain } = await import(new URL('metrics/srg.js', base))
const { Deletion } = await import(new URL('metrics/deletion-insertion.js', base))

const n = 8
const demo = await loadDemo()
const [, c, h, w] = demo.shape
const d = c * h * w
const data = {
  x: demo.x.subarray(0, n * d),
  shape: [n, c, h, w],
  y: demo.y.subarray(0, n),
  a: demo.attributions.occlusion.subarray(0, n * h * w),
  aShape: [n, 1, h, w],
}
// Class k sums the pixels of quadrant k of the first channel: deterministic on every platform.
const model = new FunctionModel((x, shape) => {
  const out = new Float32Array(shape[0] * 4)
  for (let r = 0; r < shape[0]; r++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) out[r * 4 + (i < h / 2 ? 0 : 2) + (j < w / 2 ? 0 : 1)] += x[r * d + i * w + j] / 50
    }
  }
  return out
})
const srg = await new SymmetricRelevanceGain({ featuresInStep: 16 }).evaluate(model, data)
const del = await new Deletion({ featuresInStep: 16 }).evaluate(model, data)
// Linux only: which xai-eval addon the process mapped (null elsewhere).
let addon = null
try {
  addon = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .map((l) => l.split(/\s+/)[5] ?? '')
    .find((p) => /^xai-eval\.[^/]*\.node$/.test(p.split('/').pop() ?? ''))
} catch {}
console.log(JSON.stringify({ arch: process.arch, addon, srg: Array.from(srg.scores), deletion: Array.from(del.scores) }))
