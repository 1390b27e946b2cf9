/**
 * Scalar reference twins of native/batchnorm.cc: BatchNorm2d over [n, c, hw] as PyTorch 1.13 computes it.
 * Statistics in double (two passes: mean, then squared deviations); the unbiased variance feeds the running update.
 */
import type { Backend, Buf } from '../backend.js';

/** Sum of fn(value, index) over one channel's n * hw elements, in (n, hw) order. */
function channelSum(n: number, c: number, hw: number, ch: number, fn: (off: number) => number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    const base = (i * c + ch) * hw;
    for (let j = 0; j < hw; j++) s += fn(base + j);
  }
  return s;
}

function forEachInChannel(n: number, c: number, hw: number, ch: number, fn: (off: number) => void): void {
  for (let i = 0; i < n; i++) {
    const base = (i * c + ch) * hw;
    for (let j = 0; j < hw; j++) fn(base + j);
  }
}

const gammaOf = (g: Buf | null, ch: number) => (g ? g[ch]! : 1);
const reluOf = (v: number) => (v < 0 ? 0 : v);
/** The gradient reaching the BN output: dy, masked by y > 0 after a fused ReLU. */
const maskedDy = (dy: Buf, y: Buf | null) => (y ? (k: number) => (y[k]! > 0 ? dy[k]! : 0) : (k: number) => dy[k]!);
const betaOf = (b: Buf | null, ch: number) => (b ? b[ch]! : 0);

export const refBatchnorm: Pick<
  Backend,
  'batchNormFwdTrain' | 'batchNormFwdEval' | 'batchNormBwdTrain' | 'batchNormBwdEval' | 'channelStatsFwd' | 'channelStatsBwd'
> = {
  batchNormFwdTrain({ n, c, hw, x, gamma, beta, eps, momentum, runningMean, runningVar, relu, y, saveMean, saveInvstd }) {
    const act = relu ? reluOf : (v: number) => v;
    const m = n * hw;
    for (let ch = 0; ch < c; ch++) {
      const mean = channelSum(n, c, hw, ch, (k) => x[k]!) / m;
      const varSum = channelSum(n, c, hw, ch, (k) => (x[k]! - mean) ** 2);
      const variance = varSum / m;
      const invstd = 1 / Math.sqrt(variance + eps);
      saveMean[ch] = mean;
      saveInvstd[ch] = invstd;
      if (runningMean && runningVar) {
        // torch divides by m - 1 (0/0 when m == 1, which its Python layer refuses); we keep the biased variance.
        const unbiased = m > 1 ? varSum / (m - 1) : variance;
        runningMean[ch] = momentum * mean + (1 - momentum) * runningMean[ch]!;
        runningVar[ch] = momentum * unbiased + (1 - momentum) * runningVar[ch]!;
      }
      const g = gammaOf(gamma, ch);
      const b = betaOf(beta, ch);
      forEachInChannel(n, c, hw, ch, (k) => {
        y[k] = act((x[k]! - mean) * invstd * g + b);
      });
    }
  },

  batchNormFwdEval({ n, c, hw, x, gamma, beta, runningMean, runningVar, eps, relu, y }) {
    const act = relu ? reluOf : (v: number) => v;
    for (let ch = 0; ch < c; ch++) {
      const mean = runningMean[ch]!;
      const invstd = 1 / Math.sqrt(runningVar[ch]! + eps);
      const g = gammaOf(gamma, ch);
      const b = betaOf(beta, ch);
      forEachInChannel(n, c, hw, ch, (k) => {
        y[k] = act((x[k]! - mean) * invstd * g + b);
      });
    }
  },

  batchNormBwdTrain({ n, c, hw, dy: dyIn, y, x, saveMean, saveInvstd, gamma, dx, dgamma, dbeta }) {
    const m = n * hw;
    const dyAt = maskedDy(dyIn, y);
    for (let ch = 0; ch < c; ch++) {
      const mean = saveMean[ch]!;
      const invstd = saveInvstd[ch]!;
      const sumDy = channelSum(n, c, hw, ch, dyAt);
      const sumDyXhat = channelSum(n, c, hw, ch, (k) => dyAt(k) * (x[k]! - mean) * invstd);
      if (dgamma) dgamma[ch] = sumDyXhat;
      if (dbeta) dbeta[ch] = sumDy;
      if (dx) {
        // dx = gamma * invstd / m * (m * dy - sum(dy) - xhat * sum(dy * xhat))
        const g = gammaOf(gamma, ch);
        forEachInChannel(n, c, hw, ch, (k) => {
          const xhat = (x[k]! - mean) * invstd;
          dx[k] = ((g * invstd) / m) * (m * dyAt(k) - sumDy - xhat * sumDyXhat);
        });
      }
    }
  },

  batchNormBwdEval({ n, c, hw, dy: dyIn, y, x, runningMean, runningVar, eps, gamma, dx, dgamma, dbeta }) {
    const dyAt = maskedDy(dyIn, y);
    for (let ch = 0; ch < c; ch++) {
      const mean = runningMean[ch]!;
      const invstd = 1 / Math.sqrt(runningVar[ch]! + eps);
      if (dgamma) dgamma[ch] = channelSum(n, c, hw, ch, (k) => dyAt(k) * (x[k]! - mean) * invstd);
      if (dbeta) dbeta[ch] = channelSum(n, c, hw, ch, dyAt);
      if (dx) {
        const scale = gammaOf(gamma, ch) * invstd;
        forEachInChannel(n, c, hw, ch, (k) => {
          dx[k] = dyAt(k) * scale;
        });
      }
    }
  },

  channelStatsFwd({ n, c, hw, x, stats }) {
    const m = n * hw;
    for (let ch = 0; ch < c; ch++) {
      const mean = channelSum(n, c, hw, ch, (k) => x[k]!) / m;
      stats[ch] = mean;
      stats[c + ch] = channelSum(n, c, hw, ch, (k) => (x[k]! - mean) ** 2) / m;
    }
  },

  channelStatsBwd({ n, c, hw, x, stats, dstats, dx }) {
    const m = n * hw;
    for (let ch = 0; ch < c; ch++) {
      const mean = stats[ch]!;
      const gm = dstats[ch]! / m;
      const gv = (2 * dstats[c + ch]!) / m;
      forEachInChannel(n, c, hw, ch, (k) => {
        dx[k] = gm + gv * (x[k]! - mean);
      });
    }
  },
};
