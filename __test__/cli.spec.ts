// The command line: `evaluate` on .npy files gives the library's numbers for every method, however
// the samples are chunked; it writes results.json, scores.csv and report.html atomically; every bad
// input (§5 of the issue) is one line on stderr naming the file or flag, a non-zero exit, no output.
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { crc32, deflateRawSync } from 'node:zlib'

import test from 'ava'
import { Deletion, ExplanationMetrics, loadDemo, OnnxModel, occlusion, resultFromJSON, SymmetricRelevanceGain } from 'xai-eval'

const run = promisify(execFile)
const cli = join(import.meta.dirname, '..', 'dist', 'cli.js')

/** A minimal .npy (version 1.0) writer, independent of src/io/npy.ts. */
function npy(descr: string, shape: number[], data: ArrayBufferView): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  const total = 10 + header.length + 1
  header += `${' '.repeat((64 - (total % 64)) % 64)}\n`
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 1
  head[7] = 0
  head.writeUInt16LE(header.length, 8)
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
}

/**
 * A one-member .npz (zip, deflated) written here, independent of the reader; `cut` < 1 declares only
 * that fraction of the deflate stream in the central directory, so inflating ends early.
 */
function npz(name: string, member: Buffer, cut = 1): Buffer {
  const body = deflateRawSync(member)
  const file = Buffer.from(`${name}.npy`)
  const fields = (size: number, values: [number, number, number][]) => {
    const b = Buffer.alloc(size)
    for (const [at, width, v] of values) width === 2 ? b.writeUInt16LE(v, at) : b.writeUInt32LE(v, at)
    return b
  }
  const crc = crc32(member)
  const date = (0 << 9) | (1 << 5) | 1 // 1980-01-01
  const local = fields(30, [
    [0, 4, 0x04034b50],
    [4, 2, 20],
    [8, 2, 8],
    [12, 2, date],
    [14, 4, crc],
    [18, 4, body.length],
    [22, 4, member.length],
    [26, 2, file.length],
  ])
  const declared = Math.floor(body.length * cut)
  const central = fields(46, [
    [0, 4, 0x02014b50],
    [4, 2, 20],
    [6, 2, 20],
    [10, 2, 8],
    [14, 2, date],
    [16, 4, crc],
    [20, 4, declared],
    [24, 4, member.length],
    [28, 2, file.length],
  ])
  const cdOffset = local.length + file.length + body.length
  const end = fields(22, [
    [0, 4, 0x06054b50],
    [8, 2, 1],
    [10, 2, 1],
    [12, 4, central.length + file.length],
    [16, 4, cdOffset],
  ])
  return Buffer.concat([local, file, body, central, file, end])
}

async function files() {
  const demo = await loadDemo()
  const n = 6
  const dir = mkdtempSync(join(tmpdir(), 'xai-eval-cli-'))
  const x = demo.x.slice(0, n * 784)
  const a = demo.attributions.occlusion!.slice(0, n * 784)
  const y = BigInt64Array.from(demo.y.subarray(0, n), BigInt)
  writeFileSync(join(dir, 'x.npy'), npy('<f4', [n, 1, 28, 28], x))
  writeFileSync(join(dir, 'a.npy'), npy('<f8', [n, 1, 28, 28], Float64Array.from(a)))
  const g = demo.attributions.gradient!.slice(0, n * 784)
  writeFileSync(join(dir, 'g.npy'), npy('<f4', [n, 28, 28], g))
  writeFileSync(join(dir, 'y.npy'), npy('<i8', [n], y))
  return { dir, demo, n, x, a, g, y: demo.y.subarray(0, n) }
}

interface Fail {
  code: number
  stderr: string
}

const base = (dir: string, modelPath: string) => [
  cli,
  'evaluate',
  '--model',
  modelPath,
  '--x',
  join(dir, 'x.npy'),
  '--y',
  join(dir, 'y.npy'),
  '--a',
  `occlusion=${join(dir, 'a.npy')}`,
  '--a',
  `gradient=${join(dir, 'g.npy')}`,
  '--quiet',
]

