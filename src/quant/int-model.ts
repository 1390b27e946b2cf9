/**
 * Integer inference of a quantized student (`granq eval --int`, `granq bench int`). integerModel(student) is a copy
 * in which every activation quantizer also hands on its codes, and every conv or linear whose input is such an
 * output runs on codes: native qconv2d, weight codes x activation codes with exact int32 partial sums, then float32
 * scales. Where a scale changes along the reduction (granq's per-(sample, channel) rows, static per-channel
 * activations, slice weights) the partial sums are per input channel, each scaled on its own, exactly; a per-tensor
 * activation with per-output-channel weights is one GEMM over the whole reduction.
 *
 * What stays float, as in the fake-quant student: BatchNorm, ReLU, the residual adds and pooling (on the dequantized
 * values the quantizer also writes), and any conv or linear whose input is not a quantizer's output: the first conv
 * (its input is the image, which no policy quantizes) and a classifier after global average pooling. Those run on
 * their fake-quant weights. Grouped convs are float too (the kernel takes groups 1).
 */
import * as F from '../autograd/index.js';
import { backend, qconvPackedWeights } from '../backend/index.js';
import { check, GranqError } from '../errors.js';
import { cloneModule } from '../nn/clone.js';
import { BatchNorm2d } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { allocBytes, allocFloats, Tensor } from '../tensor/tensor.js';
import type { ActCodes } from './fake-quant.js';
import { QuantConv2d, QuantLinear } from './modules.js';
import { ActQuantizer, type WeightQuantizer } from './quantizer.js';

/** The codes of the tensors that act quantizers wrote, for the convs that consume them. */
const CODES = new WeakMap<Tensor, ActCodes>();

/**
 * Output buffers reused from one forward of an integer model to the next. A fresh multi-MB array costs its page
 * faults on first write, more than the quantizer or the conv that fills it (at batch 64: 1.5 ms against 0.1 ms for a
 * 1M-element activation). Each IntegerModel.forward is a new generation: a layer's outputs of an earlier generation
 * are dead by then (they are intermediates, and the model's own output is copied out if it is one of them), so the
 * layer writes over them; a layer run twice in one generation, or outside an IntegerModel's forward, gets fresh ones.
 */
let generation = 0;
let inForward = false;
const REUSED = new WeakSet<ArrayBufferView>();

class Reused<T extends Float32Array | Uint8Array> {
  private buf: T | null = null;
  private gen = 0;
  constructor(private readonly alloc: (n: number) => T) {}

  take(n: number): T {
    if (!inForward || this.gen === generation) return this.alloc(n);
    if (this.buf?.length !== n) {
      this.buf = this.alloc(n);
      REUSED.add(this.buf);
    }
    this.gen = generation;
    return this.buf;
  }
}

/**
 * An activation quantizer that also records its output's codes. codesOnly (set by IntegerModel's plan when only
 * integer convs read this quantizer's output): the codes alone are written, not the dequantized floats.
 */
export class IntActQuantizer extends Module {
  private readonly y = new Reused(allocFloats);
  private readonly codes = new Reused(allocBytes);
  codesOnly = false;

  constructor(readonly q: ActQuantizer) {
    super();
  }

  forward(x: Tensor): Tensor {
    noteRead(x);
    const a = this.q.quantizeCodes(x, { y: this.y.take(x.size), codes: this.codes.take(x.size), codesOnly: this.codesOnly });
    CODES.set(a.y, a);
    planning?.quantized.set(a.y, this);
    return a.y;
  }
}

/** Weight codes as qconv2d takes them: per (out, in) scale and offset, value = (wq + wz) / wscale. */
interface IntWeight {
  wq: Int8Array;
  wz: Float64Array;
  wscale: Float32Array;
  /** The scale or offset changes along the input channels (slice weights). */
  alongInputs: boolean;
  /** wq in the native kernel's layout for each mode (perInput true / false), packed once at first use. */
  wpk(perInput: boolean): Int8Array;
}

