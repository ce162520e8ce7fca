// Just enough of the ONNX protobuf to answer one question: is a graph output produced by Softmax?
// (Then `output: 'probabilities'` must not apply softmax a second time.)

/** Field numbers from onnx.proto3. */
const MODEL_GRAPH = 7
const GRAPH_NODE = 1
const NODE_OUTPUT = 2
const NODE_OP_TYPE = 4

type Field = { field: number; bytes?: Uint8Array }

function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0
  const varint = (): number => {
    let result = 0
    let scale = 1
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint')
      const b = buf[pos++]!
      result += (b & 0x7f) * scale
      if (b < 0x80) return result
      scale *= 128
    }
  }
  while (pos < buf.length) {
    const key = varint()
    const field = Math.floor(key / 8)
    switch (key & 7) {
      case 0:
        varint()
        yield { field }
        break
      case 1:
        pos += 8
        yield { field }
        break
      case 5:
        pos += 4
        yield { field }
        break
      case 2: {
        const len = varint()
        if (pos + len > buf.length) throw new Error('truncated field')
        yield { field, bytes: buf.subarray(pos, pos + len) }
        pos += len
        break
      }
      default:
        throw new Error(`unsupported wire type ${key & 7}`)
    }
  }
}

const utf8 = new TextDecoder()

/** The op type of the node producing `output`, or undefined when the model cannot be read. */
export function producerOf(model: Uint8Array, output: string): string | undefined {
  try {
    for (const g of fields(model)) {
      if (g.field !== MODEL_GRAPH || !g.bytes) continue
      for (const n of fields(g.bytes)) {
        if (n.field !== GRAPH_NODE || !n.bytes) continue
        let opType = ''
        let produces = false
        for (const f of fields(n.bytes)) {
          if (f.field === NODE_OUTPUT && f.bytes && utf8.decode(f.bytes) === output) produces = true
          else if (f.field === NODE_OP_TYPE && f.bytes) opType = utf8.decode(f.bytes)
        }
        if (produces) return opType
      }
    }
  } catch {
    // Not a model we can parse: the caller assumes logits.
  }
  return undefined
}
