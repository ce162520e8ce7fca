// The physical limit of a metric on T threads: the bare forward passes of its rows, in processes of
// their own (nothing of xai-eval beside them: no heap, GC or idle workers), at their best batch
// size, in the faster of two shapes: one session of T intra-op threads (onnxruntime's defaults,
// spinning allowed) or, for T > 1, T one-thread sessions each running its share of the rows at the
// same time (what a small model wants; a hand-written loop would need T processes for it).
import { fork } from 'node:child_process'

const CHILD = new URL('./bare-child.js', import.meta.url)

/** Pause before each timed run, so the other side's spinning threads have gone to sleep. */
export const PAUSE_MS = 50

export const pause = () => new Promise((r) => setTimeout(r, PAUSE_MS))

async function child(path, threads, rowShape) {
  const proc = fork(CHILD, [path, String(threads), rowShape.join('x')], { stdio: 'inherit' })
  let reply
  proc.on('message', (m) => reply?.(m))
  const next = () => new Promise((r) => (reply = r))
  await next() // ready
  return {
    run: (rows, size) => {
      const p = next()
      proc.send({ rows, size })
      return p
    },
    close: () => proc.kill(),
  }
}

/** `sessions` processes of `threads` threads each; `run(rows, size)` splits the rows in whole batches. */
async function shape(path, sessions, threads, rowShape) {
  const procs = await Promise.all(Array.from({ length: sessions }, () => child(path, threads, rowShape)))
  return {
    label: sessions === 1 ? `1 × ${threads}` : `${sessions} × ${threads} processes`,
    run: async (rows, size) => {
      const share = size * Math.ceil(rows / sessions / size)
      await Promise.all(procs.map((p, i) => p.run(Math.max(0, Math.min(share, rows - i * share)), size)))
    },
    close: () => {
      for (const p of procs) p.close()
    },
  }
}

/**
 * The limit on `threads` threads: every candidate shape and batch size in `sizes` runs the same
 * rows (the largest size twice, three times over), the fastest kept; the others are closed.
 */
export async function bareLimit(path, threads, rowShape, sizes) {
  const shapes = [await shape(path, 1, threads, rowShape)]
  if (threads > 1) shapes.push(await shape(path, threads, 1, rowShape))
  const probe = 2 * threads * sizes.at(-1)
  let best = { ms: Number.POSITIVE_INFINITY }
  for (const s of shapes) {
    for (const size of sizes) {
      await s.run(threads * size, size)
      const times = []
      for (let i = 0; i < 3; i++) {
        await pause()
        const t = performance.now()
        await s.run(probe, size)
        times.push(performance.now() - t)
      }
      const ms = times.sort((a, b) => a - b)[1]
      if (ms < best.ms) best = { shape: s, size, ms }
    }
  }
  for (const s of shapes) if (s !== best.shape) s.close()
  return {
    label: best.shape.label,
    size: best.size,
    run: (rows) => best.shape.run(rows, best.size),
    close: () => best.shape.close(),
  }
}