test('evaluate: every method × metric equals the library, in one chunk or three; results.json round-trips; scores.csv has a row per sample × method × metric', async (t) => {
  const { dir, demo, n, x, a, g, y } = await files()
  const outs = [join(dir, 'one'), join(dir, 'chunked')]
  for (const [i, out] of outs.entries()) {
    await run('node', [
      ...base(dir, demo.modelPath),
      '--metrics',
      'srg,deletion',
      '--set',
      'srg.featuresInStep=28',
      '--set',
      'deletion.baseline=mean',
      '--batch-size',
      '32',
      '--out',
      out,
      ...(i === 1 ? ['--chunk', '2'] : []),
    ])
  }
  const model = await OnnxModel.load(demo.modelPath, { maxBatchSize: 32 })
  t.teardown(() => model.close())
  for (const out of outs) {
    t.deepEqual(readdirSync(out).sort(), ['report.html', 'results.json', 'scores.csv'])
    const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
    t.false(doc.partial)
    t.deepEqual(doc.methods, ['occlusion', 'gradient'])
    t.is(doc.config.options.deletion.baseline, 'mean')
    t.is(doc.provenance.modelSha256.length, 64)
    for (const [method, maps] of [
      ['occlusion', a],
      ['gradient', g],
    ] as const) {
      const data = { x, shape: [n, 1, 28, 28] as const, y, a: maps, aShape: [n, 1, 28, 28] }
      const srg = await new SymmetricRelevanceGain({ featuresInStep: 28 }).evaluate(model, data)
      const del = await new Deletion({ baseline: 'mean' }).evaluate(model, data)
      const got = (id: string) => resultFromJSON(doc.metrics.find((m: { id: string }) => m.id === id).results[method])
      t.deepEqual(got('srg').scores, srg.scores)
      t.deepEqual(got('deletion').scores, del.scores)
      t.is(got('srg').forwardPasses, srg.forwardPasses)
    }
    const csv = readFileSync(join(out, 'scores.csv'), 'utf8').trim().split('\n')
    t.is(csv[0], 'sample,method,metric,score')
    t.is(csv.length, 1 + n * 2 * 2)
  }
})

