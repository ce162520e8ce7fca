// Shared setup of the benches: seeded random data and the embedded demo.
import os from 'node:os'

import { loadDemo } from 'xai-eval'

/** mulberry32: a tiny seeded PRNG, so every bench run sees the same data. */
export function rng(seed) {
  return () => {
    seed |= 0
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function randomArray(length, seed) {
  const r = rng(seed)
  return Float32Array.from({ length }, () => r() * 2 - 1)
}

/** The first `n` demo samples with one attribution method, as a Dataset. */
export async function demoSubset(n, method = 'integrated-gradients') {
  const demo = await loadDemo()
  const [, c, h, w] = demo.shape
  const row = c * h * w
  return {
    modelPath: demo.modelPath,
    data: {
      x: demo.x.slice(0, n * row),
      shape: [n, c, h, w],
      y: demo.y.slice(0, n),
      a: demo.attributions[method].slice(0, n * h * w),
      aShape: [n, 1, h, w],
    },
  }
}

export function machine() {
  return `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, Node ${process.version}`
}
