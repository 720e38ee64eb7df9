// A tiny ONNX graph builder over npm `onnx-proto` (the ONNX protobuf messages, via protobufjs): graph inputs and
// outputs with symbolic dims, float32 / int64 initializers stored as little-endian raw_data, nodes of the default
// domain with typed attributes, and the ModelProto encoder. No ops of its own: src/export/onnx.ts writes the graph.
// Only what the Llama export needs; each helper returns the name of the tensor it produced so blocks read as
// expressions: `b.op('Mul', [x, y])`.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

export const DT_FLOAT = onnx.TensorProto.DataType.FLOAT;
export const DT_INT64 = onnx.TensorProto.DataType.INT64;
export const DT_BOOL = onnx.TensorProto.DataType.BOOL;
export const DT_INT8 = onnx.TensorProto.DataType.INT8;
export const DT_UINT8 = onnx.TensorProto.DataType.UINT8;
export type ElemType = typeof DT_FLOAT | typeof DT_INT64 | typeof DT_BOOL | typeof DT_INT8 | typeof DT_UINT8;
/** Opset of the com.microsoft contrib domain (MatMulNBits), imported when a node uses it. */
export const MS_DOMAIN = 'com.microsoft';

/** A dimension: a fixed size, or a symbolic name (ONNX dim_param, e.g. 'batch_size'). */
export type Dim = number | string;

/** Attribute values: integers (INT), floats (FLOAT, written as `{ f: x }`), integer lists (INTS), strings. */
export type AttrValue = number | { f: number } | number[] | string;

/** Protobuf's hard limit on one message: ONNX files past 2 GB need external data, which this builder never writes. */
export const PROTOBUF_LIMIT_BYTES = 2 ** 31 - 1;

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function attribute(name: string, v: AttrValue): IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`onnx: attribute '${name}' = ${v} must be an integer (use { f: x } for floats)`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  return { name, type: T.FLOAT, f: v.f };
}

function valueInfo(name: string, elemType: ElemType, dims: Dim[]): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/**
 * Little-endian bytes of a typed array: a view on little-endian hosts (the bytes are encoded before the builder
 * returns, so no copy of the weights is needed), a converted copy on big-endian ones.
 */
function leBytes(a: Float32Array | BigInt64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.byteLength);
  const view = new DataView(out.buffer);
  if (a instanceof Float32Array) for (let i = 0; i < a.length; i++) view.setFloat32(i * 4, a[i]!, true);
  else for (let i = 0; i < a.length; i++) view.setBigInt64(i * 8, a[i]!, true);
  return out;
}

export class GraphBuilder {
  private readonly nodes: INodeProto[] = [];
  private readonly initializers: ITensorProto[] = [];
  private readonly inputs: IValueInfoProto[] = [];
  private readonly outputs: IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly constCache = new Map<string, string>();
  private initTotal = 0;
  private readonly domains = new Set<string>();

  constructor(readonly graphName: string) {}

