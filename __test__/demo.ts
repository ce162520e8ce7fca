// The first `n` samples of the embedded demo (1×28×28 CNN) as a data set, with the model's path:
// what the specs of the model pool (batch size, pool shape, embedding) run on.
import { type Dataset, loadDemo } from 'xai-eval'

const demo = loadDemo()

export async function demoData(n: number, method = 'integrated-gradients'): Promise<{ path: string; data: Dataset }> {
  const d = await demo
  const [, c, h, w] = d.shape
  return {
    path: d.modelPath,
    data: {
      x: d.x.slice(0, n * c * h * w),
      shape: [n, c, h, w],
      y: d.y.slice(0, n),
      a: d.attributions[method]!.slice(0, n * h * w),
      aShape: [n, 1, h, w],
    },
  }
}
