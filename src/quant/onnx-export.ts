/**
 * A quantized student as a standard ONNX graph (models/onnx-export.ts traces it): the fake-quant ops' emitters, and
 * the weights' integer form. A weight quantizer's output is folded and stored as the already fake-quantized weight,
 * under the parameter's name; the dynamic fake-quant rows op becomes ReduceMin/ReduceMax over the row's axes and
 * elementwise ops in our kernels' order. The weights' integer codes, scales and zero points go to a separate
 * safetensors map (w = (code + zero_point) / scale, row by row).
 */
import type * as F from '../autograd/index.js';
import { rowMinMax, type Ranges } from './estimators.js';
import type { StoredTensor } from '../io/safetensors.js';
import { fail, FLOAT_EMITTERS, QDQ_OPSET, reduceNode, traceToOnnx, type EmitCtx, type EmitTable, type ExportOptions } from '../models/onnx-export.js';
import { floatTensorProto, int64TensorProto, intTensorProto } from '../io/onnx-proto.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { rowView } from './fake-quant.js';
import { rowCodes, type RowCodes } from './quantizer.js';

export { EXPORT_OPSET, QDQ_OPSET, type ExportOptions } from '../models/onnx-export.js';

/** One weight's integer form, as written to the sidecar safetensors. */
export interface WeightCodes {
  name: string;
  bits: number;
  rows: number;
  cols: number;
  clamp: boolean;
}

export interface OnnxExport {
  /** The ModelProto, ready for encodeModel. */
  model: Record<string, unknown>;
  /** `<weight>.codes` (I8 or I16), `<weight>.scale` and `<weight>.zero_point` (F32, one per row). */
  codes: Map<string, StoredTensor>;
  weights: WeightCodes[];
  /** Operator counts of the exported graph. */
  ops: Record<string, number>;
}

