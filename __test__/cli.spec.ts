// The command line: `evaluate` on .npy files gives the library's numbers; bad input is a clear error.
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import test from 'ava'
import { loadDemo, OnnxModel, SymmetricRelevanceGain } from 'xai-eval'

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

async function files() {
  const demo = await loadDemo()
  const n = 6
  const dir = mkdtempSync(join(tmpdir(), 'xai-eval-cli-'))
  const x = demo.x.slice(0, n * 784)
  const a = demo.attributions.occlusion!.slice(0, n * 784)
  const y = BigInt64Array.from(demo.y.subarray(0, n), BigInt)
  writeFileSync(join(dir, 'x.npy'), npy('<f4', [n, 1, 28, 28], x))
  writeFileSync(join(dir, 'a.npy'), npy('<f8', [n, 1, 28, 28], Float64Array.from(a)))
  writeFileSync(join(dir, 'y.npy'), npy('<i8', [n], y))
  return { dir, demo, n, x, a, y: demo.y.subarray(0, n) }
}

test('evaluate --json on .npy files reproduces the library (float64 a, int64 y)', async (t) => {
  const { dir, demo, n, x, a, y } = await files()
  const { stdout } = await run('node', [
    cli,
    'evaluate',
    '--model',
    demo.modelPath,
    '--x',
    join(dir, 'x.npy'),
    '--y',
    join(dir, 'y.npy'),
    '--a',
    join(dir, 'a.npy'),
    '--metrics',
    'srg,deletion',
    '--features-in-step',
    '28',
    '--batch',
    '32',
    '--json',
  ])
  const out = JSON.parse(stdout) as { provider: string; metrics: Record<string, { mean: number; scores: number[]; forwardPasses: number }> }
  t.is(out.provider, 'cpu')
  t.deepEqual(Object.keys(out.metrics), ['srg', 'deletion'])
  const model = await OnnxModel.load(demo.modelPath, { maxBatchSize: 32 })
  t.teardown(() => model.close())
  const expected = await new SymmetricRelevanceGain({ featuresInStep: 28 }).evaluate(model, {
    x,
    shape: [n, 1, 28, 28],
    y,
    a,
    aShape: [n, 1, 28, 28],
  })
  t.deepEqual(out.metrics.srg!.scores, Array.from(expected.scores))
  t.is(out.metrics.srg!.forwardPasses, expected.forwardPasses)
})

test('evaluate prints a table; a missing option or unknown metric is a clear error with exit code 1', async (t) => {
  const { dir, demo } = await files()
  const args = ['evaluate', '--model', demo.modelPath, '--x', join(dir, 'x.npy'), '--y', join(dir, 'y.npy'), '--a', join(dir, 'a.npy')]
  const { stdout } = await run('node', [cli, ...args, '--metrics', 'mif', '--features-in-step', '98'])
  // 784 / 98 = 8 steps plus the unperturbed point, 6 samples: 54 rows.
  t.regex(stdout, /MIF ↓\s+\d\.\d{3} ± \d\.\d{3}\s+54/)
  const missing = await t.throwsAsync(run('node', [cli, 'evaluate', '--model', demo.modelPath]))
  t.regex((missing as { stderr: string }).stderr, /x: --x is required \(INVALID_OPTION\)/)
  const unknown = await t.throwsAsync(run('node', [cli, ...args, '--metrics', 'srg,nope']))
  t.regex((unknown as { stderr: string }).stderr, /metrics: unknown metric 'nope'/)
  const notNpy = await t.throwsAsync(run('node', [cli, ...args.slice(0, 5), '--y', demo.modelPath, '--a', join(dir, 'a.npy')]))
  t.regex((notNpy as { stderr: string }).stderr, /y: not a supported \.npy array: bad magic/)
})

test('a malformed command line prints the usage and exits with 2', async (t) => {
  const e = (await t.throwsAsync(run('node', [cli, 'evaluate', '--x']))) as { code: number; stderr: string }
  t.is(e.code, 2)
  t.regex(e.stderr, /Option '--x <value>' argument missing[\s\S]*Usage:/)
})
