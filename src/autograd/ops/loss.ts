/**
 * Row-wise softmax / log-softmax and embedding lookup (primitives), and the losses built from them (composites):
 * cross-entropy, KL divergence, entropy.
 */
import { backend } from '../../backend/index.js';
import { check } from '../../errors.js';
import { allocFloats, Tensor, zeroFloats } from '../../tensor/tensor.js';
import { shapeStr } from '../../tensor/shape.js';
import { defineOp } from '../tape.js';
import { exp, mul, neg, sub } from './eltwise.js';
import { mean, sum } from './reduce.js';

declare module '../tape.js' {
  interface OpAttrs {
    softmax: null;
    log_softmax: null;
    embedding: { idx: Int32Array };
  }
}

function softmaxOp(log: boolean) {
  return defineOp<'softmax' | 'log_softmax', [Tensor], null>({
    name: log ? 'log_softmax' : 'softmax',
    forward([x]) {
      check(x.ndim === 2, () => `${log ? 'logSoftmax' : 'softmax'}: expected [rows, classes], got ${shapeStr(x.shape)}`);
      const [rows, cols] = x.shape as [number, number];
      const out = Tensor.empty(x.shape);
      backend().softmaxFwd({ rows, cols, log, x: x.data, y: out.data });
      return { out, saved: null };
    },
    backward({ gy, inputs: [x], out }) {
      const [rows, cols] = x.shape as [number, number];
      const dx = allocFloats(x.size);
      backend().softmaxBwd({ rows, cols, log, y: out.data, dy: gy, dx });
      return [dx];
    },
  });
}

const softmaxPrim = softmaxOp(false);
const logSoftmaxPrim = softmaxOp(true);
export const softmax = (x: Tensor) => softmaxPrim([x], null);
export const logSoftmax = (x: Tensor) => logSoftmaxPrim([x], null);

const embeddingOp = defineOp<'embedding', [Tensor], null>({
  name: 'embedding',
  forward([w], { idx }) {
    check(w.ndim === 2, () => `embedding: weight must be [num, dim], got ${shapeStr(w.shape)}`);
    const [num, dim] = w.shape as [number, number];
    const out = Tensor.empty([idx.length, dim]);
    backend().embeddingFwd({ n: idx.length, num, dim, idx, weight: w.data, y: out.data });
    return { out, saved: null };
  },
  backward({ gy, inputs: [w], attrs: { idx } }) {
    const [num, dim] = w.shape as [number, number];
    const dw = zeroFloats(w.size);
    backend().embeddingBwd({ n: idx.length, num, dim, idx, dy: gy, dweight: dw });
    return [dw];
  },
});

/** Rows of `weight` [num, dim] selected by `idx`. */
export const embedding = (idx: Int32Array, weight: Tensor) => embeddingOp([weight], { idx });

/** A constant [N, C] one-hot matrix. */
export function oneHot(labels: Int32Array, classes: number): Tensor {
  const t = Tensor.zeros([labels.length, classes]);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    check(y >= 0 && y < classes, () => `oneHot: label ${y} at position ${i} is outside [0, ${classes})`);
    t.data[i * classes + y] = 1;
  }
  return t;
}

/**
 * Mean cross-entropy of logits [N,C] against integer labels (PyTorch's F.cross_entropy); with `labelSmoothing` e the
 * target is (1 - e) one-hot + e / C, as PyTorch's label_smoothing.
 */
export function crossEntropy(logits: Tensor, labels: Int32Array, labelSmoothing = 0): Tensor {
  check(logits.ndim === 2 && logits.shape[0] === labels.length,
    () => `crossEntropy: logits ${shapeStr(logits.shape)} and ${labels.length} labels do not match`);
  check(labelSmoothing >= 0 && labelSmoothing <= 1, () => `crossEntropy: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  const classes = logits.shape[1]!;
  const target = oneHot(labels, classes);
  if (labelSmoothing > 0) for (let i = 0; i < target.size; i++) target.data[i] = target.data[i]! * (1 - labelSmoothing) + labelSmoothing / classes;
  const picked = sum(mul(logSoftmax(logits), target), 1);
  return neg(mean(picked));
}

/** Per-row entropy in nats, -sum p log p, of softmax(logits). */
export function entropy(logits: Tensor): Tensor {
  const logp = logSoftmax(logits);
  return neg(sum(mul(exp(logp), logp), 1));
}

/**
 * PyTorch's KLDivLoss(reduction='mean')(logInput, target) with target = exp(logTarget): the mean over all N*C
 * elements of target * (logTarget - logInput). Taking the target in log space avoids log(0) for saturated softmaxes.
 */
export function klDivMean(logInput: Tensor, logTarget: Tensor): Tensor {
  return mean(mul(exp(logTarget), sub(logTarget, logInput)));
}
