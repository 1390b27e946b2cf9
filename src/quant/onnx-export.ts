/**
 * A (quantized) model as a standard ONNX graph (opset 13). One forward pass is traced op by op (F.traceOps); an op
 * whose inputs are all constants (parameters, buffers, or results of such ops) is folded, so a weight quantizer's
 * output is stored as the already fake-quantized weight, under the parameter's name. Every other primitive maps to
 * standard operators through one table; the dynamic fake-quant rows op becomes ReduceMin/ReduceMax over the row's
 * axes and elementwise ops in our kernels' order. The weights' integer codes, scales and zero points go to a
 * separate safetensors map (w = (code + zero_point) / scale, row by row).
 */
import * as F from '../autograd/index.js';
import { qparams, quantCode, rowRange } from '../backend/ref/quant.js';
import { GranqError } from '../errors.js';
import { floatTensorProto, int64TensorProto, makeNode, valueInfo, type AttrValue, type NodeProto, type TensorProto } from '../io/onnx-proto.js';
import type { StoredTensor } from '../io/safetensors.js';
import type { Module } from '../nn/module.js';
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import type { RowsAttrs } from './fake-quant.js';
import { rowView } from './fake-quant.js';

export const EXPORT_OPSET = 13;

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

export interface ExportOptions {
  /** Input shape without the batch dim, e.g. [3, 32, 32]. */
  input: [number, number, number];
  inputName?: string;
  outputName?: string;
  docString?: string;
}

interface EmitCtx<K extends F.OpName = F.OpName> {
  /** ONNX value name of input i (constants become initializers on first use). */
  in(i: number): string;
  /** A new int64 or float initializer holding these values. */
  ints(values: number[]): string;
  float(value: number): string;
  floats(shape: number[], values: Float32Array): string;
  /** Adds a node; returns its output name (the op's result when `last`). */
  node(op: string, inputs: string[], attrs?: Record<string, AttrValue>, last?: boolean): string;
  inputs: readonly (Tensor | null)[];
  attrs: F.OpAttrs[K];
  out: Tensor;
  op: K;
}

/** An op's ONNX form, or null: the op has none (training-only ops: losses, statistics, the generator's upsampling). */
type Emit<K extends F.OpName> = ((e: EmitCtx<K>) => string) | null;

const fail = (e: EmitCtx, msg: string): never => {
  throw new GranqError(`ONNX export: op '${e.op}': ${msg}`);
};

/** fake-quant in our kernels' operation order: s = n·(1/max(M−m, 1e-8)), z = round(s·m) + 2^(k−1), y = (round(s·x − z) [clamped] + z)/s. */
function emitFakeQuant(e: EmitCtx, x: string, m: string, M: string, bits: number, clamp: boolean): string {
  const range = e.node('Max', [e.node('Sub', [M, m]), e.float(1e-8)]);
  const s = e.node('Mul', [e.node('Reciprocal', [range]), e.float(2 ** bits - 1)]);
  const z = e.node('Add', [e.node('Round', [e.node('Mul', [s, m])]), e.float(2 ** (bits - 1))]);
  let q = e.node('Round', [e.node('Sub', [e.node('Mul', [s, x]), z])]);
  if (clamp) q = e.node('Clip', [q, e.float(-(2 ** (bits - 1))), e.float(2 ** (bits - 1) - 1)]);
  return e.node('Div', [e.node('Add', [q, z]), s], {}, true);
}

const unary = (op: string) => (e: EmitCtx) => e.node(op, [e.in(0)], {}, true);
const binary = (op: string) => (e: EmitCtx) => e.node(op, [e.in(0), e.in(1)], {}, true);
const reduceAxes = (e: EmitCtx<'reduce_sum' | 'reduce_max' | 'reduce_min'>) => {
  const a = e.attrs;
  return { axes: a.axes ?? e.inputs[0]!.shape.map((_, i) => i), keepdims: a.keepDims ? 1 : 0 };
};

/** Dynamic per-(sample, channel) rows: ReduceMin/ReduceMax over the spatial axes, then the fake-quant arithmetic. */
function emitRows(e: EmitCtx<'fake_quant_rows'>): string {
  const a = e.attrs;
  const x = e.inputs[0]!;
  const [rows] = rowView(x.shape);
  if (a.rows !== rows) fail(e, `only the (sample, channel) row view is exportable for activations, got ${a.rows} rows of ${a.cols}`);
  const axes = x.ndim === 2 ? [1] : x.shape.slice(2).map((_, i) => i + 2);
  const m = e.node('ReduceMin', [e.in(0)], { axes, keepdims: 1 });
  const M = e.node('ReduceMax', [e.in(0)], { axes, keepdims: 1 });
  return emitFakeQuant(e, e.in(0), m, M, a.bits, a.clamp);
}