  /** A fresh tensor name 'prefix' or 'prefix_k' (k counts up), never used before in this graph. */
  fresh(prefix: string): string {
    let k = this.counters.get(prefix) ?? 0;
    let name = k === 0 ? prefix : `${prefix}_${k}`;
    while (this.names.has(name)) name = `${prefix}_${++k}`;
    this.counters.set(prefix, k + 1);
    return name;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`onnx: tensor name '${name}' is defined twice`);
    this.names.add(name);
    return name;
  }

  input(name: string, elemType: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims));
    return name;
  }

  /** Declares an existing tensor (a node output named `name`) as a graph output. */
  output(name: string, elemType: ElemType, dims: Dim[]): void {
    if (!this.names.has(name)) throw new Error(`onnx: graph output '${name}' is not produced by any node`);
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A float32 initializer of shape `dims` (data copied as raw little-endian bytes). */
  initF32(name: string, dims: number[], data: Float32Array): string {
    return this.init(name, DT_FLOAT, dims, data);
  }

  /** An int64 initializer (shapes, axes, indices). */
  initI64(name: string, dims: number[], data: readonly number[]): string {
    return this.init(name, DT_INT64, dims, BigInt64Array.from(data, (v) => BigInt(v)));
  }

  /** An 8-bit initializer (int8 or uint8 quantized weights), raw bytes as given. */
  initBytes(name: string, dataType: typeof DT_INT8 | typeof DT_UINT8, dims: number[], data: Int8Array | Uint8Array): string {
    return this.init(name, dataType, dims, data);
  }

  private init(name: string, dataType: ElemType, dims: number[], data: Float32Array | BigInt64Array | Int8Array | Uint8Array): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`onnx: initializer '${name}' has ${data.length} values, shape [${dims}] needs ${count}`);
    this.initTotal += data.byteLength;
    if (this.initTotal > PROTOBUF_LIMIT_BYTES) {
      throw new Error(`onnx: the weights pass ${PROTOBUF_LIMIT_BYTES} bytes at '${name}': a single-file ONNX model must stay under 2 GB (protobuf limit)`);
    }
    const raw = data instanceof Int8Array || data instanceof Uint8Array ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : leBytes(data);
    this.initializers.push({ name: this.claim(name), dims, dataType, rawData: raw });
    return name;
  }

  /** A shared int64 constant: a 1-D list (`[1, 2]`) or a scalar (`7` → shape []). Same value, same tensor. */
  i64(value: number | readonly number[]): string {
    const key = `i64:${JSON.stringify(value)}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = typeof value === 'number'
      ? this.initI64(this.fresh(`const_i64_${value}`.replace('-', 'm')), [], [value])
      : this.initI64(this.fresh('const_i64_list'), [value.length], value);
    this.constCache.set(key, name);
    return name;
  }

  /** A shared float32 constant (scalar, or a 1-D vector). */
  f32(value: number | Float32Array): string {
    const key = typeof value === 'number' ? `f32:${value}` : undefined;
    const hit = key ? this.constCache.get(key) : undefined;
    if (hit) return hit;
    const name = typeof value === 'number'
      ? this.initF32(this.fresh('const_f32'), [], Float32Array.of(value))
      : this.initF32(this.fresh('const_f32_vec'), [value.length], value);
    if (key) this.constCache.set(key, name);
    return name;
  }

  /**
   * One node of the default ONNX domain; returns its single output (named `out`, or a fresh name from the op).
   * Inputs may be '' for an omitted optional input.
   */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, out?: string): string {
    return this.opN(opType, inputs, 1, attrs, out ? [out] : undefined)[0]!;
  }

  /** A node with `nOut` outputs (e.g. Split); names given or fresh. */
  opN(opType: string, inputs: string[], nOut: number, attrs: Record<string, AttrValue> = {}, outs?: string[], domain = ''): string[] {
    for (const i of inputs) if (i !== '' && !this.names.has(i)) throw new Error(`onnx: ${opType} reads '${i}', which is not defined yet`);
    const outputs = outs ?? Array.from({ length: nOut }, () => this.fresh(opType.toLowerCase()));
    if (outputs.length !== nOut) throw new Error(`onnx: ${opType} has ${nOut} outputs, ${outputs.length} names given`);
    for (const o of outputs) this.claim(o);
    this.nodes.push({
      opType,
      domain,
      name: this.fresh(`node_${opType}`),
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    if (domain) this.domains.add(domain);
    return outputs;
  }

  /** One node of another domain (com.microsoft contrib ops); its opset (1) is imported by encode(). */
  opIn(domain: string, opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.opN(opType, inputs, 1, attrs, undefined, domain)[0]!;
  }

  /** The encoded ModelProto (IR version 8, default domain at `opset`). */
  encode(opts: { opset: number; producer: string; docString?: string; metadata?: Record<string, string> }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: opts.opset }, ...[...this.domains].map((domain) => ({ domain, version: 1 }))],
      producerName: opts.producer,
      producerVersion: '1',
      docString: opts.docString ?? '',
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    const bytes = onnx.ModelProto.encode(model).finish();
    if (bytes.byteLength > PROTOBUF_LIMIT_BYTES) throw new Error(`onnx: the model is ${bytes.byteLength} bytes, over the 2 GB protobuf limit`);
    // In Node protobufjs hands back a Buffer, small ones views into a shared pool: give the caller a plain
    // Uint8Array that owns its whole ArrayBuffer (safe to transfer), copying only when it is such a view.
    return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? new Uint8Array(bytes.buffer) : new Uint8Array(bytes);
  }
}

/** Decodes an ONNX file (tests and checks): the ModelProto and its graph, or an error naming `where`. */
export function decodeOnnxModel(bytes: Uint8Array, where = 'onnx model'): { model: onnxProto.onnx.ModelProto; graph: onnxProto.onnx.GraphProto } {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${where}: not a valid ONNX protobuf (${(e as Error).message})`);
  }
  // Decoded sub-messages are class instances (repeated fields default to []), not just the I* interfaces.
  if (!(model.graph instanceof onnx.GraphProto)) throw new Error(`${where}: the model has no graph`);
  return { model, graph: model.graph };
}
