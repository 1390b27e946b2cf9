/**
 * The losses of generator-based zero-shot QAT (zsq-report A.6, B.2), all independent of batch size (the released
 * margin loss hard-codes a zeros(200) vector; a clamp at 0 replaces it). t are teacher logits, s student logits.
 */
import * as F from '../autograd/index.js';
import { check } from '../errors.js';
import { batchNorms, type BatchNorm2d, type BatchNormInputHook } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';

/** Per-row entropy of softmax(logits) in nats, as the released code: -sum p log(p + 1e-12). */
export function softmaxEntropy(logits: Tensor): Tensor {
  const p = F.softmax(logits);
  return F.neg(F.sum(F.mul(p, F.log(F.addScalar(p, 1e-12))), 1));
}

export interface MarginOptions {
  lower?: number; // lambda_l
  upper?: number; // lambda_u
}

/**
 * AdaDFQ's margin loss on the normalised entropy of softmax(t - s): H' = (H - min H) / (log C - min H),
 * loss = mean(max(lambda_l - H', 0)) + mean(max(H' - lambda_u, 0)), lambda_l = 0.1, lambda_u = 0.8.
 */
export function marginLoss(t: Tensor, s: Tensor, opts: MarginOptions = {}): Tensor {
  const lower = opts.lower ?? 0.1;
  const upper = opts.upper ?? 0.8;
  const classes = t.shape[1]!;
  const h = softmaxEntropy(F.sub(t, s));
  const hMin = F.min(h);
  // log C - min H is 0 when every row is uniform (student == teacher); the released code then gives NaN. The
  // denominator is floored at 1e-8 (max(d, eps) = relu(d - eps) + eps), which changes nothing elsewhere.
  const range = F.neg(F.addScalar(hMin, -Math.log(classes)));
  const hn = F.div(F.sub(h, hMin), F.addScalar(F.relu(F.addScalar(range, -1e-8)), 1e-8));
  return F.add(F.mean(F.relu(F.affine(hn, -1, lower))), F.mean(F.relu(F.addScalar(hn, -upper))));
}

/** L_ds = CE(t - s, y): pushes the generator toward samples where teacher and student disagree. */
export const disagreementLoss = (t: Tensor, s: Tensor, y: Int32Array) => F.crossEntropy(F.sub(t, s), y);
/** L_as = CE(t + s, y): keeps the samples recognisable to both. */
export const agreementLoss = (t: Tensor, s: Tensor, y: Int32Array) => F.crossEntropy(F.add(t, s), y);

/** The released student loss: -T^2 mean(entropy(softmax((t - s) / T))), T = 20 on CIFAR. */
export function entropyKdLoss(t: Tensor, s: Tensor, temperature = 20): Tensor {
  const h = softmaxEntropy(F.scale(F.sub(t, s), 1 / temperature));
  return F.scale(F.mean(h), -(temperature * temperature));
}

/** GDFQ's distillation term: KLDivLoss('mean')(log_softmax(s/T), softmax(t/T)) * T^2 (mean over all B*C elements). */
export function klKdLoss(t: Tensor, s: Tensor, temperature = 20): Tensor {
  const kl = F.klDivMean(F.logSoftmax(F.scale(s, 1 / temperature)), F.logSoftmax(F.scale(t, 1 / temperature)));
  return F.scale(kl, temperature * temperature);
}

/**
 * Batch-norm statistics alignment: forward hooks on every BatchNorm2d of the teacher record the batch mean and
 * biased variance of the BN input; the loss is the mean over BN layers of MSE(mean, running_mean) +
 * MSE(variance, running_var) (variances, not standard deviations, as released).
 */
export class BnsLoss {
  private terms: Tensor[] = [];
  private readonly bns: BatchNorm2d[];
  private readonly hook = (x: Tensor, bn: BatchNorm2d) => {
    if (this.active) this.terms.push(bnsTerm(x, bn));
  };
  active = true;

  constructor(teacher: Module) {
    this.bns = batchNorms(teacher);
    check(this.bns.length > 0, 'BNS loss: the teacher has no BatchNorm2d layer');
    for (const bn of this.bns) bn.inputHooks.push(this.hook);
  }

  get layers(): number {
    return this.bns.length;
  }

  /** Starts collecting for one teacher forward pass. */
  reset(): void {
    this.terms = [];
  }