test('evaluate prints the comparison table with the effective settings; --samples evaluates a range; --workers auto runs', async (t) => {
  const { dir, demo } = await files()
  const { stdout } = await run('node', [
    ...base(dir, demo.modelPath),
    '--workers',
    'auto',
    '--metrics',
    'pixel-flipping',
    '--set',
    'pixel-flipping.featuresInStep=98',
    '--samples',
    '2:5',
    '--out',
    join(dir, 'o'),
  ])
  t.regex(stdout, /2 methods × 1 metrics on samples 2…4/)
  t.regex(stdout, /pixel-flipping \(lower is better\): order="morf" featuresInStep=98/)
  t.regex(stdout, /occlusion\s+\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] #[12]/)
  t.regex(stdout, /gradient\s+\d\.\d{3} \[/)
  // 784 / 98 = 8 steps plus the unperturbed point, 3 samples, 2 methods: 54 rows.
  t.regex(stdout, /\n54 model rows in \d+ forward calls/)
})

test('--version, --help, and usage errors exit with 2 and say what was wrong', async (t) => {
  const { stdout: version } = await run('node', [cli, '--version'])
  t.regex(version, /^\d+\.\d+\.\d+\n$/)
  const { stdout: help } = await run('node', [cli, '--help'])
  t.regex(help, /--set ID.OPTION=VALUE/)
  t.regex(help, /srg ↑/)
  for (const [args, why] of [
    [['evaluate', '--x'], /Option '--x <value>' argument missing/],
    [['evalute'], /unknown command 'evalute' \(did you mean 'evaluate'\?\)/],
    [[], /no command given/],
    [['evaluate', '--x', 'a.npy', '--x', 'b.npy'], /--x is given twice/],
  ] as const) {
    const e = (await t.throwsAsync(run('node', [cli, ...args]))) as Fail
    t.is(e.code, 2, args.join(' '))
    t.regex(e.stderr, why)
    t.is(e.stderr.trim().split('\n').length, 1)
  }
})

test('every bad input is one line naming the file or flag, exit code 1, and nothing written', async (t) => {
  const { dir, demo, n } = await files()
  writeFileSync(join(dir, 'short.npy'), npy('<f4', [n - 1, 1, 28, 28], new Float32Array((n - 1) * 784)))
  writeFileSync(join(dir, 'wide.npy'), npy('<f4', [n, 2, 28, 28], new Float32Array(n * 2 * 784)))
  writeFileSync(join(dir, 'x14.npy'), npy('<f4', [n, 1, 14, 56], new Float32Array(n * 784)))
  const trunc = readFileSync(join(dir, 'x.npy'))
  writeFileSync(join(dir, 'trunc.npy'), trunc.subarray(0, trunc.length - 100))
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ model: demo.modelPath, metrix: ['srg'] }))
  writeFileSync(join(dir, 'file'), 'a file, not a folder')
  const aBytes = readFileSync(join(dir, 'a.npy'))
  writeFileSync(join(dir, 'a.npz'), npz('a', aBytes))
  // Cut at 3/4 of the deflate stream: the header and the first chunks inflate, a later one fails.
  writeFileSync(join(dir, 'cut.npz'), npz('a', aBytes, 0.75))
  const fixture = (f: string) => join(import.meta.dirname, 'fixtures', 'npy', f)
  const ok = base(dir, demo.modelPath)
  const swap = (flag: string, value: string) => {
    const args = [...ok]
    args[args.indexOf(flag) + 1] = value
    return args
  }
  const cases: [string[], RegExp][] = [
    [swap('--x', join(dir, 'trunc.npy')), /x: .*trunc\.npy: truncated: \d+ bytes of values expected/],
    [swap('--y', demo.modelPath), /y: .*model\.onnx is not a readable \.npy array: bad magic/],
    [swap('--x', `${join(dir, 'x.npz')}:x`), /x: cannot read .*x\.npz as an \.npz archive/],
    [[...swap('--a', `occlusion=${join(dir, 'short.npy')}`)], /a occlusion: .*short\.npy: holds 5 maps, x holds 6 samples/],
    [
      [...swap('--a', `occlusion=${join(dir, 'wide.npy')}`)],
      /a occlusion: .*wide\.npy: maps \[6, 2, 28, 28\] do not broadcast to inputs \[6, 1, 28, 28\]/,
    ],
    [swap('--a', `occlusion=${join(dir, 'a.npz')}:b`), /a occlusion: .*a\.npz has no array 'b'; it holds a \(INVALID_OPTION\)$/m],
    [
      swap('--a', `occlusion=${fixture('short-member.npz')}:x`),
      /a occlusion: .*short-member\.npz:x: truncated: 480 bytes of values expected, 476/,
    ],
    [swap('--a', `occlusion=${fixture('cut-stream.npz')}:x`), /a occlusion: .*cut-stream\.npz:x: corrupt archive member: /],
    [
      [...swap('--a', `occlusion=${join(dir, 'cut.npz')}:a`), '--chunk', '2'],
      /a occlusion: .*cut\.npz:a: corrupt archive member: unexpected end of file/,
    ],
    [swap('--x', join(dir, 'x14.npy')), /x: inputs \[6, 1, 14, 56\] do not match the model's input \[\?, 1, 28, 28\]/],
    [[...ok, '--metrics', 'srg,nope'], /--metrics: unknown metric 'nope'/],
    [[...ok, '--metrics', 'srg', '--set', 'srg.featuresInStp=4'], /srg.featuresInStp: unknown option \(did you mean 'featuresInStep'\?\)/],
    [[...ok, '--metrics', 'srg', '--set', 'srg.featuresInStep=-4'], /srg.featuresInStep: /],
    [[...ok, '--metrics', 'srg', '--set', 'road.order=lerf'], /--set: 'road' is not among the metrics run/],
    [[...ok, '--provider', 'tpu'], /--provider: expected one of cpu, cuda, tensorrt, webgpu/],
    [[...ok, '--samples', '4:99'], /samples: the data set has 6 samples/],
    [[...ok, '--out', join(dir, 'file', 'sub')], /out: cannot write to .*file\/sub/],
    [[cli, 'evaluate', '--config', join(dir, 'bad.json')], /config .*bad\.json\.metrix: unknown option \(did you mean 'metrics'\?\)/],
    [[cli, 'evaluate', '--model', demo.modelPath, '--quiet'], /--x: is required/],
  ]
  for (const [args, why] of cases) {
    const out = join(dir, `out-${cases.findIndex((c) => c[0] === args)}`)
    const e = (await t.throwsAsync(run('node', args.includes('--out') ? args : [...args, '--out', out]))) as Fail
    t.is(e.code, 1, args.join(' '))
    t.regex(e.stderr, why, args.join(' '))
    t.is(e.stderr.trim().split('\n').length, 1, e.stderr)
    t.false(existsSync(join(out, 'results.json')))
  }
})

