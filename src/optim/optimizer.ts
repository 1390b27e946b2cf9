/** Optimizers with PyTorch's update rules; the arithmetic is one fused native kernel per parameter. */
import { finiteCheckOn, firstNonFinite } from '../autograd/index.js';
import { backend } from '../backend/index.js';
import { check, GranqError } from '../errors.js';
import { shapeStr } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { releaseFloats, zeroFloats } from '../tensor/tensor.js';

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

  /** Drops every gradient (PyTorch's set_to_none); their buffers go back to the allocator's pool for reuse. */
  zeroGrad(): void {
    for (const p of this.params) {
      if (p.grad) releaseFloats(p.grad.data);
      p.grad = null;
    }
  }

  /**
   * Updates every parameter that has a gradient. Under autograd's finite check (setFiniteCheck) a non-finite gradient
   * before the update, or a non-finite parameter after it, is an error naming the parameter's index and shape.
   */
  step(): void {
    if (!finiteCheckOn()) return this.update();
    const where = (i: number) => `parameter ${i} of ${this.params.length} (${shapeStr(this.params[i]!.shape)})`;
    this.params.forEach((p, i) => {
      const at = p.grad ? firstNonFinite(p.grad.data) : -1;
      if (at >= 0) {
        throw new GranqError(`finite check: ${this.constructor.name} step: the gradient of ${where(i)} holds ${p.grad!.data[at]} ` +
          'before the update, although every op gave finite gradients: their sum, or what was added to it outside the ops, overflowed');
      }
    });
    this.update();
    this.params.forEach((p, i) => {
      const at = firstNonFinite(p.data);
      if (at < 0) return;
      const gMax = p.grad ? p.grad.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0) : 0;
      throw new GranqError(`finite check: ${this.constructor.name} step made ${p.data[at]} in ${where(i)} from a finite gradient ` +
        `(largest magnitude ${gMax.toPrecision(3)}; lr ${this.lr})`);
    });
  }

  /** The update rule, on every parameter that has a gradient. */
  protected abstract update(): void;
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

  protected update(): void {
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

  protected update(): void {
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

/** PyTorch's MultiStepLR: lr = base * gamma^(number of milestones <= epoch). */
export function multiStepLr(base: number, epoch: number, milestones: readonly number[], gamma = 0.1): number {
  return base * gamma ** milestones.filter((m) => epoch >= m).length;
}

/** PyTorch's CosineAnnealingLR (eta_min 0) stepped once per epoch: lr = base * (1 + cos(pi * epoch / epochs)) / 2. */
export function cosineLr(base: number, epoch: number, epochs: number): number {
  return (base * (1 + Math.cos((Math.PI * epoch) / epochs))) / 2;
}

/**
 * Optimizer state as named float tensors plus scalars, for checkpoints: `<index>.<field>` for each parameter that
 * has state, in parameter order.
 */
export function optimizerState(opt: Optimizer): { tensors: Map<string, Float32Array>; scalars: Record<string, number> } {
  const tensors = new Map<string, Float32Array>();
  const scalars: Record<string, number> = { lr: opt.lr };
  opt.params.forEach((p, i) => {
    const st = opt.state.get(p);
    if (!st) return;
    for (const [k, v] of Object.entries(st)) {
      if (v instanceof Float32Array) tensors.set(`${i}.${k}`, v);
      else if (typeof v === 'number') scalars[`${i}.${k}`] = v;
    }
  });
  return { tensors, scalars };
}

/** Restores what optimizerState() saved (same parameter list and order). */
export function loadOptimizerState(opt: Optimizer, tensors: Map<string, Float32Array>, scalars: Record<string, number>): void {
  opt.lr = scalars.lr ?? opt.lr;
  opt.state.clear();
  opt.params.forEach((p, i) => {
    const st: ParamGroupState = {};
    for (const [k, v] of tensors) {
      const [idx, field] = k.split('.', 2) as [string, string];
      if (Number(idx) !== i) continue;
      check(v.length === p.size, () => `optimizer state ${k}: ${v.length} values for a parameter of ${p.size}`);
      st[field] = v.slice();
    }
    for (const [k, v] of Object.entries(scalars)) {
      const [idx, field] = k.split('.', 2) as [string, string];
      if (field !== undefined && Number(idx) === i) st[field] = v;
    }
    if (Object.keys(st).length > 0) opt.state.set(p, st);
  });
}
