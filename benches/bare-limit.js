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
 * The limit on `threads` threads: each candidate shape at its own best batch size in `sizes` (every
 * size runs the same rows, the largest size twice, three times over, the median kept). `time(rows)`
 * then runs the rows in every shape, after a pause each, and returns the fastest wall time: a
 * spinning 2-thread session swings by 2× between runs on a shared VM, and the limit is whichever
 * shape does best at that moment.
 */
export async function bareLimit(path, threads, rowShape, sizes) {
  const shapes = [await shape(path, 1, threads, rowShape)]
  if (threads > 1) shapes.push(await shape(path, threads, 1, rowShape))
  const probe = 2 * threads * sizes.at(-1)
  for (const s of shapes) {
    s.best = { ms: Number.POSITIVE_INFINITY }
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
      if (ms < s.best.ms) s.best = { size, ms }
    }
  }
  return {
    /** Fastest wall time of `rows` rows over the shapes, with that shape and its batch size. */
    time: async (rows) => {
      let best = { ms: Number.POSITIVE_INFINITY }
      for (const s of shapes) {
        await pause()
        const t = performance.now()
        await s.run(rows, s.best.size)
        const ms = performance.now() - t
        if (ms < best.ms) best = { ms, label: s.label, size: s.best.size }
      }
      return best
    },
    close: () => {
      for (const s of shapes) s.close()
    },
  }
}