/** Primitive op -> ONNX nodes: every op of the table (OpName) has an entry, so a new op without one does not compile. */
const EMIT: { [K in F.OpName]: Emit<K> } = {
  softmax: null,
  log_softmax: null,
  embedding: null,
  channel_stats: null,
  upsample_nearest: null,
  conv2d(e) {
    const { stride, padding, groups } = e.attrs;
    const w = e.inputs[1]!;
    return e.node('Conv', [e.in(0), e.in(1), ...(e.inputs[2] ? [e.in(2)] : [])], {
      kernel_shape: [w.shape[2]!, w.shape[3]!], strides: [stride, stride], pads: [padding, padding, padding, padding],
      ...(groups !== 1 ? { group: groups } : {}),
    }, true);
  },
  linear: (e) => e.node('Gemm', [e.in(0), e.in(1), ...(e.inputs[2] ? [e.in(2)] : [])], { transB: 1 }, true),
  matmul: binary('MatMul'),
  relu: unary('Relu'),
  add_relu: (e) => e.node('Relu', [e.node('Add', [e.in(0), e.in(1)])], {}, true),
  leaky_relu: (e) => e.node('LeakyRelu', [e.in(0)], { alpha: { float: e.attrs.alpha } }, true),
  tanh: unary('Tanh'),
  exp: null,
  log: null,
  sqrt: null,
  hardtanh(e) {
    const { alpha, beta } = e.attrs; // min, max
    return e.node('Clip', [e.in(0), e.float(alpha), e.float(beta)], {}, true);
  },
  add: binary('Add'),
  sub: binary('Sub'),
  mul: binary('Mul'),
  div: binary('Div'),
  affine(e) {
    const { alpha, beta } = e.attrs;
    const y = e.node('Mul', [e.in(0), e.float(alpha)], {}, beta === 0);
    return beta === 0 ? y : e.node('Add', [y, e.float(beta)], {}, true);
  },
  reshape(e) {
    const x = e.inputs[0]!;
    // Batch-agnostic: keep dim 0 (0 = copy) when the batch stays there, else let it be inferred (-1).
    const shape = [x.shape[0] === e.out.shape[0] ? 0 : -1, ...e.out.shape.slice(1)];
    return e.node('Reshape', [e.in(0), e.ints(shape)], {}, true);
  },
  avg_pool2d(e) {
    const { k, stride } = e.attrs;
    return e.node('AveragePool', [e.in(0)], { kernel_shape: [k, k], strides: [stride, stride] }, true);
  },
  pad_channels(e) {
    const { before, after } = e.attrs;
    return e.node('Pad', [e.in(0), e.ints([0, before, 0, 0, 0, after, 0, 0])], { mode: 'constant' }, true);
  },
  reduce_max: (e) => e.node('ReduceMax', [e.in(0)], reduceAxes(e), true),
  reduce_min: (e) => e.node('ReduceMin', [e.in(0)], reduceAxes(e), true),
  reduce_sum(e) {
    const { axes, keepdims } = reduceAxes(e);
    return e.node('ReduceSum', [e.in(0), e.ints(axes)], { keepdims }, true); // opset 13: axes is an input
  },
  batch_norm(e) {
    const a = e.attrs;
    if (a.training || !a.runningMean || !a.runningVar) fail(e, 'BatchNorm in training mode cannot be exported (call model.eval())');
    const c = a.runningMean!.length;
    const gamma = e.inputs[1] ? e.in(1) : e.floats([c], new Float32Array(c).fill(1));
    const beta = e.inputs[2] ? e.in(2) : e.floats([c], new Float32Array(c));
    const bn = e.node('BatchNormalization', [e.in(0), gamma, beta, e.floats([c], a.runningMean!), e.floats([c], a.runningVar!)], { epsilon: { float: a.eps } }, !a.relu);
    return a.relu ? e.node('Relu', [bn], {}, true) : bn; // the fused BatchNorm + ReLU
  },
  fake_quant_rows: (e) => emitRows(e),
  fake_quant_channel_loop(e) {
    // The per-channel loop quantizes each (sample, channel) row: the rows form of the same ranges, unclamped.
    const x = e.inputs[0]!;
    const [rows, cols] = rowView(x.shape);
    return emitRows({ ...e, op: 'fake_quant_rows', attrs: { bits: e.attrs.bits, rows, cols, clamp: false } });
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
    return emitFakeQuant(e, e.in(0), m, M, a.bits, a.clamp);
  },
};

const EXPORTABLE = Object.entries(EMIT).filter(([, e]) => e !== null).map(([k]) => k);

/** Integer codes, scales and zero points of a weight fake-quantized by rows: the reference twin of the kernels (ref/quant.ts), not a copy. */
function weightCodes(w: Tensor, a: RowsAttrs): { codes: Int16Array; scale: Float32Array; zero: Float32Array } {
  const codes = new Int16Array(w.size);
  const scale = new Float32Array(a.rows);
  const zero = new Float32Array(a.rows);
  for (let r = 0; r < a.rows; r++) {
    const { s, z } = qparams(...rowRange(w.data, r * a.cols, a.cols), a.bits);
    scale[r] = s;
    zero[r] = z;
    for (let i = r * a.cols; i < (r + 1) * a.cols; i++) codes[i] = quantCode(w.data[i]!, s, z, a.bits, a.clamp);
  }
  return { codes, scale, zero };
}