test('channel-last inputs that do not match the model are refused, naming both shapes', async (t) => {
  const { dir, demo, n, x, a } = await files()
  // Channel-last copy of the (one-channel) inputs: [N, 28, 28, 1].
  writeFileSync(join(dir, 'x-nhwc.npy'), npy('<f4', [n, 28, 28, 1], x))
  writeFileSync(join(dir, 'a-nhwc.npy'), npy('<f4', [n, 28, 28, 1], a))
  // The demo model takes [?, 1, 28, 28]: NHWC inputs do not match it, and the error says so.
  const e = (await t.throwsAsync(
    run('node', [
      cli,
      'evaluate',
      '--model',
      demo.modelPath,
      '--x',
      join(dir, 'x-nhwc.npy'),
      '--y',
      join(dir, 'y.npy'),
      '--a',
      `o=${join(dir, 'a-nhwc.npy')}`,
      '--layout',
      'nhwc',
      '--quiet',
      '--out',
      join(dir, 'l'),
    ]),
  )) as Fail
  t.regex(e.stderr, /x: inputs \[6, 28, 28, 1\] do not match the model's input \[\?, 1, 28, 28\]/)
})

test('Ctrl-C stops within a batch and writes the finished chunks, marked partial, exit code 130', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'xai-eval-sigint-'))
  const child = spawn('node', [cli, 'demo', '--metrics', 'srg,soundness', '--chunk', '8', '--out', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  const code = await new Promise<number | null>((resolve) => {
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString()
      // Interrupt once the second chunk has started.
      if (/samples 8–15/.test(stderr) && !child.killed) child.kill('SIGINT')
    })
    child.on('close', resolve)
  })
  t.is(code, 130, stderr)
  const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
  t.true(doc.partial)
  t.true(doc.samples >= 8 && doc.samples < 64 && doc.samples % 8 === 0)
  t.is(doc.requested, 64)
  t.regex(readFileSync(join(out, 'report.html'), 'utf8'), /Partial results/)
  t.deepEqual(readdirSync(out).sort(), ['report.html', 'results.json', 'scores.csv'])
})

