/**
 * Quantized stand-ins for Conv2d and Linear: they keep the FP master weight (same parameter names, so the state
 * dict keys match the teacher's) and fake-quantize it at every forward through their weight quantizer `wq`.
 */
import * as F from '../autograd/index.js';
import { Conv2d, Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import type { WeightQuantizer } from './quantizer.js';

export class QuantConv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly groups: number;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly wq: WeightQuantizer;

  constructor(conv: Conv2d, wq: WeightQuantizer) {
    super();
    this.weight = this.param('weight', conv.weight);
    this.bias = conv.bias ? this.param('bias', conv.bias) : null;
    this.stride = conv.stride;
    this.padding = conv.padding;
    this.groups = conv.groups;
    this.inChannels = conv.inChannels;
    this.outChannels = conv.outChannels;
    this.kernelSize = conv.kernelSize;
    this.wq = this.child('wq', wq);
    wq.bind(this.weight);
  }

  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.wq.forward(this.weight), this.bias, { stride: this.stride, padding: this.padding, groups: this.groups });
  }
}

export class QuantLinear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly wq: WeightQuantizer;

  constructor(lin: Linear, wq: WeightQuantizer) {
    super();
    this.weight = this.param('weight', lin.weight);
    this.bias = lin.bias ? this.param('bias', lin.bias) : null;
    this.inFeatures = lin.inFeatures;
    this.outFeatures = lin.outFeatures;
    this.wq = this.child('wq', wq);
    wq.bind(this.weight);
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.wq.forward(this.weight), this.bias);
  }
}
