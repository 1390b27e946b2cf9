/**
 * ONNX -> OnnxGraph: one builder per supported operator in one table. Initializers that feed a Conv, Gemm, MatMul or
 * BatchNormalization become that layer's parameters (named after the initializer when it has a PyTorch name like
 * `layer1.0.conv1.weight`, else after the node); Constant nodes stay fixed buffers. An operator outside the table is
 * one error naming it and its node.
 */
import * as F from '../autograd/index.js';
import { GranqError } from '../errors.js';
import {
  attrFloat, attrInt, attrInts, attrNames, attrString, attrTensor, DataType, int64, intsFromProto, readModel, tensorFromProto,
  type ModelProto, type NodeProto, type TensorProto,
} from '../io/onnx-proto.js';
import { BatchNorm2d, Conv2d, Hardtanh, LeakyReLU, Linear, ReLU } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import { concatChannels, FixedConv2d, maxPool2d, OnnxGraph, padSpatial, type GraphStep } from './onnx-graph.js';

/** What a builder returns: a child module applied to the first input, or a function of the inputs. */
type Built = { inputs: string[]; child: [string, Module] } | { inputs: string[]; fn: (xs: Tensor[]) => Tensor };

interface Ctx {
  node: NodeProto;
  /** "model.onnx: node '/layer1/Conv' (Conv)" */
  where: string;
  inputs: string[];
  /** The node's name for its module (the node name, or Op_index when it has none). */
  name: string;
  /** A float initializer (becomes a parameter of the layer that takes it), or null. */
  param(value: string | undefined): Tensor | null;
  /** A float graph constant (Constant node output, or an initializer read as a constant), or null. */
  constant(value: string | undefined): Tensor | null;
  /** An integer initializer or Constant (shapes, pads), or an error naming what is missing. */
  ints(value: string, what: string): number[];
}

const fail = (c: Ctx, msg: string): never => {
  throw new GranqError(`${c.where}: ${msg}`);
};
const rng = () => new Rng(0); // layers are overwritten from the graph; a local RNG leaves the global one alone

/** The module name for a layer: the PyTorch stem of its weight initializer (`conv1` of `conv1.weight`), else the node. */
const layerName = (c: Ctx) => (c.inputs[1]?.endsWith('.weight') ? c.inputs[1].slice(0, -'.weight'.length) : c.name);

