/** Batch normalisation over (N, H, W) per channel, training (batch statistics) and evaluation (running statistics). */
import { backend } from '../../backend/index.js';
import { check } from '../../errors.js';
import { allocFloats, Tensor } from '../../tensor/tensor.js';
import { shapeStr } from '../../tensor/shape.js';
import { defineOp } from '../tape.js';

declare module '../tape.js' {
  interface OpAttrs {
    batch_norm: BatchNormAttrs;
    channel_stats: null;
  }
}

export interface BatchNormAttrs {
  training: boolean;
  eps: number;
  momentum: number;
  /** Updated in place in training mode when given (PyTorch's running-stat side effect). */
  runningMean: Float32Array | null;
  runningVar: Float32Array | null;
  /** relu(BN(x)) in one kernel pass, forward and backward: a BatchNorm followed by a ReLU. */
  relu?: boolean;
}

interface Saved {
  n: number;
  c: number;
  hw: number;
  saveMean: Float32Array | null;
  saveInvstd: Float32Array | null;
}

const batchNormOp = defineOp<'batch_norm', [Tensor, Tensor | null, Tensor | null], Saved>({
  name: 'batch_norm',
  forward([x, gamma, beta], a) {
    check(x.ndim === 4 || x.ndim === 2, () => `batchNorm: expected [N,C,H,W] or [N,C], got ${shapeStr(x.shape)}`);
    const n = x.shape[0]!;
    const c = x.shape[1]!;
    const hw = x.ndim === 4 ? x.shape[2]! * x.shape[3]! : 1;
    for (const [name, t] of [['weight', gamma], ['bias', beta]] as const) {
      if (t) check(t.size === c, () => `batchNorm: ${name} has ${t.size} elements, input has ${c} channels`);
    }
    const out = Tensor.empty(x.shape);
    const be = backend();
    if (a.training) {
      check(n * hw > 1, () => `batchNorm: training needs more than one value per channel, got input ${shapeStr(x.shape)}`);
      const saveMean = allocFloats(c);
      const saveInvstd = allocFloats(c);
      be.batchNormFwdTrain({
        n, c, hw, x: x.data, gamma: gamma?.data ?? null, beta: beta?.data ?? null, eps: a.eps, momentum: a.momentum,
        runningMean: a.runningMean, runningVar: a.runningVar, relu: a.relu ?? false, y: out.data, saveMean, saveInvstd,
      });
      return { out, saved: { n, c, hw, saveMean, saveInvstd } };
    }
    check(a.runningMean !== null && a.runningVar !== null, 'batchNorm: evaluation mode needs running statistics');
    be.batchNormFwdEval({
      n, c, hw, x: x.data, gamma: gamma?.data ?? null, beta: beta?.data ?? null,
      runningMean: a.runningMean, runningVar: a.runningVar, eps: a.eps, relu: a.relu ?? false, y: out.data,
    });
    return { out, saved: { n, c, hw, saveMean: null, saveInvstd: null } };
  },
  backward({ gy, gyOwned, saved: s, needs, inputs: [x, gamma], attrs: a, out }) {
    const y = a.relu ? out.data : null;
    // The kernels finish their reductions over dy before writing dx elementwise, so dx may be dy.
    const dx = needs[0] ? (gyOwned ? gy : allocFloats(x.size)) : null;
    const dgamma = needs[1] ? allocFloats(s.c) : null;
    const dbeta = needs[2] ? allocFloats(s.c) : null;
    const be = backend();
    if (a.training) {
      be.batchNormBwdTrain({
        n: s.n, c: s.c, hw: s.hw, dy: gy, y, x: x.data, saveMean: s.saveMean!, saveInvstd: s.saveInvstd!,
        gamma: gamma?.data ?? null, dx, dgamma, dbeta,
      });
    } else {
      be.batchNormBwdEval({
        n: s.n, c: s.c, hw: s.hw, dy: gy, y, x: x.data, runningMean: a.runningMean!, runningVar: a.runningVar!, eps: a.eps,
        gamma: gamma?.data ?? null, dx, dgamma, dbeta,
      });
    }
    return [dx, dgamma, dbeta];
  },
});

export function batchNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, attrs: BatchNormAttrs): Tensor {
  return batchNormOp([x, gamma, beta], attrs);
}

const channelStatsOp = defineOp<'channel_stats', [Tensor], { n: number; c: number; hw: number }>({
  name: 'channel_stats',
  forward([x]) {
    check(x.ndim === 4, () => `channelStats: expected [N,C,H,W], got ${shapeStr(x.shape)}`);
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const out = Tensor.empty([2, c]);
    backend().channelStatsFwd({ n, c, hw: h * w, x: x.data, stats: out.data });
    return { out, saved: { n, c, hw: h * w } };
  },
  backward({ gy, saved, inputs: [x], out }) {
    const dx = allocFloats(x.size);
    backend().channelStatsBwd({ ...saved, x: x.data, stats: out.data, dstats: gy, dx });
    return [dx];
  },
});

/** Per-channel batch mean and biased variance of x [N,C,H,W] over (N, H, W), as [2, C] (means, then variances). */
export const channelStats = (x: Tensor) => channelStatsOp([x], null);