/** w [O, C, ...] (a conv's, or a linear's [O, C]) with its rule's rows mapped onto (out, in) pairs. */
function intWeight(wq: WeightQuantizer, w: Tensor): IntWeight {
  const [o, c] = [w.shape[0]!, w.shape[1]!];
  const per = w.size / (o * c);
  const rc = wq.codes(w);
  const rowOf = (oc: number) => Math.floor((oc * per) / rc.cols);
  const wz = new Float64Array(o * c);
  const wscale = new Float32Array(o * c);
  for (let oc = 0; oc < o * c; oc++) {
    wz[oc] = rc.zero[rowOf(oc)]!;
    wscale[oc] = rc.scale[rowOf(oc)]!;
  }
  // code + zero as one int8 where every weight's fits (k <= 7 with 0 inside the range): the offsets vanish.
  const folded = Int32Array.from(rc.codes, (q, i) => q + rc.zero[rowOf(Math.floor(i / per))]!);
  const fits = (v: Int32Array) => v.every((q) => q >= -128 && q <= 127);
  let alongInputs = false;
  for (let oc = 0; oc < o * c && !alongInputs; oc++) alongInputs = wz[oc] !== wz[oc - (oc % c)] || wscale[oc] !== wscale[oc - (oc % c)];
  const k = w.shape.length === 4 ? w.shape[2]! : 1;
  const done = (q: Int8Array, z: Float64Array): IntWeight => {
    const packed = new Map<boolean, Int8Array>();
    const wpk = (perInput: boolean) => packed.get(perInput) ?? packed.set(perInput, qconvPackedWeights(o, c, k, q, perInput)).get(perInput)!;
    return { wq: q, wz: z, wscale, alongInputs, wpk };
  };
  if (fits(folded)) return done(Int8Array.from(folded), new Float64Array(o * c));
  if (fits(rc.codes)) return done(Int8Array.from(rc.codes), wz);
  throw new GranqError(`integer inference: ${wq.kind} weights at ${wq.bits} bits have codes outside int8 (the unclamped rule reaches 2^${wq.bits - 1}); use at most 7 bits`);
}

/** How many forwards of a layer ran on codes and how many in float. */
export interface IntCounts { int: number; float: number }

/** A BatchNorm (and the ReLU fused with it) that the integer conv before it applies in its epilogue. */
export interface FoldedBatchNorm { bn: BatchNorm2d; relu: boolean }

abstract class IntLayer extends Module {
  readonly counts: IntCounts = { int: 0, float: 0 };
  protected w: IntWeight;
  /** The fake-quant weight (as the student's forward has it), for inputs that are not codes. */
  protected readonly wFloat: Tensor;
  protected bias: Float32Array;
  /** Set by foldBatchNorm: the conv's output is the BatchNorm's (and ReLU's) output. */
  folded: FoldedBatchNorm | null = null;
  private readonly out = new Reused(allocFloats);

  constructor(protected readonly m: QuantConv2d | QuantLinear) {
    super();
    this.w = intWeight(m.wq, m.weight);
    this.wFloat = m.wq.quantizing ? F.noGrad(() => m.wq.quantize(m.weight)) : m.weight;
    this.bias = m.bias ? m.bias.data : new Float32Array(m.weight.shape[0]!);
  }

  /** qconv2d of codes a (x [N, C, H, W]). */
  protected intConv(a: ActCodes, x: Tensor, k: number, stride: number, pad: number): Tensor {
    const [n, c, h, w] = [x.shape[0]!, x.shape[1]!, x.shape[2] ?? 1, x.shape[3] ?? 1];
    const o = this.m.weight.shape[0]!;
    const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
    const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
    const shape = x.shape.length === 2 ? [n, o] : [n, o, oh, ow];
    const y = new Tensor(this.out.take(shape.reduce((a, b) => a * b, 1)), shape);
    noteCodeRead(x);
    const perInput = a.alongChannels || this.w.alongInputs;
    backend().qconv2d({
      n, c, h, w, o, k, stride, pad, perInput, relu: this.folded?.relu ?? false,
      xq: a.codes, xbase: a.base, xscale: a.scale, wq: this.w.wq, wz: this.w.wz, wscale: this.w.wscale, bias: this.bias, y: y.data, wpk: this.w.wpk(perInput),
    });
    this.counts.int++;
    planning?.produced.set(y, this);
    return y;
  }

  /** The float path's output: with a folded BatchNorm, the BatchNorm (and ReLU) applied as the student does. */
  protected floatOut(y: Tensor): Tensor {
    return this.folded ? this.folded.bn.forward(y, this.folded.relu) : y;
  }

