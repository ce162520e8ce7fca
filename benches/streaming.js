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
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { crc32, deflateRawSync } from 'node:zlib'

import { loadDemo } from '../dist/index.js'

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

function npyHeader(descr, shape) {
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  h += `${' '.repeat((64 - ((10 + h.length + 1) % 64)) % 64)}\n`
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 1
  head.writeUInt16LE(h.length, 8)
  return Buffer.concat([head, Buffer.from(h, 'latin1')])
}

/** The .npy bytes of n rows tiled from `tile`, in blocks (never the whole array in memory). */
function* npyBlocks(descr, shape, tile, rowBytes) {
  yield npyHeader(descr, shape)
  const tileBytes = Buffer.from(tile.buffer, tile.byteOffset, tile.byteLength)
  const block = Buffer.concat(Array.from({ length: 16 }, () => tileBytes))
  const blockRows = block.length / rowBytes
  for (let done = 0; done < shape[0]; done += blockRows) yield block.subarray(0, Math.min(blockRows, shape[0] - done) * rowBytes)
}

function writeNpy(path, blocks) {
  const fd = openSync(path, 'w')
  for (const b of blocks) writeSync(fd, b)
  closeSync(fd)
}

/**
 * A zip of deflated members written block by block, as np.savez_compressed lays it out (one
 * `NAME.npy` per array, no zip64: members under 4 GiB). Each block is deflated on its own
 * (a full flush), so the member is one valid deflate stream without holding it in memory.
 */
function writeNpz(path, members) {
  const fd = openSync(path, 'w')
  let offset = 0
  const put = (b) => {
    writeSync(fd, b)
    offset += b.length
  }
  const fields = (size, values) => {
    const b = Buffer.alloc(size)
    for (const [at, width, v] of values) width === 2 ? b.writeUInt16LE(v, at) : b.writeUInt32LE(v >>> 0, at)
    return b
  }
  const central = []
  for (const [name, blocks] of Object.entries(members)) {
    const file = Buffer.from(`${name}.npy`)
    const start = offset
    // Sizes and CRC follow the data (general-purpose flag bit 3); readers take them from the central directory.
    put(
      fields(30, [
        [0, 4, 0x04034b50],
        [4, 2, 20],
        [6, 2, 8],
        [8, 2, 8],
        [12, 2, 33],
        [26, 2, file.length],
      ]),
    )
    put(file)
    let crc = 0
    let size = 0
    let packed = 0
    const list = [...blocks]
    list.forEach((b, i) => {
      crc = crc32(b, crc)
      size += b.length
      const z = deflateRawSync(b, { finishFlush: i === list.length - 1 ? 4 : 3 }) // Z_FINISH last, else Z_FULL_FLUSH
      packed += z.length
      put(z)
    })
    put(
      fields(16, [
        [0, 4, 0x08074b50],
        [4, 4, crc],
        [8, 4, packed],
        [12, 4, size],
      ]),
    )
    central.push(
      Buffer.concat([
        fields(46, [
          [0, 4, 0x02014b50],
          [4, 2, 20],
          [6, 2, 20],
          [8, 2, 8],
          [10, 2, 8],
          [14, 2, 33],
          [16, 4, crc],
          [20, 4, packed],
          [24, 4, size],
          [28, 2, file.length],
          [42, 4, start],
        ]),
        file,
      ]),
    )
  }
  const cd = Buffer.concat(central)
  const cdOffset = offset
  put(cd)
  put(
    fields(22, [
      [0, 4, 0x06054b50],
      [8, 2, central.length],
      [10, 2, central.length],
      [12, 4, cd.length],
      [16, 4, cdOffset],
    ]),
  )
  closeSync(fd)
}

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
