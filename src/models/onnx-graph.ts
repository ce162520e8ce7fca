// One question about a model's graph: is a graph output produced by Softmax? (Then
// `output: 'probabilities'` must not apply softmax a second time.) The model is decoded with
// `onnx-buf` (onnx.proto3 for `@bufbuild/protobuf`), the same definitions `onnx-edit` rewrites
// weights with.
import { fromBinary } from '@bufbuild/protobuf'
import { ModelProtoSchema } from 'onnx-buf'

/** The op type of the node producing `output`, or undefined when the model cannot be read. */
export function producerOf(model: Uint8Array, output: string): string | undefined {
  try {
    const graph = fromBinary(ModelProtoSchema, model).graph
    return graph?.node.find((n) => n.output.includes(output))?.opType
  } catch {
    // Not a model we can parse: the caller assumes logits.
    return undefined
  }
}