  /** The loss over the terms collected since reset(). */
  value(): Tensor {
    check(this.terms.length === this.bns.length,
      () => `BNS loss: collected ${this.terms.length} BatchNorm inputs, the teacher has ${this.bns.length}; run one teacher forward after reset()`);
    let total = this.terms[0]!;
    for (const t of this.terms.slice(1)) total = F.add(total, t);
    return F.scale(total, 1 / this.terms.length);
  }

  /** Removes the hooks from the teacher. */
  detach(): void {
    for (const bn of this.bns) removeInputHook(bn, this.hook);
  }
}

function removeInputHook(bn: BatchNorm2d, hook: BatchNormInputHook): void {
  const i = bn.inputHooks.indexOf(hook);
  if (i >= 0) bn.inputHooks.splice(i, 1);
}

/**
 * Feature distillation (beyond the released recipe; cfg.featureKd): the student's BatchNorm inputs (its conv outputs)
 * pulled towards the teacher's on the same images, the difference measured after the teacher's BatchNorm (its scale
 * |γ_c| / sqrt(running_var_c + eps) per channel; a near-dead channel's tiny variance would otherwise dominate): the
 * mean over BN layers of mean((|γ| (s − t) / sqrt(running_var + eps))²). Hooks on both networks record
 * the BN inputs of the forward passes run inside record(); teacher and student share an architecture, so the i-th
 * BN input of one pass pairs with the i-th of the other. The teacher's are recorded detached.
 */
export class FeatureKdLoss {
  private teacherInputs: { x: Tensor; bn: BatchNorm2d }[] = [];
  private studentInputs: Tensor[] = [];
  private side: 'teacher' | 'student' | null = null;
  private readonly hooks: [BatchNorm2d, BatchNormInputHook][] = [];

  constructor(teacher: Module, student: Module) {
    const t = batchNorms(teacher);
    const s = batchNorms(student);
    check(t.length > 0 && t.length === s.length,
      () => `feature KD: teacher and student need the same BatchNorm2d layers, got ${t.length} and ${s.length}`);
    const onTeacher: BatchNormInputHook = (x, bn) => {
      if (this.side === 'teacher') this.teacherInputs.push({ x: x.detach(), bn });
    };
    const onStudent: BatchNormInputHook = (x) => {
      if (this.side === 'student') this.studentInputs.push(x);
    };
    for (const bn of t) this.hooks.push([bn, onTeacher]);
    for (const bn of s) this.hooks.push([bn, onStudent]);
    for (const [bn, h] of this.hooks) bn.inputHooks.push(h);
  }

  /** Runs one forward pass of `side`'s network (fn), recording its BN inputs in place of the previous pass's. */
  record<T>(side: 'teacher' | 'student', fn: () => T): T {
    if (side === 'teacher') this.teacherInputs = [];
    else this.studentInputs = [];
    this.side = side;
    try {
      return fn();
    } finally {
      this.side = null;
    }
  }

  /** The loss between the last recorded teacher and student passes (on the same images). */
  value(): Tensor {
    const n = this.teacherInputs.length;
    check(n > 0 && n === this.studentInputs.length,
      () => `feature KD: recorded ${n} teacher and ${this.studentInputs.length} student BatchNorm inputs; record one pass of each`);
    let total: Tensor | null = null;
    this.teacherInputs.forEach(({ x: t, bn }, i) => {
      const s = this.studentInputs[i]!;
      F.checkSameShape(s, t, 'feature KD');
      const c = t.shape[1]!;
      const inv = Tensor.empty([1, c, ...new Array<number>(t.shape.length - 2).fill(1)]);
      const g = bn.weight?.data;
      for (let j = 0; j < c; j++) inv.data[j] = (g ? Math.abs(g[j]!) : 1) / Math.sqrt(bn.runningVar.data[j]! + bn.eps);
      const d = F.mul(F.sub(s, t), inv);
      const term = F.mean(F.mul(d, d));
      total = total ? F.add(total, term) : term;
    });
    return F.scale(total!, 1 / n);
  }

  /** Removes the hooks from both networks. */
  detach(): void {
    for (const [bn, h] of this.hooks) removeInputHook(bn, h);
  }
}

/** MSE(batch mean, running mean) + MSE(biased batch variance, running variance) = 2 mean((stats - target)^2). */
function bnsTerm(x: Tensor, bn: BatchNorm2d): Tensor {
  const c = x.shape[1]!;
  const target = Tensor.empty([2, c]);
  target.data.set(bn.runningMean.data, 0);
  target.data.set(bn.runningVar.data, c);
  const d = F.sub(F.channelStats(x), target);
  return F.scale(F.mean(F.mul(d, d)), 2);
}
