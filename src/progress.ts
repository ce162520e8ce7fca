// The command line's progress output: on a terminal, one bar redrawn in place (current metric and
// method, sample range, rows/s, forward passes, ETA) and cleared at the end; elsewhere (a pipe, a
// log file) one line per finished metric and chunk. The stream and the clock are parameters, so
// the rendering is tested without a terminal.
import type { ProgressEvent } from './job.js'

/** Where progress goes: `process.stderr`, or anything with `write` (and `isTTY` when a terminal). */
export interface ProgressStream {
  isTTY?: boolean
  write(text: string): unknown
}

export interface ProgressPrinter {
  onProgress(p: ProgressEvent): void
  /** Clears the bar (on a terminal) so what follows starts on a clean line. */
  finish(): void
}

/** Redraws of the bar within this many milliseconds are skipped (a chunk may report every batch). */
const REDRAW_MS = 100
const WIDTH = 24
const CLEAR_LINE = '\r\x1b[2K'

export function progressPrinter(stream: ProgressStream, methodCount: number, now: () => number = () => performance.now()): ProgressPrinter {
  const tty = stream.isTTY === true
  const start = now()
  let last = Number.NEGATIVE_INFINITY
  let drawn = false
  let pairsDone = 0
  return {
    onProgress(p) {
      const t = now()
      const elapsed = (t - start) / 1000
      if (tty) {
        if (p.kind === 'rows' && t - last < REDRAW_MS) return
        last = t
        const filled = Math.round(Math.min(1, p.fraction) * WIDTH)
        const eta = p.fraction > 0 ? (elapsed * (1 - p.fraction)) / p.fraction : Number.NaN
        const rate = p.forwardRows / Math.max(elapsed, 1e-3)
        stream.write(
          `${CLEAR_LINE}[${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${(100 * p.fraction).toFixed(0).padStart(3)}% ${p.metric} · ${p.method} · samples ${p.chunkStart}–${p.chunkEnd} · ${rate.toFixed(0)} rows/s · ${p.forwardRows} forward passes · ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '…'}`,
        )
        drawn = true
      } else if (p.kind === 'pair') {
        pairsDone++
        if (pairsDone % methodCount === 0) {
          stream.write(
            `xai-eval: ${p.metric} done on samples ${p.chunkStart}–${p.chunkEnd - 1} (${methodCount} methods; ${(100 * p.fraction).toFixed(0)}% of the run, ${elapsed.toFixed(1)} s)\n`,
          )
        }
      }
    },
    finish() {
      if (drawn) stream.write(CLEAR_LINE)
      drawn = false
    },
  }
}
