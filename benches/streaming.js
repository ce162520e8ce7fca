// Streaming bench: `xai-eval evaluate` on .npy files several times larger than a memory limit.
// Writes x [N, 1, 28, 28] float32, y [N] int64 and one method's maps (the demo's 64 samples tiled),
// then runs the CLI under a cgroup memory limit (cgroup v1 memory controller, as root) and reports
// peak RSS, the cgroup's peak, wall time and throughput.
//
//   node benches/streaming.js [N=400000] [LIMIT_MB=512] [DIR=/tmp/xai-eval-streaming]
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'

import { loadDemo } from '../dist/index.js'

const N = Number(process.argv[2] ?? 400_000)
const LIMIT_MB = Number(process.argv[3] ?? 512)
const DIR = process.argv[4] ?? '/tmp/xai-eval-streaming'
const cli = join(import.meta.dirname, '..', 'dist', 'cli.js')

function header(descr, shape) {
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  const total = 10 + h.length + 1
  h += `${' '.repeat((64 - (total % 64)) % 64)}\n`
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 1
  head.writeUInt16LE(h.length, 8)
  return Buffer.concat([head, Buffer.from(h, 'latin1')])
}

/** Writes N rows by repeating `tile` (rows of `rowBytes`), without holding the file in memory. */
function writeTiled(path, descr, shape, tile, rowBytes) {
  const fd = openSync(path, 'w')
  writeSync(fd, header(descr, shape))
  const tileRows = tile.byteLength / rowBytes
  const block = Buffer.concat(Array.from({ length: 64 }, () => Buffer.from(tile.buffer, tile.byteOffset, tile.byteLength)))
  const blockRows = 64 * tileRows
  for (let done = 0; done < N; done += blockRows) {
    const rows = Math.min(blockRows, N - done)
    writeSync(fd, block, 0, rows * rowBytes)
  }
  closeSync(fd)
}

mkdirSync(DIR, { recursive: true })
const demo = await loadDemo()
const x = join(DIR, 'x.npy')
const y = join(DIR, 'y.npy')
const a = join(DIR, 'a.npy')
if (!existsSync(a) || statSync(x).size < N * 3136) {
  writeTiled(x, '<f4', [N, 1, 28, 28], demo.x, 3136)
  writeTiled(y, '<i8', [N], BigInt64Array.from(demo.y, BigInt), 8)
  writeTiled(a, '<f4', [N, 1, 28, 28], demo.attributions.occlusion, 3136)
}
const mb = (p) => statSync(p).size / 2 ** 20

// A cgroup with a hard memory limit (page cache included, reclaimable), if this machine allows it.
const cg = '/sys/fs/cgroup/memory/xai-eval-streaming-bench'
let limited = false
try {
  mkdirSync(cg, { recursive: true })
  writeFileSync(join(cg, 'memory.limit_in_bytes'), String(LIMIT_MB * 2 ** 20))
  limited = true
} catch (e) {
  console.error(`no cgroup memory limit available (${e.message}); measuring peak RSS only`)
}

const args = [
  cli,
  'evaluate',
  '--model',
  demo.modelPath,
  '--x',
  x,
  '--y',
  y,
  '--a',
  `occlusion=${a}`,
  '--metrics',
  'pixel-flipping',
  '--set',
  'pixel-flipping.featuresInStep=392',
  '--reps',
  '200',
  '--quiet',
  '--out',
  join(DIR, 'out'),
]
const script = limited ? `echo $$ > ${cg}/cgroup.procs && exec /usr/bin/time -v node ${args.map((s) => `'${s}'`).join(' ')}` : null
const t0 = performance.now()
const r = limited
  ? spawnSync('sh', ['-c', script], { encoding: 'utf8' })
  : spawnSync('/usr/bin/time', ['-v', 'node', ...args], { encoding: 'utf8' })
const wall = (performance.now() - t0) / 1000
const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? Number.NaN) / 1024
let peak = Number.NaN
let failcnt = Number.NaN
if (limited) {
  peak = Number(readFileSync(join(cg, 'memory.max_usage_in_bytes'), 'utf8')) / 2 ** 20
  failcnt = Number(readFileSync(join(cg, 'memory.failcnt'), 'utf8'))
  try {
    rmdirSync(cg)
  } catch {}
}
if (r.status !== 0) {
  console.error(r.stdout, r.stderr)
  process.exit(1)
}
const rows = Number(/(\d+) model rows/.exec(r.stdout)?.[1])
console.log(r.stdout.split('\n').slice(0, 6).join('\n'))
console.log(
  JSON.stringify(
    {
      samples: N,
      inputFilesMB: Math.round(mb(x) + mb(y) + mb(a)),
      memoryLimitMB: limited ? LIMIT_MB : null,
      maxRssMB: Math.round(rss),
      cgroupPeakMB: Math.round(peak),
      cgroupLimitHits: failcnt,
      wallS: Number(wall.toFixed(1)),
      modelRows: rows,
      rowsPerS: Math.round(rows / wall),
    },
    null,
    1,
  ),
)