test('layout: taken from the model, else from the only plausible channel axis, refused when ambiguous', async (t) => {
  const { detectLayout } = await import('../src/io/files.js')
  t.is(detectLayout([5, 1, 28, 28], [null, 1, 28, 28], undefined), 'nchw')
  t.is(detectLayout([5, 28, 28, 3], [null, 28, 28, 3], undefined), 'nhwc')
  t.is(detectLayout([5, 3, 32, 32], undefined, undefined), 'nchw')
  t.is(detectLayout([5, 32, 32, 3], [null, null, null, null], undefined), 'nhwc')
  t.is(detectLayout([5, 3, 8, 3], undefined, 'nhwc'), 'nhwc')
  t.throws(() => detectLayout([5, 3, 8, 3], undefined, undefined), {
    message: /cannot tell the channel axis of inputs \[5, 3, 8, 3\]: give --layout/,
  })
  t.throws(() => detectLayout([5, 28, 28, 1], [null, 1, 28, 28], 'nhwc'), { message: /do not match the model's input \[\?, 1, 28, 28\]/ })
})

test('channel-last files and model (layout detected) give the numbers of the same data and model in NCHW', async (t) => {
  const { writeOnnx } = await import('xai-eval')
  const [n, c, h, w] = [5, 3, 5, 5]
  const f = c * h * w
  let s = 7
  const rand = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 2 ** 32
  }
  // Integer inputs and weights: both graphs' sums are exact, so the logits are bit-identical.
  const wNhwc = Float32Array.from({ length: f * 3 }, () => Math.floor(rand() * 5) - 2)
  const xNhwc = Float32Array.from({ length: n * f }, () => Math.floor(rand() * 4))
  const aNhwc = Float32Array.from({ length: n * f }, () => rand())
  const nchwIndex = (p: number) => {
    // p indexes [h, w, c]; its NCHW index:
    const ch = p % c
    const hw = Math.floor(p / c)
    return ch * h * w + hw
  }
  const wNchw = new Float32Array(f * 3)
  for (let p = 0; p < f; p++) for (let k = 0; k < 3; k++) wNchw[nchwIndex(p) * 3 + k] = wNhwc[p * 3 + k]!
  const toNchw = (v: Float32Array) => {
    const out = new Float32Array(v.length)
    for (let i = 0; i < n; i++) for (let p = 0; p < f; p++) out[i * f + nchwIndex(p)] = v[i * f + p]!
    return out
  }
  const model = (dims: (string | number)[], weights: Float32Array) =>
    writeOnnx({
      name: 'linear',
      inputs: [{ name: 'x', dims }],
      outputs: [{ name: 'logits', dims: ['N', 3] }],
      initializers: [{ name: 'w', dims: [f, 3], data: weights }],
      nodes: [
        { op: 'Flatten', inputs: ['x'], outputs: ['flat'], attributes: { axis: 1 } },
        { op: 'MatMul', inputs: ['flat', 'w'], outputs: ['logits'] },
      ],
    })
  const dir = mkdtempSync(join(tmpdir(), 'xai-eval-nhwc-'))
  writeFileSync(join(dir, 'nhwc.onnx'), model(['N', h, w, c], wNhwc))
  writeFileSync(join(dir, 'nchw.onnx'), model(['N', c, h, w], wNchw))
  writeFileSync(join(dir, 'x-nhwc.npy'), npy('<f4', [n, h, w, c], xNhwc))
  writeFileSync(join(dir, 'a-nhwc.npy'), npy('<f4', [n, h, w, c], aNhwc))
  writeFileSync(join(dir, 'x-nchw.npy'), npy('<f4', [n, c, h, w], toNchw(xNhwc)))
  writeFileSync(join(dir, 'a-nchw.npy'), npy('<f4', [n, c, h, w], toNchw(aNhwc)))
  writeFileSync(
    join(dir, 'y.npy'),
    npy(
      '<i8',
      [n],
      BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 3)),
    ),
  )
  const scores = async (layout: string) => {
    const out = join(dir, layout)
    await run('node', [
      cli,
      'evaluate',
      '--model',
      join(dir, `${layout}.onnx`),
      '--x',
      join(dir, `x-${layout}.npy`),
      '--y',
      join(dir, 'y.npy'),
      '--a',
      `m=${join(dir, `a-${layout}.npy`)}`,
      '--metrics',
      'pixel-flipping,deletion',
      '--set',
      'deletion.steps=8',
      '--set',
      'deletion.baseline=0',
      '--quiet',
      '--out',
      out,
    ])
    const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
    t.is(doc.config.layout, layout)
    return doc.metrics.map((m: { results: { m: unknown } }) => resultFromJSON(m.results.m).scores)
  }
  const [pf, del] = await scores('nhwc')
  const [pf2, del2] = await scores('nchw')
  t.deepEqual(pf, pf2)
  t.deepEqual(del, del2)
})

