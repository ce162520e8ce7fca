// Every bad input is a typed XaiEvalError with a stable code and the argument at fault, never a
// crash. Data errors are checked against every metric that accepts the input.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'
import {
  Deletion,
  FunctionModel,
  Insertion,
  loadDemo,
  OnnxModel,
  PixelFlipping,
  SymmetricRelevanceGain,
  XaiEvalError,
  type Dataset,
  type ErrorCode,
  type Model,
} from 'xai-eval'

import { batched, linearRowModel, prng } from './reference.js'

// ---------------------------------------------------------------------------------------------
// A valid small data set (N = 2, C = 3, 2 × 3 pixels, K = 3 classes) and a linear model

const N = 2
const C = 3
const H = 2
const W = 3
const K = 3
const ROW = C * H * W
const rand = prng(99)
const valid: Dataset = {
  x: Float32Array.from({ length: N * ROW }, () => rand() - 0.5),
  shape: [N, C, H, W],
  y: [0, 2],
  a: Float32Array.from({ length: N * H * W }, () => rand() - 0.5),
  aShape: [N, 1, H, W],
}
const row = linearRowModel(
  Float64Array.from({ length: K * ROW }, () => rand() - 0.5),
  Float64Array.from({ length: K }, () => rand()),
)
const linear = () => new FunctionModel(batched(row), { maxBatchSize: 4 })

const metrics = () => [
  new SymmetricRelevanceGain(),
  new PixelFlipping(),
  new Deletion({ steps: 3, target: 'label' }),
  new Insertion({ steps: 3, target: 'label' }),
]
const _entryMetrics = () => [new SymmetricRelevanceGain(), new PixelFlipping()]

/** `data` with `x` (or `a`) copied and entry `i` set to `v`. */
const withX = (i: number, v: number): Dataset => {
  const x = valid.x.slice()
  x[i] = v
  return { ...valid, x }
}
const withA = (i: number, v: number): Dataset => {
  const a = valid.a.slice()
  a[i] = v
  return { ...valid, a }
}

async function expectError(
  t: ExecutionContext,
  run: () => Promise<unknown> | unknown,
  code: ErrorCode,
  arg: string,
  what = '',
): Promise<void> {
  let error: unknown
  try {
    await run()
  } catch (e) {
    error = e
  }
  t.true(
    error instanceof XaiEvalError,
    `${what}: expected an XaiEvalError ${code}/${arg}, got ${error === undefined ? 'no error' : String(error)}`,
  )
  if (!(error instanceof XaiEvalError)) return
  t.is(error.code, code, `${what}: code (${error.message})`)
  t.is(error.arg, arg, `${what}: arg (${error.message})`)
  t.is(error.name, 'XaiEvalError')
  t.true(error.message.length > error.arg.length + 2, `${what}: a readable message`)
}

interface Case {
  name: string
  code: ErrorCode
  arg: string
  /** Each thunk must reject with the error. */
  runs: (() => Promise<unknown> | unknown)[]
}

const onEvery = (data: Dataset, list = metrics(), model: () => Model = linear) => list.map((m) => () => m.evaluate(model(), data))

