// The progress output: on a terminal a bar with the metric, method, rows/s, forward passes and ETA,
// redrawn in place and cleared at the end; elsewhere one line per finished metric and chunk. The
// renderer is driven with a fake stream and clock, and the command line under a real
// pseudo-terminal (util-linux `script`), so the TTY detection of the CLI is exercised too.
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import test from 'ava'
import { loadDemo, type ProgressEvent } from 'xai-eval'

import { progressPrinter } from '../src/progress.js'

const run = promisify(execFile)
const cli = join(import.meta.dirname, '..', 'dist', 'cli.js')

const event = (over: Partial<ProgressEvent>): ProgressEvent => ({
  metric: 'srg',
  method: 'gradient',
  rows: 0,
  total: 100,
  chunkStart: 0,
  chunkEnd: 50,
  samples: 100,
  fraction: 0,
  forwardRows: 0,
  kind: 'rows',
  ...over,
})

test('on a terminal: a bar with metric, method, rows/s, forward passes and ETA, redrawn in place and cleared', (t) => {
  const out: string[] = []
  let clock = 1000
  const p = progressPrinter({ isTTY: true, write: (s: string) => out.push(s) }, 2, () => clock)
  clock += 2000
  // 2 s in, a quarter done, 500 forward passes: 250 rows/s, ETA 2 · 3 = 6 s.
  p.onProgress(event({ fraction: 0.25, forwardRows: 500, rows: 500 }))
  t.is(out.length, 1)
  const bar = out[0]!
  t.true(bar.startsWith('\r\x1b[2K['), JSON.stringify(bar))
  t.is([...bar.matchAll(/█/g)].length, 6) // a quarter of 24 cells
  t.regex(bar, / 25% srg · gradient · samples 0–50 · 250 rows\/s · 500 forward passes · ETA 6 s$/)
  t.false(bar.includes('\n'))
  // Redraws closer than 100 ms apart are skipped, except when a pair finishes.
  clock += 50
  p.onProgress(event({ fraction: 0.3, forwardRows: 600 }))
  t.is(out.length, 1)
  p.onProgress(event({ fraction: 0.5, forwardRows: 1000, method: 'occlusion', kind: 'pair' }))
  t.is(out.length, 2)
  t.regex(out[1]!, / 50% srg · occlusion · .* ETA 2 s$/)
  // At the start nothing is known about the end.
  const q: string[] = []
  const zero = progressPrinter({ isTTY: true, write: (s: string) => q.push(s) }, 1, () => 0)
  zero.onProgress(event({ fraction: 0 }))
  t.regex(q[0]!, /ETA …$/)
  p.finish()
  t.is(out.at(-1), '\r\x1b[2K')
  p.finish()
  t.is(out.length, 3, 'cleared once')
})

test('not on a terminal: one line per metric finished on a chunk, no control characters', (t) => {
  const out: string[] = []
  let clock = 0
  const p = progressPrinter({ write: (s: string) => out.push(s) }, 2, () => clock)
  p.onProgress(event({ fraction: 0.1 }))
  clock = 1500
  p.onProgress(event({ kind: 'pair', fraction: 0.25 }))
  t.deepEqual(out, [])
  p.onProgress(event({ kind: 'pair', method: 'occlusion', fraction: 0.5 }))
  t.deepEqual(out, ['xai-eval: srg done on samples 0–49 (2 methods; 50% of the run, 1.5 s)\n'])
  p.finish()
  t.is(out.length, 1)
})

const hasScript = spawnSync('script', ['--version']).status === 0

;(hasScript ? test : test.skip)(
  'the CLI under a pseudo-terminal draws the bar on stderr and clears it; the table goes to stdout',
  async (t) => {
    const demo = await loadDemo()
    const dir = mkdtempSync(join(tmpdir(), 'xai-eval-progress-'))
    const n = 8
    const header = (descr: string, shape: number[]) => {
      let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
      h += `${' '.repeat((64 - ((11 + h.length) % 64)) % 64)}\n`
      const head = Buffer.alloc(10)
      head.write('\x93NUMPY', 0, 'latin1')
      head[6] = 1
      head.writeUInt16LE(h.length, 8)
      return Buffer.concat([head, Buffer.from(h, 'latin1')])
    }
    const save = (name: string, descr: string, shape: number[], v: ArrayBufferView) =>
      writeFileSync(join(dir, name), Buffer.concat([header(descr, shape), Buffer.from(v.buffer, v.byteOffset, v.byteLength)]))
    save('x.npy', '<f4', [n, 1, 28, 28], demo.x.slice(0, n * 784))
    save('a.npy', '<f4', [n, 1, 28, 28], demo.attributions.occlusion!.slice(0, n * 784))
    save('y.npy', '<i8', [n], BigInt64Array.from(demo.y.subarray(0, n), BigInt))
    const args = [cli, 'evaluate', '--model', demo.modelPath, '--x', join(dir, 'x.npy'), '--y', join(dir, 'y.npy')]
    args.push('--a', `occlusion=${join(dir, 'a.npy')}`, '--metrics', 'srg', '--set', 'srg.featuresInStep=98', '--reps', '100')
    args.push('--out', join(dir, 'out'))
    // `script` runs the command on a new pseudo-terminal; stdout goes to a file, so what the
    // terminal shows is stderr alone.
    const command = ['node', ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
    const table = join(dir, 'stdout.txt')
    const { stdout: terminal } = await run('script', ['-qec', `${command} > '${table}'`, '/dev/null'], {
      env: { ...process.env, TERM: 'xterm' },
    })
    t.true(terminal.includes('\r\x1b[2K['))
    t.regex(terminal, /\[[█░]{24}\] +\d+% srg · occlusion · samples 0–8 · \d+ rows\/s · \d+ forward passes · ETA /)
    // The last bar is cleared: the terminal ends on an empty line, ready for the table.
    t.true(terminal.endsWith('\r\x1b[2K'), JSON.stringify(terminal.slice(-80)))
    const printed = readFileSync(table, 'utf8')
    t.regex(printed, /^occlusion +\d/m)
    t.false(printed.includes('\x1b'))
  },
)