  /**
   * Folds an eval-mode BatchNorm that reads this layer's output (and nothing else does) into the epilogue: with
   * a_o = γ_o / sqrt(var_o + eps), y = a_o (conv + bias_o − mean_o) + β_o = conv / (wscale / a_o) + (a_o (bias_o −
   * mean_o) + β_o), so each output's weight scales are divided by a_o and its bias replaced; relu: the ReLU after it
   * too. Float rounding differs from the BatchNorm pass by an ulp or so. Not folded (false) where some a_o is 0 or
   * not finite.
   */
  foldBatchNorm(bn: BatchNorm2d, relu: boolean): boolean {
    const o = this.m.weight.shape[0]!;
    const c = this.w.wscale.length / o;
    const g = bn.weight?.data, b = bn.bias?.data;
    const a = Float64Array.from({ length: o }, (_, j) => (g ? g[j]! : 1) / Math.sqrt(bn.runningVar.data[j]! + bn.eps));
    if (bn.numFeatures !== o || !a.every((v) => Number.isFinite(v) && v !== 0)) return false;
    const wscale = Float32Array.from(this.w.wscale, (v, i) => v / a[Math.floor(i / c)]!);
    if (!wscale.every((v) => Number.isFinite(v) && v !== 0)) return false;
    this.w = { ...this.w, wscale };
    this.bias = Float32Array.from({ length: o }, (_, j) => a[j]! * (this.bias[j]! - bn.runningMean.data[j]!) + (b ? b[j]! : 0));
    this.folded = { bn, relu };
    return true;
  }
}

/**
 * While IntegerModel plans (its first forward, traced): each integer conv output with the layer that wrote it, how
 * many float readers each tensor had (ops, and the quantizers, which call kernels without ops), how many integer
 * convs read it as codes, and each quantizer's output.
 */
let planning: { produced: Map<Tensor, IntLayer>; readers: Map<Tensor, number>; codeReaders: Map<Tensor, number>; quantized: Map<Tensor, IntActQuantizer> } | null = null;
const noteRead = (t: Tensor) => planning?.readers.set(t, (planning.readers.get(t) ?? 0) + 1);
const noteCodeRead = (t: Tensor) => planning?.codeReaders.set(t, (planning.codeReaders.get(t) ?? 0) + 1);

/** Stands in for a BatchNorm folded into the integer conv before it: that conv's output is already this one's. */
class FoldedBatchNormModule extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/**
 * Runs `model` once on x and folds every eval-mode BatchNorm whose input is an integer conv's output read by nothing
 * else into that conv (IntLayer.foldBatchNorm); the BatchNorm module is replaced by a pass-through. Marks every
 * quantizer whose output only integer convs read as codes-only. Returns the number of BatchNorms folded. The plan
 * holds for any input of the model's structure (ResNets, MobileNets: no data-dependent branches).
 */
function planIntegerModel(model: Module, x: Tensor): number {
  const produced = new Map<Tensor, IntLayer>();
  const readers = new Map<Tensor, number>();
  const codeReaders = new Map<Tensor, number>();
  const quantized = new Map<Tensor, IntActQuantizer>();
  const bnCalls: Extract<F.OpCall, { op: 'batch_norm' }>[] = [];
  planning = { produced, readers, codeReaders, quantized };
  try {
    F.traceOps((call) => {
      for (const t of call.inputs) if (t) noteRead(t);
      if (call.op === 'batch_norm') bnCalls.push(call);
    }, () => F.noGrad(() => model.forward(x)));
  } finally {
    planning = null;
  }
  const owners = new Map<Float32Array, [Module, string, BatchNorm2d]>();
  for (const [, parent] of model.namedModules()) {
    for (const [name, child] of parent.children()) if (child instanceof BatchNorm2d) owners.set(child.runningMean.data, [parent, name, child]);
  }
  let folded = 0;
  for (const call of bnCalls) {
    const input = call.inputs[0]!;
    const layer = produced.get(input);
    const owner = call.attrs.runningMean ? owners.get(call.attrs.runningMean) : undefined;
    if (!layer || !owner || call.attrs.training || readers.get(input) !== 1 || layer.folded) continue;
    const [parent, name, bn] = owner;
    if (!layer.foldBatchNorm(bn, call.attrs.relu ?? false)) continue;
    parent.replaceChild(name, new FoldedBatchNormModule());
    folded++;
  }
  // A quantizer whose output only integer convs read (as codes; the model's output has no reader) writes no floats.
  for (const [y, q] of quantized) q.codesOnly = !readers.get(y) && (codeReaders.get(y) ?? 0) > 0;
  return folded;
}

