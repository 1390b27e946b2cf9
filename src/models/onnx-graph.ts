/**
 * A model imported from ONNX: a Module whose children are our own layers (Conv2d, BatchNorm2d, Linear, ReLU, ...),
 * named after the ONNX initializers or nodes, run in the graph's topological order. Parameter-free operators are
 * steps with a function; constants of the graph that no layer owns are buffers. quantizeModel swaps children
 * through replaceChild, which this module routes to the step that runs them.
 */
import * as F from '../autograd/index.js';
import { check, GranqError } from '../errors.js';
import { Module } from '../nn/module.js';
import { releaseFloats, Tensor } from '../tensor/tensor.js';
import { shapeStr } from '../tensor/shape.js';

export interface GraphStep {
  /** The ONNX node's name and operator, for messages. */
  node: string;
  op: string;
  /** Value names read (graph input, constants, earlier outputs) and the one written. */
  inputs: string[];
  output: string;
  /** A child module (applied to inputs[0]), or a function of the input values. */
  child?: string;
  fn?: (xs: Tensor[]) => Tensor;
}

/** How the graph came to us: the file and the facts the quantization summary reports. */
export interface GraphInfo {
  source: string;
  opset: number;
  ops: Record<string, number>;
}

export class OnnxGraph extends Module {
  private readonly mods: Record<string, Module> = {};
  private readonly consts: Record<string, Tensor> = {};

  constructor(readonly inputName: string, readonly outputName: string, readonly steps: GraphStep[],
    children: [string, Module][], constants: [string, Tensor][], readonly info: GraphInfo) {
    super();
    for (const [name, m] of children) this.mods[name] = this.child(name, m);
    for (const [name, t] of constants) this.consts[name] = this.buffer(name, t);
  }

  override replaceChild(name: string, m: Module): void {
    super.replaceChild(name, m);
    this.mods[name] = m;
  }

  /** For each step, the values whose last reader it is (never the graph's input, output or constants). */
  private lastReads: string[][] | null = null;

  private deadAfter(): string[][] {
    if (this.lastReads) return this.lastReads;
    const last = new Map<string, number>();
    this.steps.forEach((s, i) => { for (const n of s.inputs) last.set(n, i); });
    const dead: string[][] = this.steps.map(() => []);
    for (const [n, i] of last) {
      if (n !== this.inputName && n !== this.outputName && !(n in this.consts)) dead[i]!.push(n);
    }
    return (this.lastReads = dead);
  }

  /**
   * Runs the steps in order. Each intermediate leaves the value table after its last reader, so the garbage collector
   * may take it; under F.inference() its buffer goes straight back to the allocator's pool (unless a live value, the
   * input or a constant views the same memory), where the next step of the same size picks it up warm.
   */
  forward(x: Tensor): Tensor {
    const values = new Map<string, Tensor>([[this.inputName, x]]);
    for (const [name, t] of Object.entries(this.consts)) values.set(name, t);
    const dead = this.deadAfter();
    const release = F.releasingDeadIntermediates();
    this.steps.forEach((s, i) => {
      const xs = s.inputs.map((n) => values.get(n)!);
      values.set(s.output, s.child !== undefined ? this.mods[s.child]!.forward(xs[0]!) : s.fn!(xs));
      for (const n of dead[i]!) {
        const t = values.get(n);
        values.delete(n);
        if (release && t && ![...values.values()].some((v) => v.data.buffer === t.data.buffer)) releaseFloats(t.data);
      }
    });
    return values.get(this.outputName)!;
  }
}

/** A convolution whose weight is a graph constant (e.g. an option-A shortcut's 0/1 selection): buffers, not parameters. */
export class FixedConv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(weight: Tensor, bias: Tensor | null, readonly stride: number, readonly padding: number, readonly groups = 1) {
    super();
    this.weight = this.buffer('weight', weight);
    this.bias = bias ? this.buffer('bias', bias) : null;
  }
  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, groups: this.groups });
  }
  /** Whether every weight is 0 or 1 (a channel selection: exact under every weight rule, see quantizeModel). */
  isSelection(): boolean {
    return this.weight.data.every((v) => v === 0 || v === 1);
  }
}

