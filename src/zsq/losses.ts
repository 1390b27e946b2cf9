/**
 * The losses of generator-based zero-shot QAT (zsq-report A.6, B.2), all independent of batch size (the released
 * margin loss hard-codes a zeros(200) vector; a clamp at 0 replaces it). t are teacher logits, s student logits.
 */
import * as F from '../autograd/index.js';
import { check } from '../errors.js';
import { BatchNorm2d } from '../nn/layers.js';
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
    this.bns = teacher.namedModules().map(([, m]) => m).filter((m): m is BatchNorm2d => m instanceof BatchNorm2d);
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
    for (const bn of this.bns) {
      const i = bn.inputHooks.indexOf(this.hook);
      if (i >= 0) bn.inputHooks.splice(i, 1);
    }
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