const cases: Case[] = [
  // Shapes
  { name: 'x shorter than its shape', code: 'SHAPE_MISMATCH', arg: 'x', runs: onEvery({ ...valid, x: valid.x.subarray(1) }) },
  { name: 'x longer than its shape', code: 'SHAPE_MISMATCH', arg: 'x', runs: onEvery({ ...valid, x: new Float32Array(N * ROW + C) }) },
  { name: 'a does not match aShape', code: 'SHAPE_MISMATCH', arg: 'a', runs: onEvery({ ...valid, a: valid.a.subarray(0, N * H * W - 1) }) },
  {
    name: 'a does not match the default aShape (= shape)',
    code: 'SHAPE_MISMATCH',
    arg: 'a',
    runs: onEvery({ ...valid, aShape: undefined }),
  },
  { name: 'y has the wrong length', code: 'SHAPE_MISMATCH', arg: 'y', runs: onEvery({ ...valid, y: [0] }) },
  {
    name: 'aShape with a wrong channel count',
    code: 'SHAPE_MISMATCH',
    arg: 'aShape',
    runs: onEvery({ ...valid, a: new Float32Array(N * 2 * H * W), aShape: [N, 2, H, W] }),
  },
  { name: 'aShape with wrong spatial dims', code: 'SHAPE_MISMATCH', arg: 'aShape', runs: onEvery({ ...valid, aShape: [N, 1, W, H] }) },
  { name: 'a shape that is not 4-d', code: 'SHAPE_MISMATCH', arg: 'shape', runs: onEvery({ ...valid, shape: [N, ROW] as never }) },
  {
    name: 'x that is not a Float32Array',
    code: 'INVALID_OPTION',
    arg: 'x',
    runs: onEvery({ ...valid, x: Float64Array.from(valid.x) as never }),
  },

  // Non-finite values
  { name: 'NaN in x', code: 'NON_FINITE', arg: 'x', runs: onEvery(withX(5, Number.NaN)) },
  { name: '+Infinity in x', code: 'NON_FINITE', arg: 'x', runs: onEvery(withX(N * ROW - 1, Number.POSITIVE_INFINITY)) },
  { name: '−Infinity in x', code: 'NON_FINITE', arg: 'x', runs: onEvery(withX(0, Number.NEGATIVE_INFINITY)) },
  { name: 'NaN in a', code: 'NON_FINITE', arg: 'a', runs: onEvery(withA(3, Number.NaN)) },
  { name: 'Infinity in a', code: 'NON_FINITE', arg: 'a', runs: onEvery(withA(N * H * W - 1, Number.POSITIVE_INFINITY)) },

  // Options
  ...[0, 1.5, -1, Number.NaN, ROW + 1].map(
    (fis): Case => ({
      name: `featuresInStep = ${fis}`,
      code: 'INVALID_OPTION',
      arg: 'featuresInStep',
      runs: [
        () => new SymmetricRelevanceGain({ featuresInStep: fis }).evaluate(linear(), valid),
        () => new PixelFlipping({ featuresInStep: fis }).evaluate(linear(), valid),
        () => new PixelFlipping({ featuresInStep: fis, order: 'lerf' }).evaluate(linear(), valid),
      ],
    }),
  ),
  ...[0, H * W + 1, 2.5].map(
    (steps): Case => ({
      name: `steps = ${steps} (P = ${H * W})`,
      code: 'INVALID_OPTION',
      arg: 'steps',
      runs: [() => new Deletion({ steps }).evaluate(linear(), valid), () => new Insertion({ steps }).evaluate(linear(), valid)],
    }),
  ),
  {
    name: 'empty data (N = 0)',
    code: 'EMPTY_INPUT',
    arg: 'x',
    runs: onEvery({ x: new Float32Array(), shape: [0, C, H, W], y: [], a: new Float32Array(), aShape: [0, 1, H, W] }),
  },
  { name: 'label = K (out of range)', code: 'INVALID_OPTION', arg: 'y', runs: onEvery({ ...valid, y: [0, K] }) },
  { name: 'negative label', code: 'INVALID_OPTION', arg: 'y', runs: onEvery({ ...valid, y: [-1, 0] }) },
  { name: 'non-integer label', code: 'INVALID_OPTION', arg: 'y', runs: onEvery({ ...valid, y: [0.5, 0] }) },
  {
    name: 'unknown baseline string',
    code: 'INVALID_OPTION',
    arg: 'baseline',
    runs: [
      () => new SymmetricRelevanceGain({ baseline: 'gray' as never }).evaluate(linear(), valid),
      () => new PixelFlipping({ baseline: 'gray' as never }).evaluate(linear(), valid),
      () => new Deletion({ steps: 3, baseline: 'gray' as never }).evaluate(linear(), valid),
      () => new Insertion({ steps: 3, baseline: 'gray' as never }).evaluate(linear(), valid),
    ],
  },
  {
    name: 'non-finite constant baseline',
    code: 'INVALID_OPTION',
    arg: 'baseline',
    runs: [() => new SymmetricRelevanceGain({ baseline: Number.NaN }).evaluate(linear(), valid)],
  },
  {
    name: "compat: 'quantus' with baseline 'mean'",
    code: 'INVALID_OPTION',
    arg: 'baseline',
    runs: [
      () => new SymmetricRelevanceGain({ compat: 'quantus', baseline: 'mean' }).evaluate(linear(), valid),
      () => new PixelFlipping({ compat: 'quantus', baseline: 'mean' }).evaluate(linear(), valid),
    ],
  },
  {
    name: "compat: 'quantus' with H·W not a multiple of featuresInStep",
    code: 'INVALID_OPTION',
    arg: 'featuresInStep',
    runs: [() => new SymmetricRelevanceGain({ compat: 'quantus', featuresInStep: 4 }).evaluate(linear(), valid)],
  },
  { name: 'unknown target', code: 'INVALID_OPTION', arg: 'target', runs: [() => new Deletion({ target: 'top' as never })] },
  { name: 'unknown order', code: 'INVALID_OPTION', arg: 'order', runs: [() => new PixelFlipping({ order: 'random' as never })] },

  // Models
  {
    name: 'model output not [N, K] (one value too many per batch)',
    code: 'MODEL_OUTPUT',
    arg: 'model.output',
    runs: onEvery(
      valid,
      metrics(),
      () =>
        new FunctionModel(
          (x, shape) => {
            const out = batched(row)(x, shape)
            const longer = new Float32Array(out.length + 1)
            longer.set(out)
            return longer
          },
          { maxBatchSize: 4 },
        ),
    ),
  },
  {
    name: 'model output empty',
    code: 'MODEL_OUTPUT',
    arg: 'model.output',
    runs: onEvery(valid, metrics(), () => new FunctionModel(() => new Float32Array(0))),
  },
  {
    name: 'model output not a Float32Array',
    code: 'MODEL_OUTPUT',
    arg: 'model.output',
    runs: onEvery(valid, metrics(), () => new FunctionModel((x, shape) => Array.from(batched(row)(x, shape)) as never)),
  },
  {
    name: 'NaN in the model output',
    code: 'NON_FINITE',
    arg: 'output',
    runs: onEvery(valid, metrics(), () => new FunctionModel((x, shape) => batched(row)(x, shape).fill(Number.NaN))),
  },
  { name: 'FunctionModel without a function', code: 'INVALID_OPTION', arg: 'fn', runs: [() => new FunctionModel(42 as never)] },
  {
    name: 'FunctionModel maxBatchSize 0',
    code: 'INVALID_OPTION',
    arg: 'maxBatchSize',
    runs: [() => new FunctionModel(batched(row), { maxBatchSize: 0 })],
  },
  {
    name: 'OnnxModel.load on a missing file',
    code: 'MODEL_LOAD',
    arg: 'path',
    runs: [() => OnnxModel.load(join(import.meta.dirname, 'fixtures', 'no-such-model.onnx'))],
  },
]

