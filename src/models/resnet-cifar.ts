/**
 * CIFAR ResNets (He et al. 2016), depth 6n+2, widths 16/32/64, in the two shortcut styles of the teachers we load:
 *  - option A (akamaster/pytorch_resnet_cifar10): parameter-free shortcut, stride-2 subsampling + zero channel padding;
 *  - option B (pytorchcv resnet20_cifar10/100, the ZSQ papers' teachers): 1x1 conv + BN projection where the shape changes.
 * Module and parameter names follow each source's state-dict keys exactly. Every ReLU is its own module, so
 * quantization can swap it for ReLU + activation quantizer.
 */
import * as F from '../autograd/index.js';
import { check } from '../errors.js';
import { addThen, BatchNorm2d, batchNormThen, Conv2d, Linear, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';

function blocksPerStage(depth: number): number {
  check(Number.isInteger(depth) && depth >= 8 && (depth - 2) % 6 === 0, () => `resnet: depth must be 6n+2 (20, 32, 44, 56), got ${depth}`);
  return (depth - 2) / 6;
}

// ---------- option A ----------

/** x[:, :, ::2, ::2] zero-padded by planes/4 channels on each side (no parameters). */
export class ShortcutA extends Module {
  constructor(readonly stride: number, readonly padEach: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.padChannels(this.stride === 1 ? x : F.subsample(x, this.stride), this.padEach, this.padEach);
  }
}

export class BasicBlockA extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu1: Module;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  shortcut: ShortcutA | null;
  relu2: Module;

  constructor(inPlanes: number, planes: number, stride: number) {
    super();
    this.conv1 = this.child('conv1', new Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false }));
    this.bn1 = this.child('bn1', new BatchNorm2d(planes));
    this.relu1 = this.child('relu1', new ReLU());
    this.conv2 = this.child('conv2', new Conv2d(planes, planes, 3, { padding: 1, bias: false }));
    this.bn2 = this.child('bn2', new BatchNorm2d(planes));
    this.shortcut = stride !== 1 || inPlanes !== planes ? this.child('shortcut', new ShortcutA(stride, planes / 4)) : null;
    this.relu2 = this.child('relu2', new ReLU());
  }

  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(batchNormThen(this.bn1, this.relu1, this.conv1.forward(x))));
    return addThen(out, this.shortcut ? this.shortcut.forward(x) : x, this.relu2);
  }
}

export class ResNetCifarA extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: Module;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  linear: Linear;

  constructor(depth: number, numClasses: number) {
    super();
    const n = blocksPerStage(depth);
    this.conv1 = this.child('conv1', new Conv2d(3, 16, 3, { padding: 1, bias: false }));
    this.bn1 = this.child('bn1', new BatchNorm2d(16));
    this.relu = this.child('relu', new ReLU());
    const stage = (inPlanes: number, planes: number, stride: number) =>
      new Sequential(...Array.from({ length: n }, (_, i) => new BasicBlockA(i === 0 ? inPlanes : planes, planes, i === 0 ? stride : 1)));
    this.layer1 = this.child('layer1', stage(16, 16, 1));
    this.layer2 = this.child('layer2', stage(16, 32, 2));
    this.layer3 = this.child('layer3', stage(32, 64, 2));
    this.linear = this.child('linear', new Linear(64, numClasses));
  }

  forward(x: Tensor): Tensor {
    let y = batchNormThen(this.bn1, this.relu, this.conv1.forward(x));
    y = this.layer3.forward(this.layer2.forward(this.layer1.forward(y)));
    return this.linear.forward(F.flatten(F.globalAvgPool(y)));
  }
}

// ---------- option B (pytorchcv layout) ----------

/** pytorchcv's ConvBlock: conv -> bn -> optional activation, children named conv, bn, activ. */
export class ConvBlock extends Module {
  conv: Conv2d;
  bn: BatchNorm2d;
  activ: Module | null;
  constructor(inC: number, outC: number, k: number, stride: number, activate: boolean) {
    super();
    this.conv = this.child('conv', new Conv2d(inC, outC, k, { stride, padding: (k - 1) / 2, bias: false }));
    this.bn = this.child('bn', new BatchNorm2d(outC));
    this.activ = activate ? this.child('activ', new ReLU()) : null;
  }
  forward(x: Tensor): Tensor {
    const y = this.conv.forward(x);
    return this.activ ? batchNormThen(this.bn, this.activ, y) : this.bn.forward(y);
  }
}

export class ResBlockB extends Module {
  conv1: ConvBlock;
  conv2: ConvBlock;
  constructor(inC: number, outC: number, stride: number) {
    super();
    this.conv1 = this.child('conv1', new ConvBlock(inC, outC, 3, stride, true));
    this.conv2 = this.child('conv2', new ConvBlock(outC, outC, 3, 1, false));
  }
  forward(x: Tensor): Tensor {
    return this.conv2.forward(this.conv1.forward(x));
  }
}

export class ResUnitB extends Module {
  body: ResBlockB;
  identity_conv: ConvBlock | null;
  activ: Module;
  constructor(inC: number, outC: number, stride: number) {
    super();
    this.body = this.child('body', new ResBlockB(inC, outC, stride));
    this.identity_conv = inC !== outC || stride !== 1 ? this.child('identity_conv', new ConvBlock(inC, outC, 1, stride, false)) : null;
    this.activ = this.child('activ', new ReLU());
  }
  forward(x: Tensor): Tensor {
    const identity = this.identity_conv ? this.identity_conv.forward(x) : x;
    return addThen(this.body.forward(x), identity, this.activ);
  }
}

/** A container whose children are named like pytorchcv's (init_block, stage1, ..., unit1, ...), applied in order. */
export class NamedSequential extends Module {
  private readonly order: string[] = [];
  constructor(entries: [string, Module][]) {
    super();
    for (const [name, m] of entries) {
      this.child(name, m);
      this.order.push(name);
    }
  }
  forward(x: Tensor): Tensor {
    const byName = new Map(this.children());
    let y = x;
    for (const name of this.order) y = byName.get(name)!.forward(y);
    return y;
  }
}

export class GlobalAvgPool extends Module {
  forward(x: Tensor): Tensor {
    return F.globalAvgPool(x);
  }
}

export class ResNetCifarB extends Module {
  features: NamedSequential;
  output: Linear;
  constructor(depth: number, numClasses: number) {
    super();
    const n = blocksPerStage(depth);
    const entries: [string, Module][] = [['init_block', new NamedSequential([['conv', new ConvBlock(3, 16, 3, 1, true)]])]];
    let inC = 16;
    [16, 32, 64].forEach((outC, s) => {
      const units: [string, Module][] = [];
      for (let u = 0; u < n; u++) {
        units.push([`unit${u + 1}`, new ResUnitB(inC, outC, u === 0 && s > 0 ? 2 : 1)]);
        inC = outC;
      }
      entries.push([`stage${s + 1}`, new NamedSequential(units)]);
    });
    entries.push(['final_pool', new GlobalAvgPool()]);
    this.features = this.child('features', new NamedSequential(entries));
    this.output = this.child('output', new Linear(64, numClasses));
  }
  forward(x: Tensor): Tensor {
    return this.output.forward(F.flatten(this.features.forward(x)));
  }
}
