/**
 * ONNX files through the onnx-proto package (the ONNX schema compiled to protobufjs code): decode and encode
 * ModelProto, tensors to and from our Tensor, attribute readers and builders. No graph semantics here.
 */
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { check, GranqError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.ModelProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

export const DataType = onnxProto.onnx.TensorProto.DataType;
const AttrType = onnxProto.onnx.AttributeProto.AttributeType;

/** int64 fields decode as Long objects (protobufjs) or numbers. */
type Int64 = number | { toNumber(): number };
export const int64 = (v: Int64 | null | undefined): number => (v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());

export function decodeModel(bytes: Uint8Array, name: string): ModelProto {
  let m: ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new GranqError(`${name}: expected an ONNX model (protobuf ModelProto), could not decode it (${(e as Error).message})`);
  }
  if (!m.graph || (m.graph.node ?? []).length === 0) throw new GranqError(`${name}: expected an ONNX model with a graph, got none`);
  return m;
}

export function readModel(path: string): ModelProto {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new GranqError(`--model: could not read ${path} (${(e as Error).message})`);
  }
  return decodeModel(bytes, path);
}

export function encodeModel(m: onnxProto.onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(m)).finish();
}

const dimsOf = (t: TensorProto) => (t.dims ?? []).map(int64);
const count = (dims: number[]) => dims.reduce((p, d) => p * d, 1);

/** A FLOAT (or DOUBLE) tensor as a float32 Tensor; `where` names it in errors. */
export function tensorFromProto(t: TensorProto, where: string): Tensor {
  const dims = dimsOf(t);
  const n = count(dims);
  let data: Float32Array;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  if (t.dataType === DataType.FLOAT) {
    if (raw) {
      check(raw.length === 4 * n, () => `${where}: FLOAT tensor [${dims}] needs ${4 * n} bytes of raw data, got ${raw.length}`);
      data = new Float32Array(n);
      new Uint8Array(data.buffer).set(raw); // little-endian, as ONNX stores it
    } else {
      data = Float32Array.from(t.floatData ?? []);
    }
  } else if (t.dataType === DataType.DOUBLE) {
    data = raw ? Float32Array.from(new Float64Array(new Uint8Array(raw).buffer)) : Float32Array.from(t.doubleData ?? []);
  } else {
    throw new GranqError(`${where}: expected a FLOAT tensor, got data type ${DataType[t.dataType ?? 0] ?? t.dataType}`);
  }
  check(data.length === n, () => `${where}: tensor [${dims}] needs ${n} values, got ${data.length}`);
  if (t.externalData && t.externalData.length > 0) throw new GranqError(`${where}: external tensor data is not supported`);
  return new Tensor(data, dims.length === 0 ? [1] : dims);
}

/** An INT64 or INT32 tensor's values (shapes, axes, pads). */
export function intsFromProto(t: TensorProto, where: string): number[] {
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const buf = raw ? new Uint8Array(raw).buffer : null; // a copy: decoded bytes may view a larger pool
  if (t.dataType === DataType.INT64) return buf ? Array.from(new BigInt64Array(buf), Number) : (t.int64Data ?? []).map(int64);
  if (t.dataType === DataType.INT32) return buf ? Array.from(new Int32Array(buf)) : [...(t.int32Data ?? [])];
  throw new GranqError(`${where}: expected an INT64 tensor, got data type ${DataType[t.dataType ?? 0] ?? t.dataType}`);
}

export function floatTensorProto(name: string, shape: readonly number[], data: Float32Array): TensorProto {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return { name, dims: [...shape], dataType: DataType.FLOAT, rawData: bytes };
}

/** TensorProto data types onnx-proto's enum predates (ONNX 1.16, opset 21). */
export const DATA_TYPE_INT4 = 22;

/** Signed integers as INT8, or as INT4 (two per byte, the first in the low nibble, as the ONNX spec packs them). */
export function intTensorProto(name: string, shape: readonly number[], values: Int8Array, width: 4 | 8): TensorProto {
  if (width === 8) return { name, dims: [...shape], dataType: DataType.INT8, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice() };
  const raw = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) raw[i >> 1]! |= (values[i]! & 0xf) << ((i & 1) * 4);
  return { name, dims: [...shape], dataType: DATA_TYPE_INT4, rawData: raw };
}

export function int64TensorProto(name: string, values: readonly number[]): TensorProto {
  return { name, dims: [values.length], dataType: DataType.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) };
}

// ---- attributes of a node ----

function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}
export const attrInt = (node: NodeProto, name: string, def: number): number => {
  const a = attr(node, name);
  return a ? int64(a.i) : def;
};
export const attrFloat = (node: NodeProto, name: string, def: number): number => {
  const a = attr(node, name);
  return a ? (a.f ?? 0) : def;
};
export const attrInts = (node: NodeProto, name: string): number[] | null => {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map(int64) : null;
};
export const attrString = (node: NodeProto, name: string, def: string): string => {
  const a = attr(node, name);
  return a?.s ? Buffer.from(a.s).toString('utf8') : def;
};
export const attrTensor = (node: NodeProto, name: string): TensorProto | null => attr(node, name)?.t ?? null;
export const attrNames = (node: NodeProto): string[] => (node.attribute ?? []).map((a) => a.name ?? '');

// ---- attribute builders (export, tests) ----

export type AttrValue = number | number[] | string | TensorProto | { float: number };

/** Integers become INT/INTS, `{float: x}` FLOAT, strings STRING, tensors TENSOR. */
export function makeAttr(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'number') return { name, type: AttrType.INT, i: v };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: v };
  if (typeof v === 'string') return { name, type: AttrType.STRING, s: Buffer.from(v, 'utf8') };
  if ('float' in v) return { name, type: AttrType.FLOAT, f: v.float };
  return { name, type: AttrType.TENSOR, t: v };
}

export function makeNode(opType: string, inputs: string[], outputs: string[], name: string, attrs: Record<string, AttrValue> = {}): NodeProto {
  return { opType, input: inputs, output: outputs, name, attribute: Object.entries(attrs).map(([k, v]) => makeAttr(k, v)) };
}

/** A float tensor value info with a symbolic first dim (`N`) where the shape gives a string. */
export function valueInfo(name: string, shape: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}
