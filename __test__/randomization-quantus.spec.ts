// compat: 'quantus' of the randomization checks against quantus 0.6.0 itself: the fixture
// (scripts/make_quantus_randomisation_fixture.py) runs RandomLogit, MPRT, EfficientMPRT and
// SmoothMPRT on a tiny CNN exported to ONNX, with xai-eval's keyed draws handed to Quantus (the
// random classes, the weights its `reset_parameters` writes, the smoothing noise) and xai-eval's
// occlusion explainer on both sides. Here the same ONNX file goes through the whole MPRT path:
// decode, keyed weights, re-encode, load every stage, explain, compare.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { fromBinary } from '@bufbuild/protobuf'
import test from 'ava'
import { ModelProtoSchema } from 'onnx-buf'
import {
  type Dataset,
  EfficientMPRT,
  ModelParameterRandomization,
  type ModelParameterRandomizationResult,
  OnnxModel,
  occlusion,
  RandomLogit,
  randomizeLayers,
  SmoothMPRT,
} from 'xai-eval'

const dir = join(import.meta.dirname, 'fixtures', 'quantus')
const fixture = JSON.parse(readFileSync(join(dir, 'randomisation.json'), 'utf8')) as {
  model: string
  shape: [number, number, number, number]
  classes: number
  x: number[]
  y: number[]
  a: number[]
  aNoise: number[]
  weightsLayer0Tensor0: number[]
  runs: {
    metric: string
    params: Record<string, unknown>
    batchSize: number
    a?: 'a' | 'noise'
    returns?: 'average'
    otherClass?: number[]
    scores: number[] | Record<string, number[]>
  }[]
}
const onnx = join(dir, fixture.model)
const [N, , H, W] = fixture.shape
const modelOptions = { workers: 1, threads: 1, output: 'logits' as const }
const explainer = occlusion({ patch: 2, stride: 1 })
const dataOf = (a: number[]): Dataset => ({
  x: Float32Array.from(fixture.x),
  shape: fixture.shape,
  y: fixture.y,
  a: Float32Array.from(a),
  aShape: [N, 1, H, W],
})
const TOL = 1e-5

let model: OnnxModel
test.before(async () => {
  model = await OnnxModel.load(onnx, modelOptions)
})
test.after.always(async () => {
  await model?.close()
})

function close(t: import('ava').ExecutionContext, got: ArrayLike<number>, want: readonly number[], what: string): void {
  t.is(got.length, want.length, what)
  let worst = 0
  want.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(got[i]! - v))
    t.true(Math.abs(got[i]! - v) <= TOL, `${what}[${i}]: ${got[i]} vs quantus ${v}`)
  })
  t.log(`${what}: max |xai-eval − quantus| = ${worst.toExponential(2)}`)
}

test('the keyed weights are those the fixture wrote into torch (layer 0, tensor 0)', (t) => {
  const m = fromBinary(ModelProtoSchema, randomizeLayers(readFileSync(onnx), [0], 5))
  const w = m.graph!.initializer.find((i) => i.name === 'conv1.weight')!
  const values = w.rawData.length ? new Float32Array(w.rawData.slice().buffer) : Float32Array.from(w.floatData)
  t.deepEqual(Array.from(values.subarray(0, 9)), fixture.weightsLayer0Tensor0)
})

test('RandomLogit compat quantus matches quantus 0.6.0', async (t) => {
  for (const run of fixture.runs.filter((r) => r.metric === 'RandomLogit')) {
    const r = await new RandomLogit({ explainer, ...(run.params as object) } as never).evaluate(model, dataOf(fixture.a))
    t.deepEqual(Array.from(r.otherClass), run.otherClass)
    close(t, r.scores, run.scores as number[], `RandomLogit ${run.params.similarity}`)
  }
})

test('MPRT compat quantus matches quantus 0.6.0 per layer, and its original entry', async (t) => {
  for (const run of fixture.runs.filter((r) => r.metric === 'MPRT')) {
    const r = (await new ModelParameterRandomization({ explainer, onnx, modelOptions, ...(run.params as object) } as never).evaluate(
      model,
      dataOf(run.a === 'noise' ? fixture.aNoise : fixture.a),
    )) as ModelParameterRandomizationResult
    if (run.returns === 'average') {
      close(t, r.average, run.scores as number[], 'MPRT return_average_correlation')
      continue
    }
    const q = run.scores as Record<string, number[]>
    const stages = Object.keys(q).filter((k) => k !== 'original')
    t.deepEqual(
      r.layers.map((l) => l.name.split('/')[1]),
      stages,
    )
    close(t, r.original!, q.original!, `MPRT ${run.params.layerOrder} original`)
    stages.forEach((name, k) => {
      const got = Array.from({ length: N }, (_, s) => r.similarity[s * stages.length + k]!)
      close(t, got, q[name]!, `MPRT ${run.params.layerOrder} ${name}`)
    })
    close(t, r.scores, q[stages[stages.length - 1]!]!, 'last layer')
  }
})

test('EfficientMPRT compat quantus matches quantus 0.6.0', async (t) => {
  const run = fixture.runs.find((r) => r.metric === 'EfficientMPRT')!
  const r = await new EfficientMPRT({ explainer, onnx, modelOptions, ...(run.params as object) } as never).evaluate(
    model,
    dataOf(fixture.a),
  )
  close(t, r.scores, run.scores as number[], 'EfficientMPRT')
})

test('SmoothMPRT compat quantus matches quantus 0.6.0 per layer', async (t) => {
  for (const run of fixture.runs.filter((r) => r.metric === 'SmoothMPRT')) {
    const r = (await new SmoothMPRT({ explainer, onnx, modelOptions, ...(run.params as object) } as never).evaluate(
      model,
      dataOf(fixture.a),
    )) as ModelParameterRandomizationResult
    const q = run.scores as Record<string, number[]>
    // Quantus's reference is the smoothed explanation of the trained model: `original` is 1.
    close(t, q.original!, new Array(N).fill(1), 'quantus original')
    const stages = Object.keys(q).filter((k) => k !== 'original')
    stages.forEach((name, k) => {
      const got = Array.from({ length: N }, (_, s) => r.similarity[s * stages.length + k]!)
      close(t, got, q[name]!, `SmoothMPRT ${run.params.layerOrder} ${name}`)
    })
  }
})
