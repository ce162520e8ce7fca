// One bare onnxruntime-node session in a process of its own, for `bare-limit.js`: it runs
// `rows` rows in batches of `size` when asked and says how long that took. Inputs are built
// once per size, so the time is the session's alone.
import * as ort from 'onnxruntime-node'

const [path, threads, shape] = process.argv.slice(2)
const rowShape = shape.split('x').map(Number)
const rowLen = rowShape.reduce((p, d) => p * d, 1)
const session = await ort.InferenceSession.create(path, { intraOpNumThreads: Number(threads), graphOptimizationLevel: 'all' })
const input = session.inputNames[0]
const inputs = new Map()
const batchOf = (n) => {
  if (!inputs.has(n)) inputs.set(n, new ort.Tensor('float32', new Float32Array(n * rowLen).fill(0.5), [n, ...rowShape]))
  return inputs.get(n)
}

process.on('message', async ({ rows, size }) => {
  const t = performance.now()
  for (let done = 0; done < rows; done += size) await session.run({ [input]: batchOf(Math.min(size, rows - done)) })
  process.send({ ms: performance.now() - t })
})
process.send({ ready: true })