export const EXPORT_FORMATS = ['fake', 'qdq'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * fake-quant in our kernels' operation order: s = n·(1/max(M−m, 1e-8)), z = round(s·m) + 2^(k−1),
 * y = (round(s·x − z) [clamped] + z)/s. `fake`: Round (and Clip) in float. `qdq`: the rounding is a unit-scale
 * QuantizeLinear/DequantizeLinear pair on t = s·x − z (Clip first when clamped): QuantizeLinear rounds half to even as
 * Round does, so the result is the same, and the codes exist as int8 tensors in the graph. (A computed per-(sample,
 * channel) scale cannot be QuantizeLinear's own y_scale: per-axis scales are 1-D along one axis.)
 */
function emitFakeQuant(e: EmitCtx, x: string, m: string, M: string, bits: number, clamp: boolean, format: ExportFormat): string {
  const range = e.node('Max', [e.node('Sub', [M, m]), e.float(1e-8)]);
  const s = e.node('Mul', [e.node('Reciprocal', [range]), e.float(2 ** bits - 1)]);
  const z = e.node('Add', [e.node('Round', [e.node('Mul', [s, m])]), e.float(2 ** (bits - 1))]);
  const t = e.node('Sub', [e.node('Mul', [s, x]), z]);
  const clip = (v: string) => e.node('Clip', [v, e.float(-(2 ** (bits - 1))), e.float(2 ** (bits - 1) - 1)]);
  let q: string;
  if (format === 'fake') {
    q = e.node('Round', [t]);
    if (clamp) q = clip(q);
  } else {
    const one = e.float(1);
    const zero = e.init('zero_i8', intTensorProto('', [], Int8Array.of(0), 8));
    q = e.node('DequantizeLinear', [e.node('QuantizeLinear', [clamp ? clip(t) : t, one, zero]), one, zero]);
  }
  return e.node('Div', [e.node('Add', [q, z]), s], {}, true);
}

/** Dynamic per-(sample, channel) rows: ReduceMin/ReduceMax over the spatial axes, then the fake-quant arithmetic. */
function emitRows(e: EmitCtx<'fake_quant_rows'>, format: ExportFormat): string {
  const a = e.attrs;
  const x = e.inputs[0]!;
  const [rows] = rowView(x.shape);
  if (a.rows !== rows) fail(e, `only the (sample, channel) row view is exportable for activations, got ${a.rows} rows of ${a.cols}`);
  const axes = x.ndim === 2 ? [1] : x.shape.slice(2).map((_, i) => i + 2);
  const m = reduceNode(e, 'ReduceMin', e.in(0), axes, 1);
  const M = reduceNode(e, 'ReduceMax', e.in(0), axes, 1);
  return emitFakeQuant(e, e.in(0), m, M, a.bits, a.clamp, format);
}

type FakeQuantOpName = Extract<F.OpName, `fake_quant_${string}`>;

const quantEmitters = (format: ExportFormat): EmitTable<FakeQuantOpName> => ({
  fake_quant_rows: (e) => emitRows(e, format),
  fake_quant_channel_loop(e) {
    // The per-channel loop quantizes each (sample, channel) row: the rows form of the same ranges, unclamped.
    const x = e.inputs[0]!;
    const [rows, cols] = rowView(x.shape);
    return emitRows({ ...e, op: 'fake_quant_rows', attrs: { bits: e.attrs.bits, rows, cols, clamp: false } }, format);
  },
  fake_quant_groups(e) {
    const a = e.attrs;
    const x = e.inputs[0]!;
    // Static ranges per group: scalars for one group, [1,C,1,1] constants for per-channel groups.
    const perChannel = a.groups > 1;
    if (perChannel && (x.shape[1] !== a.groups || a.outer !== x.shape[0])) fail(e, `only per-tensor or per-channel static ranges are exportable, got view [${a.outer},${a.groups},${a.inner}]`);
    const shape = perChannel ? [1, a.groups, ...x.shape.slice(2).map(() => 1)] : [1];
    const m = e.floats(shape, Float32Array.from(a.mins));
    const M = e.floats(shape, Float32Array.from(a.maxs));
    return emitFakeQuant(e, e.in(0), m, M, a.bits, a.clamp, format);
  },
  // Trained ranges quantize weights only, which the tracer folds into initializers (weightView below).
  fake_quant_learned: (e) => fail(e, 'trained ranges quantize weights only; an activation cannot use them'),
});

/** Every op of the op table: the float ones and the fake-quant ones (a missing entry does not compile). */
const emitters = (format: ExportFormat): EmitTable<F.OpName> => ({ ...FLOAT_EMITTERS, ...quantEmitters(format) });

/** A weight quantizer's op: rows (min/max per row), or groups with one group per row (clipped ranges, outer = 1). */
function weightView(call: F.OpCall): { rows: number; cols: number; bits: number; clamp: boolean; ranges: Ranges } | null {
  const w = call.inputs[0]!;
  if (call.op === 'fake_quant_rows') {
    const a = call.attrs;
    return { rows: a.rows, cols: a.cols, bits: a.bits, clamp: a.clamp, ranges: rowMinMax(w.data, a.rows, a.cols) };
  }
  if (call.op === 'fake_quant_learned') {
    const a = call.attrs;
    return { rows: a.rows, cols: a.cols, bits: a.bits, clamp: true, ranges: { mins: call.inputs[1]!.data, maxs: call.inputs[2]!.data } };
  }
  if (call.op === 'fake_quant_groups' && call.attrs.outer === 1) {
    const a = call.attrs;
    return { rows: a.groups, cols: a.inner, bits: a.bits, clamp: a.clamp, ranges: { mins: a.mins, maxs: a.maxs } };
  }
  return null;
}

/** A folded weight's integer form in the graph, or null when it has none there (it is then a float initializer). */
interface QdqWeight { codes: Int8Array; scale: Float32Array; zero: Int8Array; width: 4 | 8; rows: number; cols: number }

/**
 * The QDQ form of a weight's codes: DequantizeLinear computes (q − zp)·scale, so zp = −z and scale = fround(1/s) (the
 * weight comes back within a float32 rounding of ours). INT4 when every code and zero point fits in [−8, 7], else
 * INT8; none when a zero point is not an int8 (a 1x1 kernel slice under `slice`: one value, zero range).
 */
function qdqWeight(c: RowCodes, rows: number, cols: number): QdqWeight | null {
  const zp = Array.from(c.zero, (z) => -z);
  if (!zp.every((v) => Number.isInteger(v) && v >= -128 && v <= 127) || !c.codes.every((q) => q >= -128 && q <= 127)) return null;
  const fits4 = (v: number) => v >= -8 && v <= 7;
  const width = zp.every(fits4) && c.codes.every(fits4) ? 4 : 8;
  return { codes: Int8Array.from(c.codes), scale: Float32Array.from(c.scale, (v) => 1 / v), zero: Int8Array.from(zp), width, rows, cols };
}

export interface QdqWeightInfo { name: string; bits: number; width: 4 | 8 | 32; layout: 'per-axis' | 'per-tensor' | 'rows' | 'float' }

export interface FullExportOptions extends ExportOptions {
  /** 'fake' (default): float ops and fake-quantized float weights; 'qdq': integer weights and Q/DQ pairs, opset 21. */
  format?: ExportFormat;
}

export function exportOnnx(model: Module, opts: FullExportOptions): OnnxExport & { qdqWeights: QdqWeightInfo[] } {
  const format = opts.format ?? 'fake';
  const codes = new Map<string, StoredTensor>();
  const weights: WeightCodes[] = [];
  const qdqWeights: QdqWeightInfo[] = [];
  const pending = new Map<Tensor, { name: string; bits: number; q: QdqWeight | null; shape: number[] }>();
  const ex = traceToOnnx(model, { ...opts, opset: format === 'qdq' ? QDQ_OPSET : opts.opset }, emitters(format), (call, src) => {
    const v = weightView(call);
    if (!v) return false;
    const c = rowCodes(call.inputs[0]!.data, v.rows, v.cols, v.bits, v.clamp, v.ranges);
    const fits8 = c.codes.every((q) => q >= -128 && q <= 127);
    const shape = [...call.out.shape];
    codes.set(`${src}.codes`, fits8 ? { dtype: 'I8', shape, data: Int8Array.from(c.codes) } : { dtype: 'I16', shape, data: Int16Array.from(c.codes) });
    codes.set(`${src}.scale`, { dtype: 'F32', shape: [v.rows], data: c.scale });
    codes.set(`${src}.zero_point`, { dtype: 'F32', shape: [v.rows], data: Float32Array.from(c.zero) });
    weights.push({ name: src, bits: v.bits, rows: v.rows, cols: v.cols, clamp: v.clamp });
    if (format === 'qdq') pending.set(call.out, { name: src, bits: v.bits, q: qdqWeight(c, v.rows, v.cols), shape });
    return true;
  }, format === 'qdq' ? (t, _name, g) => {
    const w = pending.get(t);
    if (!w) return null;
    const q = w.q;
    if (!q) {
      qdqWeights.push({ name: w.name, bits: w.bits, width: 32, layout: 'float' });
      return null;
    }
    // Channel and linear weights: per-axis on axis 0 of the weight itself; tensor: scalars; slice: per-axis on the
    // [rows, cols] view, reshaped back.
    const layout = q.rows === 1 ? 'per-tensor' : q.rows === w.shape[0] ? 'per-axis' : 'rows';
    const codeShape = layout === 'rows' ? [q.rows, q.cols] : w.shape;
    const qShape = layout === 'per-tensor' ? [] : [q.rows];
    const qi = g.init(`${w.name}_quantized`, intTensorProto('', codeShape, q.codes, q.width));
    const si = g.init(`${w.name}_scale`, floatTensorProto('', qShape, q.scale));
    const zi = g.init(`${w.name}_zero_point`, intTensorProto('', qShape, q.zero, q.width));
    const dq = g.node('DequantizeLinear', [qi, si, zi], layout === 'per-tensor' ? {} : { axis: 0 });
    qdqWeights.push({ name: w.name, bits: w.bits, width: q.width, layout });
    return layout === 'rows' ? g.node('Reshape', [dq, g.init(`${w.name}_shape`, int64TensorProto('', w.shape))]) : dq;
  } : undefined);
  return { ...ex, codes, weights, qdqWeights };
}