for (const c of cases) {
  test(`${c.name} → ${c.code} (${c.arg})`, async (t) => {
    for (const [i, run] of c.runs.entries()) await expectError(t, run, c.code, c.arg, `${c.name} #${i}`)
  })
}

test('none of the cases crashes the process: afterwards the same model still evaluates', async (t) => {
  const model = linear()
  for (const c of cases) {
    for (const run of c.runs) await t.throwsAsync(async () => run())
  }
  for (const m of metrics()) {
    const r = await m.evaluate(model, valid)
    t.is(r.scores.length, N)
    t.is(r.skipped, 0)
  }
})

test('a model function that throws rejects the evaluation with its error', async (t) => {
  const boom = new Error('backend down')
  const model = new FunctionModel(() => {
    throw boom
  })
  for (const m of metrics()) {
    const e = await t.throwsAsync(m.evaluate(model, valid))
    t.true(e === boom || (e as Error).cause === boom, String(e))
  }
})

// ---------------------------------------------------------------------------------------------
// ONNX models

const demo = loadDemo()

async function wrongShape(model: OnnxModel) {
  const d = await demo
  // Three channels where the demo model takes one; a per-pixel attribution.
  return new SymmetricRelevanceGain({ featuresInStep: 28 * 28 }).evaluate(model, {
    x: new Float32Array(2 * 3 * 28 * 28).fill(0.5),
    shape: [2, 3, 28, 28],
    y: d.y.subarray(0, 2),
    a: d.attributions.gradient!.subarray(0, 2 * 28 * 28),
    aShape: [2, 1, 28, 28],
  })
}

