// A minimal ONNX writer: enough of onnx.proto3 to build small models in code (a graph of a few
// nodes with float/int64 initializers, tensor inputs and outputs), e.g. transparent reference
// models for tests and synthetic benchmarks, without Python. Protobuf wire format by hand.
import { XaiEvalError } from '../errors.js'

/** Element types of onnx.proto3 `TensorProto.DataType` supported here. */
export type OnnxElementType = 'float' | 'int64' | 'int32'
const ELEMENT_TYPE: Record<OnnxElementType, number> = { float: 1, int32: 6, int64: 7 }

/** A graph input or output: a tensor with named (symbolic) or fixed dimensions. */
export interface OnnxValueInfo {
  name: string
  type?: OnnxElementType
  dims: readonly (number | string)[]
}

/** A constant tensor of the graph. */
export interface OnnxTensor {
  name: string
  dims: readonly number[]
  data: Float32Array | Int32Array | BigInt64Array
}

/** An attribute value: int (an integer number or bigint), float (a non-integer number or `{ f }`), string, int list, float list, tensor. */
export type OnnxAttribute = number | bigint | { f: number } | string | readonly number[] | { floats: readonly number[] } | OnnxTensor

export interface OnnxNode {
  op: string
  inputs: readonly string[]
  outputs: readonly string[]
  name?: string
  domain?: string
  attributes?: Record<string, OnnxAttribute>
}

export interface OnnxGraph {
  name?: string
  nodes: readonly OnnxNode[]
  inputs: readonly OnnxValueInfo[]
  outputs: readonly OnnxValueInfo[]
  initializers?: readonly OnnxTensor[]
  /** Default-domain opset (default 13). */
  opset?: number
  /** IR version (default 8, read by onnxruntime ≥ 1.10). */
  irVersion?: number
  producer?: string
}

class Writer {
  private chunks: Uint8Array[] = []
  private size = 0

  private push(b: Uint8Array): void {
    this.chunks.push(b)
    this.size += b.length
  }

  private varint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v))
    const out: number[] = []
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80)
      x >>= 7n
    }
    out.push(Number(x))
    this.push(Uint8Array.from(out))
  }

  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire)
  }

  int(field: number, v: number | bigint): this {
    this.key(field, 0)
    this.varint(v)
    return this
  }

  float(field: number, v: number): this {
    this.key(field, 5)
    const b = new Uint8Array(4)
    new DataView(b.buffer).setFloat32(0, v, true)
    this.push(b)
    return this
  }

  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2)
    this.varint(b.length)
    this.push(b)
    return this
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s))
  }

  message(field: number, m: Writer): this {
    return this.bytes(field, m.finish())
  }

  packedInts(field: number, vs: readonly (number | bigint)[]): this {
    const m = new Writer()
    for (const v of vs) m.varint(v)
    return this.bytes(field, m.finish())
  }

  packedFloats(field: number, vs: readonly number[]): this {
    const b = new Uint8Array(4 * vs.length)
    const view = new DataView(b.buffer)
    vs.forEach((v, i) => {
      view.setFloat32(4 * i, v, true)
    })
    return this.bytes(field, b)
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size)
    let pos = 0
    for (const c of this.chunks) {
      out.set(c, pos)
      pos += c.length
    }
    return out
  }
}

function tensor(t: OnnxTensor): Writer {
  if (typeof t?.name !== 'string' || !Array.isArray(t.dims))
    throw new XaiEvalError('INVALID_OPTION', 'initializer', 'expected { name, dims, data }')
  const count = t.dims.reduce((p, d) => p * d, 1)
  if (!t.dims.every((d) => Number.isSafeInteger(d) && d >= 0) || t.data.length !== count) {
    throw new XaiEvalError('SHAPE_MISMATCH', `initializer ${t.name}`, `${t.data.length} values for dims [${t.dims.join(', ')}]`)
  }
  const type =
    t.data instanceof Float32Array
      ? 'float'
      : t.data instanceof Int32Array
        ? 'int32'
        : t.data instanceof BigInt64Array
          ? 'int64'
          : undefined
  if (!type) throw new XaiEvalError('INVALID_OPTION', `initializer ${t.name}`, 'data must be a Float32Array, Int32Array or BigInt64Array')
  // raw_data is little-endian; copy so that the bytes are exactly the tensor's.
  const raw = new Uint8Array(t.data.byteLength)
  const view = new DataView(raw.buffer)
  t.data.forEach((v: number | bigint, i: number) => {
    if (type === 'float') view.setFloat32(4 * i, v as number, true)
    else if (type === 'int32') view.setInt32(4 * i, v as number, true)
    else view.setBigInt64(8 * i, v as bigint, true)
  })
  const w = new Writer()
  if (t.dims.length > 0) w.packedInts(1, t.dims) // dims
  return w.int(2, ELEMENT_TYPE[type]).string(8, t.name).bytes(9, raw) // data_type, name, raw_data
}