export class IntConv2d extends IntLayer {
  constructor(private readonly conv: QuantConv2d) {
    super(conv);
  }

  forward(x: Tensor): Tensor {
    const a = CODES.get(x);
    const c = this.conv;
    if (!a || c.groups !== 1) {
      this.counts.float++;
      return this.floatOut(F.conv2d(x, this.wFloat, c.bias, { stride: c.stride, padding: c.padding, groups: c.groups }));
    }
    return this.intConv(a, x, c.kernelSize, c.stride, c.padding);
  }
}

export class IntLinear extends IntLayer {
  constructor(private readonly lin: QuantLinear) {
    super(lin);
  }

  forward(x: Tensor): Tensor {
    const a = CODES.get(x);
    if (!a || x.shape.length !== 2) {
      this.counts.float++;
      return this.floatOut(F.linear(x, this.wFloat, this.lin.bias));
    }
    return this.intConv(a, x, 1, 1, 0);
  }
}

/**
 * The integer copy's top: each forward is one generation of the layers' reused buffers (see Reused). The first
 * forward first runs the model on its first sample to plan it (planIntegerModel: BatchNorms folded into the integer convs, codes-only quantizers).
 */
export class IntegerModel extends Module {
  readonly model: Module;
  /** BatchNorms folded into integer convs (null: not planned yet). */
  foldedBatchNorms: number | null = null;

  constructor(model: Module) {
    super();
    this.model = this.child('model', model);
  }

  forward(x: Tensor): Tensor {
    if (this.foldedBatchNorms === null) {
      const one = new Tensor(x.data.slice(0, x.size / x.shape[0]!), [1, ...x.shape.slice(1)]);
      this.foldedBatchNorms = planIntegerModel(this.model, one);
    }
    const was = inForward;
    inForward = true;
    if (!was) generation++;
    try {
      const y = this.model.forward(x);
      return REUSED.has(y.data) ? new Tensor(y.data.slice(), y.shape) : y;
    } finally {
      inForward = was;
    }
  }
}

/** The integer copy of a quantized student (which is left as it is); its layers count where they ran. */
export function integerModel(student: Module): { model: Module; layers: [string, IntLayer][] } {
  const model = cloneModule(student);
  const layers: [string, IntLayer][] = [];
  const todo: [Module, string, string, Module][] = [];
  for (const [path, parent] of model.namedModules()) {
    for (const [name, child] of parent.children()) {
      if (child instanceof QuantConv2d || child instanceof QuantLinear || child instanceof ActQuantizer) todo.push([parent, name, path ? `${path}.${name}` : name, child]);
    }
  }
  check(todo.some(([, , , m]) => m instanceof ActQuantizer), () => 'integer inference: the model has no activation quantizers (is it a quantized student?)');
  for (const [parent, name, path, child] of todo) {
    if (child instanceof ActQuantizer) {
      parent.replaceChild(name, new IntActQuantizer(child));
      continue;
    }
    const layer = child instanceof QuantConv2d ? new IntConv2d(child) : new IntLinear(child as QuantLinear);
    parent.replaceChild(name, layer);
    layers.push([path, layer]);
  }
  return { model: new IntegerModel(model), layers };
}

/** "20 of 22 conv/linear layers on codes (float: conv1 (input not codes), fc (input not codes))", from the counts. */
export function describeIntLayers(layers: [string, IntLayer][]): string {
  const floats = layers.filter(([, l]) => l.counts.float > 0).map(([p]) => p);
  const ints = layers.filter(([, l]) => l.counts.int > 0 && l.counts.float === 0).length;
  return `${ints} of ${layers.length} conv/linear layers ran on integer codes` + (floats.length ? `; on float (fake-quant weights; their input is not an activation quantizer's output): ${floats.join(', ')}` : '');
}
