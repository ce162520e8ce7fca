// Streaming bench: peak memory of `xai-eval evaluate` against the data set's size. The same
// evaluation runs on files 1×, 4× and 16× as long (x [N, 1, 28, 28] float32, y [N] int64 and one
// method's maps: the demo's 64 samples tiled, so every size has the same mean score) under one
// cgroup memory limit smaller than the largest input, as .npy files and as one compressed .npz
// (np.savez_compressed's layout, written here). Reported per run: the process's peak RSS (VmHWM:
// shared libraries included), its peak anonymous RSS (heap and buffers: what the data could grow),
// the cgroup's peak (page cache included, so it climbs to the limit on large files and is
// reclaimed), how often the limit was hit, wall time and throughput.
//
//   node benches/streaming.js [--base 10240] [--sizes 1,4,16] [--limit-mb 320] [--chunk 4096] [--formats npy,npz] [--dir DIR]
//
// --chunk: samples read and evaluated at a time (the CLI's --chunk), the same for every size, so the
// smallest file is already several chunks long.
//
// Needs root and the cgroup v1 memory controller (/sys/fs/cgroup/memory); without it the runs are
// unlimited and say so.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { loadDemo } from '../dist/index.js'
import { npyBlocks, writeNpy, writeNpz } from './npy-files.js'

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '10240' },
    sizes: { type: 'string', default: '1,4,16' },
    'limit-mb': { type: 'string', default: '320' },
    formats: { type: 'string', default: 'npy,npz' },
    chunk: { type: 'string', default: '4096' },
    dir: { type: 'string', default: '/tmp/xai-eval-streaming' },
  },
})
const BASE = Number(opt.base)
const SIZES = opt.sizes.split(',').map(Number)
const LIMIT_MB = Number(opt['limit-mb'])
const FORMATS = opt.formats.split(',')
const CHUNK = opt.chunk
const DIR = opt.dir
const cli = join(import.meta.dirname, '..', 'dist', 'cli.js')
const ROW = 784 * 4

const demo = await loadDemo()
const yTile = BigInt64Array.from(demo.y, BigInt)

/** Writes (once) the inputs of n samples in `format`; returns the CLI's data flags and the bytes on disk. */
function inputs(format, n) {
  const dir = join(DIR, `${format}-${n}`)
  const done = join(dir, 'complete')
  const blocks = {
    x: () => npyBlocks('<f4', [n, 1, 28, 28], demo.x, ROW),
    y: () => npyBlocks('<i8', [n], yTile, 8),
    a: () => npyBlocks('<f4', [n, 1, 28, 28], demo.attributions.occlusion, ROW),
  }
  const files = format === 'npy' ? ['x.npy', 'y.npy', 'a.npy'] : ['data.npz']
  if (!existsSync(done)) {
    mkdirSync(dir, { recursive: true })
    if (format === 'npy') for (const k of ['x', 'y', 'a']) writeNpy(join(dir, `${k}.npy`), blocks[k]())
    else writeNpz(join(dir, 'data.npz'), { x: blocks.x(), y: blocks.y(), a: blocks.a() })
    writeFileSync(done, '')
  }
  const flags =
    format === 'npy'
      ? ['--x', join(dir, 'x.npy'), '--y', join(dir, 'y.npy'), '--a', `occlusion=${join(dir, 'a.npy')}`]
      : ['--x', `${join(dir, 'data.npz')}:x`, '--y', `${join(dir, 'data.npz')}:y`, '--a', `occlusion=${join(dir, 'data.npz')}:a`]
  const bytes = files.reduce((s, f) => s + statSync(join(dir, f)).size, 0)
  return { flags, bytes, out: join(dir, 'out') }
}

const CG = '/sys/fs/cgroup/memory/xai-eval-streaming-bench'

/** Runs the CLI in a fresh cgroup limited to LIMIT_MB, polling the process's memory. */
async function measure(flags, out) {
  let limited = false
  try {
    if (existsSync(CG)) rmdirSync(CG)
    mkdirSync(CG)
    writeFileSync(join(CG, 'memory.limit_in_bytes'), String(LIMIT_MB * 2 ** 20))
    limited = true
  } catch (e) {
    console.error(`no cgroup memory limit (${e.message}): unlimited run`)
  }
  rmSync(out, { recursive: true, force: true })
  const args = [cli, 'evaluate', '--model', demo.modelPath, ...flags]
  args.push(
    '--metrics',
    'pixel-flipping',
    '--set',
    'pixel-flipping.featuresInStep=392',
    '--reps',
    '200',
    '--chunk',
    CHUNK,
    '--quiet',
    '--out',
    out,
  )
  const quoted = ['node', ...args].map((s) => `'${s}'`).join(' ')
  const t0 = performance.now()
  const child = spawn('sh', ['-c', limited ? `echo $$ > ${CG}/cgroup.procs && exec ${quoted}` : `exec ${quoted}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b) => {
    stdout += b
  })
  child.stderr.on('data', (b) => {
    stderr += b
  })
  let hwm = 0
  let anon = 0
  const kb = (status, key) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0)
  const poll = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      if (!status.includes('Name:\tnode')) return
      hwm = Math.max(hwm, kb(status, 'VmHWM'))
      anon = Math.max(anon, kb(status, 'RssAnon'))
    } catch {}
  }, 50)
  const code = await new Promise((resolve) => child.on('close', resolve))
  clearInterval(poll)
  const wall = (performance.now() - t0) / 1000
  let cgroupPeak = Number.NaN
  let limitHits = Number.NaN
  if (limited) {
    cgroupPeak = Number(readFileSync(join(CG, 'memory.max_usage_in_bytes'), 'utf8')) / 2 ** 20
    limitHits = Number(readFileSync(join(CG, 'memory.failcnt'), 'utf8'))
    rmdirSync(CG)
  }
  if (code !== 0) throw new Error(`exit ${code}: ${stderr.trim()}`)
  const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
  return {
    limitMB: limited ? LIMIT_MB : null,
    peakRssMB: Math.round(hwm / 1024),
    peakAnonMB: Math.round(anon / 1024),
    cgroupPeakMB: Math.round(cgroupPeak),
    limitHits,
    wallS: Number(wall.toFixed(1)),
    rowsPerS: Math.round(doc.forwardRows / wall),
    meanScore: doc.comparisons[0].methods[0].mean,
    stdout,
  }
}

const rows = []
for (const format of FORMATS) {
  for (const m of SIZES) {
    const n = BASE * m
    const { flags, bytes, out } = inputs(format, n)
    const r = await measure(flags, out)
    const row = { format, samples: n, inputMB: Math.round(bytes / 2 ** 20), ...r }
    delete row.stdout
    rows.push(row)
    console.log(JSON.stringify(row))
  }
}
console.log()
console.log(
  '| format | samples | input MB | limit MB | peak RSS MB | peak anon RSS MB | cgroup peak MB | limit hits | wall s | model rows/s | mean score |',
)
console.log('|---|---|---|---|---|---|---|---|---|---|---|')
for (const r of rows) {
  console.log(
    `| ${r.format} | ${r.samples} | ${r.inputMB} | ${r.limitMB ?? '–'} | ${r.peakRssMB} | ${r.peakAnonMB} | ${r.cgroupPeakMB} | ${r.limitHits} | ${r.wallS} | ${r.rowsPerS} | ${r.meanScore.toFixed(6)} |`,
  )
}