// ---- composites for ONNX operators without a primitive of their own (exact: only 0/1 weights and adds of 0) ----

/** One-hot kernels [kh·kw, 1, kh, kw]: a conv with them lays every window position out as a channel. */
function windowKernels(kh: number, kw: number): Tensor {
  const w = Tensor.zeros([kh * kw, 1, kh, kw]);
  for (let i = 0; i < kh * kw; i++) w.data[i * kh * kw + i] = 1;
  return w;
}

/** Max pooling (square window k, stride, zero-size or symmetric padding that never wins, as in ONNX). */
export function maxPool2d(x: Tensor, k: number, stride: number, pad: number): Tensor {
  check(x.ndim === 4, () => `maxPool2d: expected [N,C,H,W], got ${shapeStr(x.shape)}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const planes = F.reshape(x, [n * c, 1, h, w]);
  let win = F.conv2d(planes, windowKernels(k, k), null, { stride, padding: pad });
  if (pad > 0) {
    // Padded positions read 0 from the conv; a -3e38 penalty there (0 elsewhere, so real values stay exact).
    const inside = F.conv2d(Tensor.ones([1, 1, h, w]), windowKernels(k, k), null, { stride, padding: pad });
    const penalty = Tensor.from(inside.data.map((v) => (v === 1 ? 0 : -3e38)), inside.shape);
    win = F.add(win, penalty);
  }
  const [, , oh, ow] = win.shape as [number, number, number, number];
  return F.reshape(F.max(win, 1, true), [n, c, oh, ow]);
}

/**
 * Zero padding of H and W by (top, left, bottom, right): a symmetric pad p, then a one-hot kernel crops. p = the larger
 * of top+bottom and left+right keeps the kernel (2p - top - bottom + 1 rows) larger than p, as the conv kernel needs.
 */
export function padSpatial(x: Tensor, top: number, left: number, bottom: number, right: number): Tensor {
  check(x.ndim === 4, () => `padSpatial: expected [N,C,H,W], got ${shapeStr(x.shape)}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const p = Math.max(top + bottom, left + right);
  const kh = 2 * p - top - bottom + 1;
  const kw = 2 * p - left - right + 1;
  const kernel = Tensor.zeros([1, 1, kh, kw]);
  kernel.data[(p - top) * kw + (p - left)] = 1;
  const y = F.conv2d(F.reshape(x, [n * c, 1, h, w]), kernel, null, { padding: p });
  return F.reshape(y, [n, c, h + top + bottom, w + left + right]);
}

/** Concatenation along channels (axis 1) of [N,C,...] tensors: each zero-padded into place, then added. */
export function concatChannels(xs: Tensor[]): Tensor {
  const rank = xs[0]!.ndim;
  for (const x of xs) {
    if (x.ndim !== rank || x.shape[0] !== xs[0]!.shape[0] || x.shape.slice(2).some((d, i) => d !== xs[0]!.shape[2 + i])) {
      throw new GranqError(`concat: expected tensors that differ only in axis 1, got ${xs.map((t) => shapeStr(t.shape)).join(' and ')}`);
    }
  }
  const total = xs.reduce((s, x) => s + x.shape[1]!, 0);
  const as4 = (x: Tensor) => (rank === 4 ? x : F.reshape(x, [x.shape[0]!, x.shape[1]!, x.size / (x.shape[0]! * x.shape[1]!), 1]));
  let before = 0;
  let out: Tensor | null = null;
  for (const x of xs) {
    const c = x.shape[1]!;
    const placed = F.padChannels(as4(x), before, total - before - c);
    out = out ? F.add(out, placed) : placed;
    before += c;
  }
  return F.reshape(out!, [xs[0]!.shape[0]!, total, ...xs[0]!.shape.slice(2)]);
}