test('a model with two outputs needs --output-name (never a silent first output)', async (t) => {
  const { writeOnnx } = await import('xai-eval')
  const { dir } = await files()
  writeFileSync(
    join(dir, 'two.onnx'),
    writeOnnx({
      name: 'two_outputs',
      inputs: [{ name: 'x', dims: ['N', 1, 28, 28] }],
      outputs: [
        { name: 'features', dims: ['N', 784] },
        { name: 'logits', dims: ['N', 4] },
      ],
      initializers: [{ name: 'w', dims: [784, 4], data: Float32Array.from({ length: 784 * 4 }, (_, i) => ((i * 7) % 5) - 2) }],
      nodes: [
        { op: 'Flatten', inputs: ['x'], outputs: ['features'], attributes: { axis: 1 } },
        { op: 'MatMul', inputs: ['features', 'w'], outputs: ['logits'] },
      ],
    }),
  )
  const args = [
    ...base(dir, join(dir, 'two.onnx')),
    '--metrics',
    'pixel-flipping',
    '--set',
    'pixel-flipping.featuresInStep=392',
    '--out',
    join(dir, 'two'),
  ]
  const e = (await t.throwsAsync(run('node', args))) as Fail
  t.regex(e.stderr, /--output-name: .*two\.onnx has 2 outputs \(features, logits\): name the one to score/)
  const { stdout } = await run('node', [...args, '--output-name', 'logits'])
  t.regex(stdout, /pixel-flipping ↓/)
})

test('metrics that need an explainer are skipped with a note; results.json lists them', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'xai-eval-skip-'))
  const { stdout } = await run('node', [
    cli,
    'demo',
    '--metrics',
    'max-sensitivity,srg',
    '--set',
    'srg.featuresInStep=392',
    '--samples',
    '0:3',
    '--quiet',
    '--out',
    out,
  ])
  t.regex(stdout, /not run: max-sensitivity: needs explainer, which this run does not give/)
  t.regex(stdout, /srg ↑/)
  const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
  t.deepEqual(
    doc.metrics.map((m: { id: string }) => m.id),
    ['srg'],
  )
  t.is(doc.skipped[0].id, 'max-sensitivity')
})

const FACADE_METRICS = ['deletion', 'insertion', 'sensitivity', 'paramRandomization', 'dataRandomization', 'pointingGame']
const REEXPLAINING = ['sensitivity', 'paramRandomization', 'dataRandomization']

