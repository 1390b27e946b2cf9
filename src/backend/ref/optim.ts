/** Scalar reference twins of native/optim.cc: torch.optim.SGD and torch.optim.Adam (1.13, single-tensor) steps. */
import type { Backend } from '../backend.js';

/** torch.lerp's two-sided form. */
const lerp = (a: number, b: number, w: number) => (w < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w));

export const refOptim: Pick<Backend, 'sgdStep' | 'adamStep'> = {
  sgdStep({ lr, momentum, dampening, weightDecay, nesterov, firstStep, param, grad, buf }) {
    for (let i = 0; i < param.length; i++) {
      let d = grad[i]!;
      if (weightDecay !== 0) d += weightDecay * param[i]!;
      if (momentum !== 0) {
        if (!buf) throw new RangeError('ref sgdStep: buf: expected a buffer when momentum != 0, got null');
        const b = firstStep ? d : momentum * buf[i]! + (1 - dampening) * d;
        buf[i] = b;
        d = nesterov ? d + momentum * b : b;
      }
      param[i] = param[i]! - lr * d;
    }
  },

  adamStep({ lr, beta1, beta2, eps, weightDecay, step, param, grad, expAvg, expAvgSq }) {
    const bc1 = 1 - beta1 ** step;
    const bc2 = 1 - beta2 ** step;
    const stepSize = lr / bc1;
    const bc2Sqrt = Math.sqrt(bc2);
    for (let i = 0; i < param.length; i++) {
      let g = grad[i]!;
      if (weightDecay !== 0) g += weightDecay * param[i]!;
      expAvg[i] = lerp(expAvg[i]!, g, 1 - beta1);
      expAvgSq[i] = beta2 * expAvgSq[i]! + (1 - beta2) * g * g;
      const denom = Math.sqrt(expAvgSq[i]!) / bc2Sqrt + eps;
      param[i] = param[i]! - stepSize * (expAvg[i]! / denom);
    }
  },
};
