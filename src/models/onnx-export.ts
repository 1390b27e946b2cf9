/**
 * A model as a standard ONNX graph (opset 13). One forward pass is traced op by op (F.traceOps); an op whose inputs
 * are all constants (parameters, buffers, or results of such ops) is folded into an initializer. Every other
 * primitive maps to standard operators through one table typed by the op table: FLOAT_EMITTERS here has an entry for
 * every op but the fake-quant ones, which src/quant/onnx-export.ts adds (so the full table is checked complete at
 * compile time there). The export of quantized students (fake-quant emitters, weight codes) builds on traceToOnnx.
 */
import * as F from '../autograd/index.js';
import { GranqError } from '../errors.js';
import { floatTensorProto, int64TensorProto, makeNode, valueInfo, type AttrValue, type NodeProto, type TensorProto } from '../io/onnx-proto.js';
import type { Module } from '../nn/module.js';
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';

export const EXPORT_OPSET = 13;
/** The opset of QDQ exports: INT4/UINT4 tensors in QuantizeLinear/DequantizeLinear (opset 21). */
export const QDQ_OPSET = 21;

export interface ExportOptions {
  /** The default opset domain's version (EXPORT_OPSET, or QDQ_OPSET); the emitters follow it (ReduceMin/Max axes). */
  opset?: number;
  /** Input shape without the batch dim, e.g. [3, 32, 32]. */
  input: [number, number, number];
  inputName?: string;
  outputName?: string;
  docString?: string;
}

export interface EmitCtx<K extends F.OpName = F.OpName> {
  /** ONNX value name of input i (constants become initializers on first use). */
  in(i: number): string;
  /** A new int64 or float initializer holding these values. */
  ints(values: number[]): string;
  float(value: number): string;
  floats(shape: number[], values: Float32Array): string;
  /** Adds a node; returns its output name (the op's result when `last`). */
  node(op: string, inputs: string[], attrs?: Record<string, AttrValue>, last?: boolean): string;
  /** An initializer as given (integer codes); returns its name. */
  init(base: string, proto: TensorProto): string;
  opset: number;
  inputs: readonly (Tensor | null)[];
  attrs: F.OpAttrs[K];
  out: Tensor;
  op: K;
}

/** An op's ONNX form, or null: the op has none (training-only ops: losses, statistics, the generator's upsampling). */
export type Emit<K extends F.OpName> = ((e: EmitCtx<K>) => string) | null;

/** Every op but the fake-quant ones (which src/quant/ declares and emits). */
export type FloatOpName = Exclude<F.OpName, `fake_quant_${string}`>;
export type EmitTable<K extends F.OpName> = { [P in K]: Emit<P> };

export const fail = (e: EmitCtx, msg: string): never => {
  throw new GranqError(`ONNX export: op '${e.op}': ${msg}`);
};

const unary = (op: string) => (e: EmitCtx) => e.node(op, [e.in(0)], {}, true);
const binary = (op: string) => (e: EmitCtx) => e.node(op, [e.in(0), e.in(1)], {}, true);
const reduceAxes = (e: EmitCtx<'reduce_sum' | 'reduce_max' | 'reduce_min'>) => {
  const a = e.attrs;
  return { axes: a.axes ?? e.inputs[0]!.shape.map((_, i) => i), keepdims: a.keepDims ? 1 : 0 };
};

/** ReduceMin/ReduceMax of x over `axes`: an attribute up to opset 17, an input from opset 18. */
export function reduceNode(e: EmitCtx, op: 'ReduceMin' | 'ReduceMax', x: string, axes: number[], keepdims: number, last = false): string {
  return e.opset >= 18 ? e.node(op, [x, e.ints(axes)], { keepdims }, last) : e.node(op, [x], { axes, keepdims }, last);
}

/** Primitive float op -> ONNX nodes; every float op of the op table has an entry (null: no ONNX form). */
export const FLOAT_EMITTERS: EmitTable<FloatOpName> = {
  softmax: null,
  log_softmax: null,
  embedding: null,
  channel_stats: null,
  upsample_nearest: null, upsample_conv2d: null,
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
  reduce_max(e) {
    const { axes, keepdims } = reduceAxes(e);
    return reduceNode(e, 'ReduceMax', e.in(0), axes, keepdims, true);
  },
  reduce_min(e) {
    const { axes, keepdims } = reduceAxes(e);
    return reduceNode(e, 'ReduceMin', e.in(0), axes, keepdims, true);
  },
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
};