test('demo: the built-in explainers next to the precomputed maps, every method × explanation metric, the facade’s numbers', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'xai-eval-demo-'))
  const { stdout } = await run('node', [
    cli,
    'demo',
    '--metrics',
    'deletion',
    '--samples',
    '2:8',
    '--explainers',
    'occlusion,shapley',
    '--reps',
    '200',
    '--quiet',
    '--out',
    out,
  ])
  const demo = await loadDemo()
  const maps = Object.keys(demo.attributions).map((m) => `${m} (maps)`)
  const methods = ['occlusion', 'shapley', ...maps]
  // The faithfulness table of the precomputed maps first, then the explainer comparison.
  const second = stdout.slice(stdout.indexOf('explanation methods:'))
  t.regex(stdout, /explanation methods: 7 methods × 6 metrics \(ExplanationMetrics\) on samples 2…7/)
  t.regex(stdout, /occlusion \(built-in explainer\): patch=4 stride=4 baseline=0/)
  t.regex(stdout, /sensitivity \(lower is better\): nSamples=5 noiseLevel=0\.15 normalise=true seed=0/)
  // One table row per method with a cell per metric: six numbers for an explainer, three numbers and three n/a for maps.
  const cell = String.raw`(-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\] #[\d.]+( [★*])?|n/a)`
  for (const m of methods) {
    const row = second.split('\n').find((l) => l.startsWith(`${m} `))
    t.truthy(row, m)
    t.regex(row!, new RegExp(`^${m.replace(/[()]/g, '\\$&')}\\s+${Array(6).fill(cell).join('\\s+')}\\s*$`), row)
    t.is((row!.match(/n\/a/g) ?? []).length, m.endsWith('(maps)') ? 3 : 0, row)
  }
  const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
  const c = doc.explainerComparison
  t.deepEqual(doc.config.explainers, ['occlusion', 'shapley'])
  t.deepEqual(c.methods, methods)
  t.deepEqual(
    c.metrics.map((m: { id: string }) => m.id),
    FACADE_METRICS,
  )
  t.is(c.cells.length, methods.length * FACADE_METRICS.length)
  for (const m of methods) {
    for (const id of FACADE_METRICS) {
      const x = c.cells.find((y: { method: string; metric: string }) => y.method === m && y.metric === id)
      const na = m.endsWith('(maps)') && REEXPLAINING.includes(id)
      t.is(x.error !== undefined, na, `${m} × ${id}`)
      if (!na) t.is(x.n, 6, `${m} × ${id}`)
    }
  }
  // The same Deletion on the same maps and samples: the facade's cell is the faithfulness table's mean.
  const del = doc.comparisons.find((x: { metric: string }) => x.metric === 'deletion')
  for (const m of Object.keys(demo.attributions)) {
    const cellMean = c.cells.find((y: { method: string; metric: string }) => y.method === `${m} (maps)` && y.metric === 'deletion').mean
    t.true(Math.abs(cellMean - del.methods.find((x: { method: string }) => x.method === m).mean) < 1e-12, m)
  }
  // The stated occlusion settings reproduce the demo's pointing-game cell through the facade directly.
  const model = await OnnxModel.load(demo.modelPath)
  t.teardown(() => model.close())
  const [, ch, h, w] = demo.shape
  const pg = await new ExplanationMetrics(model, {
    explainers: { occlusion: occlusion({ patch: 4, stride: 4, baseline: 0 }) },
  }).pointingGame({
    x: demo.x.subarray(2 * ch * h * w, 8 * ch * h * w),
    shape: [6, ch, h, w],
    y: demo.y.subarray(2, 8),
    masks: demo.masks.subarray(2 * h * w, 8 * h * w),
  })
  t.is(
    c.cells.find((y: { method: string; metric: string }) => y.method === 'occlusion' && y.metric === 'pointingGame').mean,
    pg.occlusion!.mean,
  )
})

test('demo --explainers: none skips the explainer table; unknown, repeated or outside the demo is one line naming the flag', async (t) => {
  const { stdout } = await run('node', [cli, 'demo', '--metrics', 'deletion', '--samples', '0:2', '--explainers', 'none', '--quiet'])
  t.regex(stdout, /deletion ↓/)
  t.notRegex(stdout, /explanation methods/)
  const { dir, demo } = await files()
  for (const [args, why] of [
    [
      [cli, 'demo', '--explainers', 'rse'],
      /--explainers: unknown explainer 'rse' \(did you mean 'rise'\?\): occlusion, rise, shapley or none/,
    ],
    [[cli, 'demo', '--explainers', 'rise,rise'], /--explainers: 'rise' is given twice/],
    [[...base(dir, demo.modelPath), '--explainers', 'rise'], /--explainers: is for xai-eval demo only/],
  ] as const) {
    const e = (await t.throwsAsync(run('node', args))) as Fail
    t.is(e.code, 1, args.join(' '))
    t.regex(e.stderr, why)
    t.is(e.stderr.trim().split('\n').length, 1)
  }
})

test('Ctrl-C during the explainer comparison: the faithfulness results are written, the comparison is not, exit code 130', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'xai-eval-sigint-'))
  const child = spawn('node', [cli, 'demo', '--metrics', 'deletion', '--samples', '0:32', '--out', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  let stdout = ''
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString()
  })
  const code = await new Promise<number | null>((resolve) => {
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString()
      if (/explaining with/.test(stderr) && !child.killed) child.kill('SIGINT')
    })
    child.on('close', resolve)
  })
  t.is(code, 130, stderr)
  t.regex(stdout, /explainer comparison interrupted: not shown, not written/)
  const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
  t.false(doc.partial)
  t.is(doc.samples, 32)
  t.false('explainerComparison' in doc)
})