function convGeometry(c: Ctx, w: Tensor): { stride: number; padding: number; groups: number } {
  const [oc, , kh, kw] = w.shape as [number, number, number, number];
  if (w.ndim !== 4) fail(c, `expected a 4-D weight [OC,IC/group,KH,KW], got [${w.shape}]`);
  if (kh !== kw) fail(c, `only square kernels are supported, got ${kh}x${kw}`);
  const groups = attrInt(c.node, 'group', 1);
  if (!(groups >= 1) || oc % groups !== 0) fail(c, `group=${groups} must be a positive divisor of the ${oc} output channels`);
  const dil = attrInts(c.node, 'dilations') ?? [1, 1];
  if (dil.some((d) => d !== 1)) fail(c, `dilations [${dil}] are not supported (only 1)`);
  const strides = attrInts(c.node, 'strides') ?? [1, 1];
  if (strides[0] !== strides[1]) fail(c, `only equal strides are supported, got [${strides}]`);
  const pads = attrInts(c.node, 'pads') ?? [0, 0, 0, 0];
  if (pads.some((p) => p !== pads[0])) fail(c, `only equal padding on all sides is supported, got pads [${pads}]`);
  const autoPad = attrString(c.node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET') fail(c, `auto_pad=${autoPad} is not supported; export with explicit pads`);
  return { stride: strides[0]!, padding: pads[0]!, groups };
}

/** Clip's bounds: inputs 1 and 2 (opset >= 11, each optional, a constant scalar) or attributes min/max (opset 6). */
function clipBounds(c: Ctx): [number, number] {
  const names = attrNames(c.node);
  if (names.includes('min') || names.includes('max')) {
    return [attrFloat(c.node, 'min', -Infinity), attrFloat(c.node, 'max', Infinity)];
  }
  const bound = (i: number, what: string, def: number) => {
    const v = c.inputs[i];
    if (!v) return def;
    const t = c.constant(v) ?? fail(c, `${what} '${v}' must be an initializer or a Constant (computed bounds are not supported)`);
    if (t.size !== 1) fail(c, `${what} '${v}' must be a scalar, got [${t.shape}]`);
    return t.data[0]!;
  };
  const lo = bound(1, 'min', -Infinity);
  const hi = bound(2, 'max', Infinity);
  if (lo > hi) fail(c, `min ${lo} exceeds max ${hi}`);
  return [lo, hi];
}

function poolWindow(c: Ctx): { k: number; stride: number; pad: number } {
  const ks = attrInts(c.node, 'kernel_shape') ?? fail(c, 'kernel_shape is missing');
  if (ks.length !== 2 || ks[0] !== ks[1]) fail(c, `only square 2-D windows are supported, got kernel_shape [${ks}]`);
  const strides = attrInts(c.node, 'strides') ?? [1, 1];
  if (strides[0] !== strides[1]) fail(c, `only equal strides are supported, got [${strides}]`);
  const pads = attrInts(c.node, 'pads') ?? [0, 0, 0, 0];
  if (pads.some((p) => p !== pads[0])) fail(c, `only equal padding on all sides is supported, got pads [${pads}]`);
  if (attrInt(c.node, 'ceil_mode', 0) !== 0) fail(c, 'ceil_mode=1 is not supported');
  const dil = attrInts(c.node, 'dilations') ?? [1, 1];
  if (dil.some((d) => d !== 1)) fail(c, `dilations [${dil}] are not supported`);
  return { k: ks[0]!, stride: strides[0]!, pad: pads[0]! };
}

/** A binary elementwise op whose operands are values or constants (broadcast as numpy does). */
const binary = (f: (a: Tensor, b: Tensor) => Tensor) => (c: Ctx): Built => ({ inputs: c.inputs.slice(0, 2), fn: ([a, b]) => f(a!, b!) });

/** The operator table. */
export const ONNX_OPS: Record<string, (c: Ctx) => Built> = {
  Conv(c) {
    const [x, wName, bName] = c.inputs;
    const trained = c.param(wName);
    if (trained) {
      const { stride, padding, groups } = convGeometry(c, trained);
      const [oc, icg, k] = trained.shape as [number, number, number];
      const bias = bName ? (c.param(bName) ?? fail(c, `bias '${bName}' must be an initializer`)) : null;
      const conv = new Conv2d(icg * groups, oc, k, { stride, padding, groups, bias: bias !== null, rng: rng() });
      conv.weight.data.set(trained.data);
      if (bias) conv.bias!.data.set(bias.data);
      return { inputs: [x!], child: [layerName(c), conv] };
    }
    const fixed = c.constant(wName) ?? fail(c, `weight '${wName}' must be an initializer or a Constant`);
    const { stride, padding, groups } = convGeometry(c, fixed);
    const bias = bName ? (c.constant(bName) ?? fail(c, `bias '${bName}' of a constant-weight conv must be a Constant`)) : null;
    return { inputs: [x!], child: [c.name, new FixedConv2d(fixed, bias, stride, padding, groups)] };
  },
  BatchNormalization(c) {
    if (attrInt(c.node, 'training_mode', 0) !== 0) fail(c, 'training_mode=1 is not supported (export the model in eval mode)');
    const [scale, bias, mean, vari] = c.inputs.slice(1, 5).map((n) => c.param(n) ?? fail(c, `input '${n}' must be an initializer`));
    const bn = new BatchNorm2d(scale!.size, { eps: attrFloat(c.node, 'epsilon', 1e-5), momentum: 1 - attrFloat(c.node, 'momentum', 0.9) });
    bn.weight!.data.set(scale!.data);
    bn.bias!.data.set(bias!.data);
    bn.runningMean.data.set(mean!.data);
    bn.runningVar.data.set(vari!.data);
    const stem = c.inputs[1]?.endsWith('.weight') ? c.inputs[1].slice(0, -'.weight'.length) : c.name;
    return { inputs: [c.inputs[0]!], child: [stem, bn] };
  },
  Relu: (c) => ({ inputs: [c.inputs[0]!], child: [c.name, new ReLU()] }),
  LeakyRelu: (c) => ({ inputs: [c.inputs[0]!], child: [c.name, new LeakyReLU(attrFloat(c.node, 'alpha', 0.01))] }),
  Clip(c) {
    const [lo, hi] = clipBounds(c);
    return { inputs: [c.inputs[0]!], child: [c.name, new Hardtanh(lo, hi)] };
  },
  Gemm(c) {
    if (attrInt(c.node, 'transA', 0) !== 0) fail(c, 'transA=1 is not supported');
    const b = c.param(c.inputs[1]) ?? fail(c, `B '${c.inputs[1]}' must be an initializer (a dense layer's weight)`);
    if (b.ndim !== 2) fail(c, `expected a 2-D B, got [${b.shape}]`);
    const w = attrInt(c.node, 'transB', 0) ? b : transpose(b);
    const alpha = attrFloat(c.node, 'alpha', 1);
    const beta = attrFloat(c.node, 'beta', 1);
    const [out, inF] = w.shape as [number, number];
    const cT = c.inputs[2] ? (c.param(c.inputs[2]) ?? fail(c, `C '${c.inputs[2]}' must be an initializer`)) : null;
    if (cT && cT.size !== out) fail(c, `expected C with ${out} values (one per output), got [${cT.shape}]`);
    const lin = new Linear(inF, out, { bias: cT !== null, rng: rng() });
    lin.weight.data.set(alpha === 1 ? w.data : w.data.map((v) => v * alpha));
    if (cT) lin.bias!.data.set(beta === 1 ? cT.data : cT.data.map((v) => v * beta));
    return { inputs: [c.inputs[0]!], child: [layerName(c), lin] };
  },
  MatMul(c) {
    const b = c.param(c.inputs[1]);
    if (!b) return { inputs: c.inputs.slice(0, 2), fn: ([x, y]) => F.matmul(x!, y!) };
    if (b.ndim !== 2) fail(c, `expected a 2-D weight, got [${b.shape}]`);
    const lin = new Linear(b.shape[0]!, b.shape[1]!, { bias: false, rng: rng() });
    lin.weight.data.set(transpose(b).data);
    return { inputs: [c.inputs[0]!], child: [layerName(c), lin] };
  },
  Add: binary(F.add),
  Mul: binary(F.mul),
  GlobalAveragePool: (c) => ({
    inputs: [c.inputs[0]!],
    fn: ([x]) => (x!.shape[2] === x!.shape[3] ? F.globalAvgPool(x!) : F.mean(x!, [2, 3], true)),
  }),
  AveragePool(c) {
    const { k, stride, pad } = poolWindow(c);
    if (pad !== 0) fail(c, `padding is not supported for AveragePool, got ${pad}`);
    return { inputs: [c.inputs[0]!], fn: ([x]) => F.avgPool2d(x!, k, stride) };
  },
  MaxPool(c) {
    if (c.node.output && c.node.output.length > 1) fail(c, 'the Indices output is not supported');
    const { k, stride, pad } = poolWindow(c);
    return { inputs: [c.inputs[0]!], fn: ([x]) => maxPool2d(x!, k, stride, pad) };
  },
  Flatten(c) {
    const axis = attrInt(c.node, 'axis', 1);
    return {
      inputs: [c.inputs[0]!],
      fn: ([x]) => {
        const a = axis < 0 ? axis + x!.ndim : axis;
        const lead = x!.shape.slice(0, a).reduce((p, d) => p * d, 1);
        return F.reshape(x!, [lead, -1]);
      },
    };
  },
  Reshape(c) {
    const shape = c.ints(c.inputs[1]!, 'shape');
    const allowZero = attrInt(c.node, 'allowzero', 0) === 1;
    return { inputs: [c.inputs[0]!], fn: ([x]) => F.reshape(x!, shape.map((d, i) => (d === 0 && !allowZero ? x!.shape[i]! : d))) };
  },
  Pad(c) {
    const mode = attrString(c.node, 'mode', 'constant');
    if (mode !== 'constant') fail(c, `mode '${mode}' is not supported (only constant)`);
    const pads = c.inputs[1] ? c.ints(c.inputs[1], 'pads') : (attrInts(c.node, 'pads') ?? fail(c, 'pads are missing'));
    const value = c.inputs[2] ? (c.constant(c.inputs[2])?.data[0] ?? fail(c, 'constant_value must be a constant')) : attrFloat(c.node, 'value', 0);
    if (value !== 0) fail(c, `only zero padding is supported, got constant_value ${value}`);
    if (c.inputs[3]) fail(c, 'the axes input is not supported');
    if (pads.length !== 8) fail(c, `expected pads for a 4-D tensor (8 values), got [${pads}]`);
    const [n0, c0, t, l, n1, c1, b, r] = pads as [number, number, number, number, number, number, number, number];
    if (n0 || n1 || [c0, t, l, c1, b, r].some((p) => p < 0)) fail(c, `only non-negative channel and spatial pads are supported, got [${pads}]`);
    return {
      inputs: [c.inputs[0]!],
      fn: ([x]) => {
        const y = c0 || c1 ? F.padChannels(x!, c0, c1) : x!;
        return t || l || b || r ? padSpatial(y, t, l, b, r) : y;
      },
    };
  },
  Concat(c) {
    const axis = attrInt(c.node, 'axis', 1);
    return {
      inputs: c.inputs,
      fn: (xs) => {
        if (axis !== 1 && axis !== 1 - xs[0]!.ndim) fail(c, `only axis 1 (channels) is supported, got axis ${axis}`);
        return concatChannels(xs);
      },
    };
  },
  Identity: (c) => ({ inputs: [c.inputs[0]!], fn: ([x]) => x! }),
  /** Inference: the identity (the model is imported in eval mode); the optional mask output is not supported. */
  Dropout: (c) => ({ inputs: [c.inputs[0]!], fn: ([x]) => x! }),
};

function transpose(t: Tensor): Tensor {
  const [r, k] = t.shape as [number, number];
  const out = Tensor.zeros([k, r]);
  for (let i = 0; i < r; i++) for (let j = 0; j < k; j++) out.data[j * r + i] = t.data[i * k + j]!;
  return out;
}

/** The value of a Constant node: its `value` tensor (or value_float(s) / value_int(s)). */
function constantValue(node: NodeProto, where: string): TensorProto {
  const t = attrTensor(node, 'value');
  if (t) return t;
  const a = (node.attribute ?? [])[0];
  if (a?.name === 'value_float') return { dims: [], dataType: DataType.FLOAT, floatData: [a.f ?? 0] };
  if (a?.name === 'value_floats') return { dims: [a.floats?.length ?? 0], dataType: DataType.FLOAT, floatData: a.floats ?? [] };
  if (a?.name === 'value_int') return { dims: [], dataType: DataType.INT64, int64Data: [int64(a.i)] };
  if (a?.name === 'value_ints') return { dims: [a.ints?.length ?? 0], dataType: DataType.INT64, int64Data: (a.ints ?? []).map(int64) };
  throw new GranqError(`${where}: expected a value, value_float(s) or value_int(s) attribute, got ${attrNames(node).join(', ') || 'none'}`);
}

/** Builds our module graph from a decoded ModelProto; `source` names the file in messages. */
export function graphFromProto(model: ModelProto, source: string): OnnxGraph {
  const g = model.graph!;
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const inputs = (g.input ?? []).map((i) => i.name ?? '').filter((n) => !inits.has(n));
  if (inputs.length !== 1) throw new GranqError(`${source}: expected a graph with one input, got ${inputs.length} (${inputs.join(', ')})`);
  const outputs = (g.output ?? []).map((o) => o.name ?? '');
  if (outputs.length !== 1) throw new GranqError(`${source}: expected a graph with one output, got ${outputs.length} (${outputs.join(', ')})`);
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const info = { source, opset: opset ? int64(opset.version) : 0, ops: {} as Record<string, number> };

  const constProtos = new Map<string, TensorProto>();
  const known = new Set<string>([inputs[0]!, ...inits.keys()]);
  const steps: GraphStep[] = [];
  const children: [string, Module][] = [];
  const childNames = new Set<string>();
  const usedConsts = new Map<string, Tensor>();
  const paramInits = new Set<string>();
  const nodes = g.node ?? [];
  for (const [i, node] of nodes.entries()) {
    const op = node.opType ?? '';
    const name = node.name || `${op}_${i}`;
    const where = `${source}: node '${name}' (${op})`;
    info.ops[op] = (info.ops[op] ?? 0) + 1;
    if (node.domain && node.domain !== 'ai.onnx') throw new GranqError(`${where}: operator domain '${node.domain}' is not supported`);
    const nodeInputs = node.input ?? []; // '' = an optional input left out
    for (const n of nodeInputs.filter((v) => v !== '')) {
      if (!known.has(n)) throw new GranqError(`${where}: input '${n}' is produced by no earlier node (graph not in topological order, or a dangling input)`);
    }
    if (op === 'Constant') {
      constProtos.set(node.output![0]!, constantValue(node, where));
      known.add(node.output![0]!);
      continue;
    }
    const builder = ONNX_OPS[op];
    if (!builder) {
      throw new GranqError(`${where}: unsupported ONNX operator '${op}' in node '${name}'; supported: Constant, ${Object.keys(ONNX_OPS).join(', ')}`);
    }
    const floatOf = (v: string, t: TensorProto) => tensorFromProto(t, `${where}: '${v}'`);
    const ctx: Ctx = {
      node, where, inputs: nodeInputs, name,
      param(v) {
        const t = v === undefined ? undefined : inits.get(v);
        if (!t) return null;
        paramInits.add(v!);
        return floatOf(v!, t);
      },
      constant(v) {
        const t = v === undefined ? undefined : (constProtos.get(v) ?? inits.get(v));
        return t ? floatOf(v!, t) : null;
      },
      ints(v, what) {
        const t = constProtos.get(v) ?? inits.get(v);
        if (!t) throw new GranqError(`${where}: ${what} '${v}' must be an initializer or a Constant (computed ${what}s are not supported)`);
        return intsFromProto(t, `${where}: ${what} '${v}'`);
      },
    };
    const built = builder(ctx);
    const outs = node.output ?? [];
    if (outs.length !== 1) throw new GranqError(`${where}: expected one output, got ${outs.length}`);
    const step: GraphStep = { node: name, op, inputs: built.inputs, output: outs[0]! };
    if ('child' in built) {
      let [cname, mod] = built.child;
      for (let k = 2; childNames.has(cname); k++) cname = `${built.child[0]}_${k}`;
      childNames.add(cname);
      children.push([cname, mod]);
      step.child = cname;
    } else {
      step.fn = built.fn;
      // Float constants read by function steps are buffers of the graph (fixed, not trained).
      for (const v of built.inputs) {
        const t = constProtos.get(v) ?? inits.get(v);
        if (t && t.dataType === DataType.FLOAT && !usedConsts.has(v)) usedConsts.set(v, floatOf(v, t));
      }
    }
    steps.push(step);
    known.add(outs[0]!);
  }
  if (!known.has(outputs[0]!)) throw new GranqError(`${source}: the graph output '${outputs[0]}' is produced by no node`);
  return new OnnxGraph(inputs[0]!, outputs[0]!, steps, children, [...usedConsts], info);
}

/** Reads and builds an ONNX model file (eval mode). */
export function importOnnx(path: string): OnnxGraph {
  return graphFromProto(readModel(path), path).eval();
}
