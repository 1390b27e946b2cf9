/** Optimizers with PyTorch's update rules; the arithmetic is one fused native kernel per parameter. */
import { backend } from '../backend/index.js';
import { check } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeroFloats } from '../tensor/tensor.js';

export interface ParamGroupState {
  [key: string]: Float32Array | number | boolean | undefined;
}

export abstract class Optimizer {
  lr: number;
  /** Per-parameter state (momentum buffers, Adam moments), serialisable into checkpoints. */
  readonly state = new Map<Tensor, ParamGroupState>();

  constructor(readonly params: Tensor[], lr: number) {
    check(params.length > 0, 'optimizer: got an empty parameter list');
    check(Number.isFinite(lr) && lr >= 0, () => `optimizer: lr must be a non-negative number, got ${lr}`);
    this.lr = lr;
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  /** Updates every parameter that has a gradient. */
  abstract step(): void;
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;

  constructor(params: Tensor[], opts: SgdOptions) {
    super(params, opts.lr);
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.nesterov = opts.nesterov ?? false;
    check(!this.nesterov || (this.momentum > 0 && this.dampening === 0), 'SGD: Nesterov needs momentum > 0 and dampening 0');
  }

  step(): void {
    const be = backend();
    for (const p of this.params) {
      if (!p.grad) continue;
      let st = this.state.get(p);
      const firstStep = st === undefined;
      if (!st) {
        st = { buf: this.momentum !== 0 ? zeroFloats(p.size) : undefined };
        this.state.set(p, st);
      }
      be.sgdStep({
        lr: this.lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay,
        nesterov: this.nesterov, firstStep, param: p.data, grad: p.grad.data, buf: (st.buf as Float32Array | undefined) ?? null,
      });
    }
  }
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class Adam extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;

  constructor(params: Tensor[], opts: AdamOptions) {
    super(params, opts.lr);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
  }

  step(): void {
    const be = backend();
    for (const p of this.params) {
      if (!p.grad) continue;
      let st = this.state.get(p);
      if (!st) {
        st = { step: 0, expAvg: zeroFloats(p.size), expAvgSq: zeroFloats(p.size) };
        this.state.set(p, st);
      }
      st.step = (st.step as number) + 1;
      be.adamStep({
        lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay,
        step: st.step, param: p.data, grad: p.grad.data, expAvg: st.expAvg as Float32Array, expAvgSq: st.expAvgSq as Float32Array,
      });
    }
  }
}
