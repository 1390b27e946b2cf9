/** The layers the pipeline needs, with PyTorch's parameter names and defaults. */
import * as F from '../autograd/index.js';
import { check } from '../errors.js';
import type { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import { defaultRng, uniformFanIn } from './init.js';
import { Module } from './module.js';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  /** Channel groups (default 1; inChannels for depthwise): the weight is [out, in/groups, k, k]. */
  groups?: number;
  bias?: boolean;
  rng?: Rng;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, opts: Conv2dOptions = {}) {
    super();
    for (const [k, v] of Object.entries({ inChannels, outChannels, kernelSize })) {
      check(Number.isInteger(v) && v >= 1, () => `Conv2d: ${k} must be a positive integer, got ${v}`);
    }
    const groups = opts.groups ?? 1;
    check(Number.isInteger(groups) && groups >= 1 && inChannels % groups === 0 && outChannels % groups === 0,
      () => `Conv2d: groups must be a positive integer dividing inChannels (${inChannels}) and outChannels (${outChannels}), got ${groups}`);
    const rng = opts.rng ?? defaultRng();
    const fanIn = (inChannels / groups) * kernelSize * kernelSize;
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.groups = groups;
    this.weight = this.param('weight', uniformFanIn([outChannels, inChannels / groups, kernelSize, kernelSize], fanIn, rng));
    this.bias = opts.bias ?? true ? this.param('bias', uniformFanIn([outChannels], fanIn, rng)) : null;
  }

  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, groups: this.groups });
  }
}

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
}

/** Observers of a BatchNorm's input (the BNS loss of zero-shot quantization reads batch statistics here). */
export type BatchNormInputHook = (x: Tensor, bn: BatchNorm2d) => void;

export class BatchNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly eps: number;
  readonly momentum: number;
  readonly inputHooks: BatchNormInputHook[] = [];

  constructor(readonly numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    check(Number.isInteger(numFeatures) && numFeatures >= 1, () => `BatchNorm2d: numFeatures must be a positive integer, got ${numFeatures}`);
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param('weight', Tensor.ones([numFeatures])) : null;
    this.bias = affine ? this.param('bias', Tensor.zeros([numFeatures])) : null;
    this.runningMean = this.buffer('running_mean', Tensor.zeros([numFeatures]));
    this.runningVar = this.buffer('running_var', Tensor.ones([numFeatures]));
  }

  /** relu: relu(BN(x)) in one fused op (see batchNormThen). */
  forward(x: Tensor, relu = false): Tensor {
    for (const hook of this.inputHooks) hook(x, this);
    return F.batchNorm(x, this.weight, this.bias, {
      training: this.training, eps: this.eps, momentum: this.momentum,
      runningMean: this.runningMean.data, runningVar: this.runningVar.data, relu,
    });
  }
}

/** A model's BatchNorm2d layers, in module order. */
export const batchNorms = (m: Module): BatchNorm2d[] =>
  m.namedModules().map(([, x]) => x).filter((x): x is BatchNorm2d => x instanceof BatchNorm2d);

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; rng?: Rng } = {}) {
    super();
    check(Number.isInteger(inFeatures) && inFeatures >= 1 && Number.isInteger(outFeatures) && outFeatures >= 1,
      () => `Linear: features must be positive integers, got ${inFeatures} -> ${outFeatures}`);
    const rng = opts.rng ?? defaultRng();
    this.weight = this.param('weight', uniformFanIn([outFeatures, inFeatures], inFeatures, rng));
    this.bias = opts.bias ?? true ? this.param('bias', uniformFanIn([outFeatures], inFeatures, rng)) : null;
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

/** Lookup table [num, dim], initialised N(0, 1) like PyTorch; forward takes integer indices. */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number, opts: { rng?: Rng } = {}) {
    super();
    this.weight = this.param('weight', Tensor.randn([num, dim], opts.rng ?? defaultRng()));
  }
  lookup(idx: Int32Array): Tensor {
    return F.embedding(idx, this.weight);
  }
  forward(): Tensor {
    throw new Error('Embedding: call lookup(indices)');
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

/** min(max(x, minVal), maxVal), torch.nn.Hardtanh; ReLU6 is Hardtanh(0, 6) (ONNX Clip). */
export class Hardtanh extends Module {
  constructor(readonly minVal = -1, readonly maxVal = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.hardtanh(x, this.minVal, this.maxVal);
  }
}

export class ReLU6 extends Hardtanh {
  constructor() {
    super(0, 6);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly slope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.leakyRelu(x, this.slope);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return F.tanh(x);
  }
}

export class Upsample extends Module {
  constructor(readonly scale = 2) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.upsampleNearest(x, this.scale);
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: number, readonly stride = kernelSize) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.kernelSize, this.stride);
  }
}

export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    return F.flatten(x);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Children named '0', '1', ... as in PyTorch, applied in order. */
export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.child(String(i), m));
  }
  override replaceChild(name: string, m: Module): void {
    super.replaceChild(name, m);
    this.layers[Number(name)] = m;
  }
  forward(x: Tensor): Tensor {
    return this.forwardFrom(0, x);
  }
  /** The layers from index `first` on. */
  forwardFrom(first: number, x: Tensor): Tensor {
    let y = x;
    for (let i = first; i < this.layers.length; i++) y = this.layers[i]!.forward(y);
    return y;
  }
}

/**
 * act(op(false)), or op(true) computing the ReLU itself when `act` is a ReLU or a Sequential that starts with one (a
 * quantized model's ReLU + activation quantizer): the same numbers, one pass over the tensor fewer forward and
 * backward. Model code uses it through batchNormThen and addThen wherever a BatchNorm or a residual sum feeds an
 * activation module.
 */
function thenActivation(act: Module, op: (relu: boolean) => Tensor): Tensor {
  if (act instanceof ReLU) return op(true);
  if (act instanceof Sequential && act.layers[0] instanceof ReLU) return act.forwardFrom(1, op(true));
  return act.forward(op(false));
}

/** act(bn(x)), the ReLU fused into the BatchNorm kernels when act starts with one. */
export const batchNormThen = (bn: BatchNorm2d, act: Module, x: Tensor): Tensor => thenActivation(act, (relu) => bn.forward(x, relu));

/** act(a + b), the ReLU fused into the sum when act starts with one. */
export const addThen = (a: Tensor, b: Tensor, act: Module): Tensor => thenActivation(act, (relu) => (relu ? F.addRelu(a, b) : F.add(a, b)));