function valueInfo(v: OnnxValueInfo, arg: string): Writer {
  if (typeof v?.name !== 'string' || !Array.isArray(v.dims)) throw new XaiEvalError('INVALID_OPTION', arg, 'expected { name, dims, type? }')
  const type = v.type ?? 'float'
  if (!(type in ELEMENT_TYPE)) throw new XaiEvalError('INVALID_OPTION', arg, `unsupported element type ${String(type)}`)
  const shape = new Writer()
  for (const d of v.dims) {
    const dim = new Writer()
    if (typeof d === 'string')
      dim.string(2, d) // dim_param
    else if (Number.isSafeInteger(d) && d >= 0)
      dim.int(1, d) // dim_value
    else throw new XaiEvalError('INVALID_OPTION', arg, `bad dimension ${String(d)}`)
    shape.message(1, dim)
  }
  const tensorType = new Writer().int(1, ELEMENT_TYPE[type]).message(2, shape) // elem_type, shape
  const typeProto = new Writer().message(1, tensorType) // tensor_type
  return new Writer().string(1, v.name).message(2, typeProto) // name, type
}

/** AttributeProto.AttributeType codes. */
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 }

function attribute(name: string, v: OnnxAttribute): Writer {
  const w = new Writer().string(1, name)
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return w.int(3, v).int(20, ATTR.INT)
  if (typeof v === 'number') return w.float(2, v).int(20, ATTR.FLOAT)
  if (typeof v === 'string') return w.string(4, v).int(20, ATTR.STRING)
  if (Array.isArray(v)) return w.packedInts(8, v as number[]).int(20, ATTR.INTS)
  if (typeof v === 'object' && v !== null && 'f' in v) return w.float(2, v.f).int(20, ATTR.FLOAT)
  if (typeof v === 'object' && v !== null && 'floats' in v) return w.packedFloats(7, v.floats).int(20, ATTR.FLOATS)
  if (typeof v === 'object' && v !== null && 'data' in v) return w.message(5, tensor(v)).int(20, ATTR.TENSOR)
  throw new XaiEvalError('INVALID_OPTION', `attribute ${name}`, 'unsupported attribute value')
}

/** Serialises a ModelProto with one graph. The bytes load in onnxruntime (`OnnxModel.load` after writing them to a file). */
export function writeOnnx(graph: OnnxGraph): Uint8Array {
  if (
    graph === null ||
    typeof graph !== 'object' ||
    !Array.isArray(graph.nodes) ||
    !Array.isArray(graph.inputs) ||
    !Array.isArray(graph.outputs)
  ) {
    throw new XaiEvalError('INVALID_OPTION', 'graph', 'expected { nodes, inputs, outputs, initializers? }')
  }
  const g = new Writer()
  graph.nodes.forEach((n: OnnxNode, i) => {
    if (typeof n?.op !== 'string' || !Array.isArray(n.inputs) || !Array.isArray(n.outputs)) {
      throw new XaiEvalError('INVALID_OPTION', `nodes[${i}]`, 'expected { op, inputs, outputs }')
    }
    const node = new Writer()
    for (const s of n.inputs) node.string(1, s)
    for (const s of n.outputs) node.string(2, s)
    node.string(3, n.name ?? `${n.op}_${i}`).string(4, n.op)
    for (const [k, v] of Object.entries(n.attributes ?? {}) as [string, OnnxAttribute][]) node.message(5, attribute(k, v))
    if (n.domain) node.string(7, n.domain)
    g.message(1, node)
  })
  g.string(2, graph.name ?? 'graph')
  for (const t of graph.initializers ?? []) g.message(5, tensor(t))
  graph.inputs.forEach((v, i) => {
    g.message(11, valueInfo(v, `inputs[${i}]`))
  })
  graph.outputs.forEach((v, i) => {
    g.message(12, valueInfo(v, `outputs[${i}]`))
  })

  const opset = new Writer().string(1, '').int(2, graph.opset ?? 13)
  return new Writer()
    .int(1, graph.irVersion ?? 8) // ir_version
    .string(2, graph.producer ?? 'xai-eval') // producer_name
    .message(7, g) // graph
    .message(8, opset) // opset_import
    .finish()
}