/** What a constant hook may add to the graph: initializers and nodes (see traceToOnnx's `constant`). */
export interface GraphBuilder {
  init(base: string, proto: TensorProto): string;
  node(op: string, inputs: string[], attrs?: Record<string, AttrValue>): string;
}

/**
 * Traces one forward pass of `model` and emits every op through `emitters`. `fold(call, param)` is asked for each
 * folded op whose first input is the parameter `param`: true names the op's constant output after the parameter
 * (a weight quantizer's output stored as the fake-quantized weight). `constant(t, name, g)`, when given, is asked
 * first for each constant a dynamic op uses: a value name it built with `g` (e.g. integer codes and a
 * DequantizeLinear), or null for the default float initializer.
 */
export function traceToOnnx(model: Module, opts: ExportOptions, emitters: EmitTable<F.OpName>,
  fold: (call: F.OpCall, param: string) => boolean = () => false,
  constant?: (t: Tensor, name: string, g: GraphBuilder) => string | null): { model: Record<string, unknown>; ops: Record<string, number> } {
  const opset = opts.opset ?? EXPORT_OPSET;
  const exportable = Object.entries(emitters).filter(([, e]) => e !== null).map(([k]) => k);
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? 'logits';
  const paramNames = new Map<Tensor, string>([...model.stateDict()].map(([k, t]) => [t, k]));
  const names = new Map<Tensor, string>();
  const dynamic = new Set<Tensor>();
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const initOf = new Map<Tensor, string>();
  const folded = new Map<Tensor, string>();
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
    const base = folded.get(t) ?? paramNames.get(t) ?? 'const';
    const built = constant?.(t, base, builder);
    if (built) {
      initOf.set(t, built);
      return built;
    }
    const name = fresh(base);
    initOf.set(t, name);
    return addInit(name, floatTensorProto(name, t.shape, t.data));
  };
  // Scalar and shape constants are written once and shared by every node that uses them.
  const sharedNames = new Map<string, string>();
  const shared = (key: string, make: () => string) => {
    let n = sharedNames.get(key);
    if (n === undefined) sharedNames.set(key, (n = make()));
    return n;
  };
  const builder: GraphBuilder = {
    init: (base, proto) => addInit(fresh(base), proto),
    node(onnxOp, ins, a = {}) {
      const outName = fresh(`v${nodes.length.toString(36)}`);
      nodes.push(makeNode(onnxOp, ins, [outName], '', a));
      return outName;
    },
  };

  const onOp: F.OpTracer = (call) => {
    const { op, inputs, out } = call;
    if (!inputs.some((t) => t !== null && dynamic.has(t))) {
      const src = inputs[0] ? paramNames.get(inputs[0]) : undefined;
      if (src && fold(call, src)) folded.set(out, src);
      return;
    }
    // The one cast: TypeScript cannot correlate EMIT[op] with call.attrs through the union of calls.
    const emit = emitters[op] as Emit<F.OpName>;
    if (!emit) throw new GranqError(`ONNX export: op '${op}' has no ONNX form; exportable: ${exportable.join(', ')}`);
    dynamic.add(out);
    let resultName = '';
    const ctx: EmitCtx = {
      inputs, attrs: call.attrs, out, op,
      in: (i) => {
        const t = inputs[i]!;
        return dynamic.has(t) ? names.get(t)! : constName(t);
      },
      ints: (v) => shared(`i${v.join(',')}`, () => addInit(fresh('shape'), int64TensorProto('', v))),
      init: (base, proto) => addInit(fresh(base), proto),
      opset,
      float: (v) => shared(`f${Math.fround(v)}`, () => addInit(fresh('k'), floatTensorProto('', [], Float32Array.of(v)))),
      floats: (shape, v) => addInit(fresh('const'), floatTensorProto('', shape, v)),
      node(onnxOp, ins, a = {}, last = false) {
        // Nodes are unnamed (ONNX allows it) and intermediate values get short names (v<position in base 36>): in a
        // 4-bit graph the names are a large part of the file.
        const outName = fresh(`v${nodes.length.toString(36)}`);
        if (last) resultName = outName;
        nodes.push(makeNode(onnxOp, ins, [outName], '', a));
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
      irVersion: opset >= 21 ? 10 : 7,
      opsetImport: [{ domain: '', version: opset }],
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
    ops,
  };
}