/** Closes a model after its in-flight forward passes had time to finish (see the crash tests). */
const closeLater = (model: OnnxModel) => async () => {
  await new Promise((resolve) => setTimeout(resolve, 300))
  await model.close()
}

test('OnnxModel with the wrong input shape → SHAPE_MISMATCH (x)', async (t) => {
  const model = await OnnxModel.load((await demo).modelPath, { maxBatchSize: 16 })
  t.teardown(closeLater(model))
  await expectError(t, () => wrongShape(model), 'SHAPE_MISMATCH', 'x')
  t.is(model.stats.rows, 0)
})

// Regression: with the default maxBatchSize 'auto', the batch sizing must check the row shape before it
// feeds rows to onnxruntime (it used to surface as MODEL_OUTPUT from inside the session).
test("OnnxModel with the wrong input shape and maxBatchSize 'auto' → SHAPE_MISMATCH (x)", async (t) => {
  const model = await OnnxModel.load((await demo).modelPath)
  t.teardown(closeLater(model))
  await expectError(t, () => wrongShape(model), 'SHAPE_MISMATCH', 'x')
})

test("OnnxModel.load with executionProviders ['cuda'] falls back to cpu with a warning, and evaluates", async (t) => {
  const warnings: Error[] = []
  const listener = (w: Error) => warnings.push(w)
  process.on('warning', listener)
  t.teardown(() => process.off('warning', listener))
  const model = await OnnxModel.load((await demo).modelPath, { executionProviders: ['cuda'], maxBatchSize: 32 })
  t.teardown(() => model.close())
  await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on the next tick
  const fallback = warnings.filter((w) => (w as Error & { code?: string }).code === 'XAI_EVAL_PROVIDER_FALLBACK')
  if (model.provider === 'cuda') {
    t.log('CUDA is available here: no fallback expected')
    t.is(fallback.length, 0)
  } else {
    t.is(model.provider, 'cpu')
    t.is(fallback.length, 1, 'one fallback warning')
    t.regex(fallback[0]!.message, /cuda/)
    t.is(model.concurrency, 2, 'the CPU default of two workers')
  }
  const d = await demo
  const r = await new SymmetricRelevanceGain({ featuresInStep: 56 }).evaluate(model, {
    x: d.x.subarray(0, 4 * 784),
    shape: [4, 1, 28, 28],
    y: d.y.subarray(0, 4),
    a: d.attributions['integrated-gradients']!.subarray(0, 4 * 784),
  })
  t.is(r.scores.length, 4)
  t.is(r.skipped, 0)
  t.is(r.forwardPasses, 4 * 2 * 14)
})

test('OnnxModel.load rejects unknown input and output names', async (t) => {
  const path = (await demo).modelPath
  await expectError(t, () => OnnxModel.load(path, { inputName: 'pixels' }), 'INVALID_OPTION', 'inputName')
  await expectError(t, () => OnnxModel.load(path, { outputName: 'probs' }), 'INVALID_OPTION', 'outputName')
  await expectError(t, () => OnnxModel.load(path, { maxBatchSize: 0 }), 'INVALID_OPTION', 'maxBatchSize')
})

// ---------------------------------------------------------------------------------------------
// Crashes: run in a child process, so that a crash fails one test instead of killing this file.

const root = join(import.meta.dirname, '..')

function runChild(script: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b))
    child.stderr.on('data', (b: Buffer) => (stderr += b))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