export function exportOnnx(model: Module, opts: ExportOptions): OnnxExport {
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? 'logits';
  const paramNames = new Map<Tensor, string>([...model.stateDict()].map(([k, t]) => [t, k]));
  const names = new Map<Tensor, string>();
  const dynamic = new Set<Tensor>();
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const initOf = new Map<Tensor, string>();
  const folded = new Map<Tensor, string>();
  const codes = new Map<string, StoredTensor>();
  const weights: WeightCodes[] = [];
  const used = new Set<string>();
  let counter = 0;
  const fresh = (base: string) => {
    let n = base;
    while (used.has(n)) n = `${base}_${++counter}`;
    used.add(n);
    return n;
  };
  const addInit = (name: string, p: TensorProto) => {
    inits.push({ ...p, name });
    return name;
  };
  const constName = (t: Tensor): string => {
    const known = initOf.get(t);
    if (known) return known;
    const name = fresh(folded.get(t) ?? paramNames.get(t) ?? 'const');
    initOf.set(t, name);
    return addInit(name, floatTensorProto(name, t.shape, t.data));
  };

  const onOp: F.OpTracer = (call) => {
    const { op, inputs, out } = call;
    if (!inputs.some((t) => t !== null && dynamic.has(t))) {
      // Folded: a weight quantizer's output keeps its parameter's name, and its integer form goes to the sidecar.
      const src = inputs[0] ? paramNames.get(inputs[0]) : undefined;
      if (call.op === 'fake_quant_rows' && src) {
        const a = call.attrs;
        const c = weightCodes(inputs[0]!, a);
        const fits8 = c.codes.every((v) => v >= -128 && v <= 127);
        codes.set(`${src}.codes`, fits8 ? { dtype: 'I8', shape: [...out.shape], data: Int8Array.from(c.codes) } : { dtype: 'I16', shape: [...out.shape], data: c.codes });
        codes.set(`${src}.scale`, { dtype: 'F32', shape: [a.rows], data: c.scale });
        codes.set(`${src}.zero_point`, { dtype: 'F32', shape: [a.rows], data: c.zero });
        weights.push({ name: src, bits: a.bits, rows: a.rows, cols: a.cols, clamp: a.clamp });
        folded.set(out, src);
      }
      return;
    }
    // The one cast: TypeScript cannot correlate EMIT[op] with call.attrs through the union of calls.
    const emit = EMIT[op] as Emit<F.OpName>;
    if (!emit) throw new GranqError(`ONNX export: op '${op}' has no ONNX form; exportable: ${EXPORTABLE.join(', ')}`);
    dynamic.add(out);
    let resultName = '';
    const ctx: EmitCtx = {
      inputs, attrs: call.attrs, out, op,
      in: (i) => {
        const t = inputs[i]!;
        return dynamic.has(t) ? names.get(t)! : constName(t);
      },
      ints: (v) => addInit(fresh('shape'), int64TensorProto('', v)),
      float: (v) => addInit(fresh('k'), floatTensorProto('', [], Float32Array.of(v))),
      floats: (shape, v) => addInit(fresh('const'), floatTensorProto('', shape, v)),
      node(onnxOp, ins, a = {}, last = false) {
        const name = fresh(`${onnxOp}_${nodes.length}`);
        const outName = last ? (resultName = fresh(`${op}_${nodes.length}`)) : `${name}_out`;
        nodes.push(makeNode(onnxOp, ins, [outName], name, a));
        return outName;
      },
    };
    emit(ctx);
    names.set(out, resultName);
  };

  const x = Tensor.randn([2, ...opts.input], new Rng(1));
  names.set(x, inputName);
  dynamic.add(x);
  used.add(inputName);
  const wasTraining = model.training;
  model.eval();
  let y: Tensor;
  try {
    y = F.noGrad(() => F.traceOps(onOp, () => model.forward(x)));
  } finally {
    model.train(wasTraining);
  }
  if (!dynamic.has(y)) throw new GranqError('ONNX export: the model output does not depend on its input');
  nodes.push(makeNode('Identity', [names.get(y)!], [outputName], 'output'));
  const ops: Record<string, number> = {};
  for (const n of nodes) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
  return {
    model: {
      irVersion: 7,
      opsetImport: [{ domain: '', version: EXPORT_OPSET }],
      producerName: 'granq',
      docString: opts.docString ?? '',
      graph: {
        name: 'granq',
        node: nodes,
        initializer: inits,
        input: [valueInfo(inputName, ['N', ...opts.input])],
        output: [valueInfo(outputName, ['N', y!.shape[1]!])],
      },
    },
    codes,
    weights,
    ops,
  };
}