const childPrelude = `
import { OnnxModel, SymmetricRelevanceGain, loadDemo } from 'xai-eval'
const demo = await loadDemo()
const n = 8
const data = { x: demo.x.subarray(0, n * 784), shape: [n, 1, 28, 28], y: demo.y.subarray(0, n), a: demo.attributions.gradient.subarray(0, n * 784) }
`

test('the child-process harness itself works (a clean evaluate-then-close survives)', async (t) => {
  t.true(existsSync(join(root, 'dist', 'index.js')))
  const r = await runChild(`${childPrelude}
for (let i = 0; i < 3; i++) {
  const model = await OnnxModel.load(demo.modelPath, { maxBatchSize: 64 })
  await new SymmetricRelevanceGain({ featuresInStep: 4 }).evaluate(model, data)
  await model.close()
}
console.log('survived')`)
  t.is(r.code, 0, r.stderr.slice(-2000))
  t.is(r.stdout.trim(), 'survived')
})

// Regression: an aborted evaluation used to reject while other lanes' forward passes still ran in
// the worker pool; closing the model right after (the usual try/finally) then killed workers
// mid-inference and the process died (SIGABRT from Napi::Error, or Piscina's "Unexpected message
// from Worker"), in ~5 of 6 runs.
test('aborting an ONNX evaluation and then closing the model does not crash the process', async (t) => {
  const r = await runChild(`${childPrelude}
for (let i = 0; i < 5; i++) {
  const model = await OnnxModel.load(demo.modelPath, { maxBatchSize: 64 })
  const controller = new AbortController()
  try {
    await new SymmetricRelevanceGain({ featuresInStep: 4 }).evaluate(model, data, { signal: controller.signal, onProgress: () => controller.abort() })
  } catch (e) {
    if (e.code !== 'ABORTED') throw e
  } finally {
    await model.close()
  }
}
console.log('survived')`)
  t.is(r.code, 0, `exit ${r.code} ${r.signal ?? ''}: ${r.stderr.slice(-1500)}`)
  t.is(r.stdout.trim(), 'survived')
})

// A failed evaluation waits for its other model calls (nothing of it runs on after it rejects);
// an aborted one does not (a model call may never settle), see below.
function slowModel(failOnCall: number | undefined) {
  const state = { inFlight: 0, calls: 0 }
  const model = new FunctionModel(
    async (x, shape) => {
      const call = state.calls++
      state.inFlight++
      try {
        await new Promise((resolve) => setTimeout(resolve, call === failOnCall ? 1 : 60))
        if (call === failOnCall) throw new Error('backend down')
        return batched(row)(x, shape)
      } finally {
        state.inFlight--
      }
    },
    { maxBatchSize: 2, concurrency: 2 },
  )
  return { model, state }
}

test('a failed evaluation settles only after all its model calls have settled', async (t) => {
  const { model, state } = slowModel(1)
  const e = await t.throwsAsync(new SymmetricRelevanceGain().evaluate(model, valid))
  t.true(e instanceof XaiEvalError && e.code === 'MODEL_OUTPUT' && e.arg === 'model', String(e))
  t.is((e?.cause as Error | undefined)?.message, 'backend down')
  t.is(state.inFlight, 0, 'model calls still running when evaluate() rejected')
})

// An abort does not wait for the model: a call that never settles would keep the evaluation
// pending forever (issue 11). Closing an OnnxModel right after is safe because close() itself
// waits for the batches inside onnxruntime (the test two above).
test('an aborted evaluation rejects at once, without waiting for its model calls; their late results are dropped', async (t) => {
  const { model, state } = slowModel(undefined)
  const controller = new AbortController()
  const e = await t.throwsAsync(
    new SymmetricRelevanceGain().evaluate(model, valid, { signal: controller.signal, onProgress: () => controller.abort() }),
  )
  t.is((e as XaiEvalError).code, 'ABORTED')
  t.true(state.inFlight > 0, 'the abort must not have waited for the model call in flight')
  while (state.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10))
})
