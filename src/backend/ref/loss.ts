/** Scalar reference twins of native/loss.cc: row-wise softmax / log-softmax and embedding lookup. */
import type { Backend } from '../backend.js';

export const refLoss: Pick<Backend, 'softmaxFwd' | 'softmaxBwd' | 'embeddingFwd' | 'embeddingBwd'> = {
  softmaxFwd({ rows, cols, log, x, y }) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let mx = -Infinity;
      for (let i = 0; i < cols; i++) mx = Math.max(mx, x[o + i]!);
      let sum = 0;
      for (let i = 0; i < cols; i++) sum += Math.exp(x[o + i]! - mx);
      // log-softmax = x - max - log(sum exp(x - max)); softmax = exp(x - max) / sum
      for (let i = 0; i < cols; i++) y[o + i] = log ? x[o + i]! - mx - Math.log(sum) : Math.exp(x[o + i]! - mx) / sum;
    }
  },

  softmaxBwd({ rows, cols, log, y, dy, dx }) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let sum = 0;
      for (let i = 0; i < cols; i++) sum += log ? dy[o + i]! : dy[o + i]! * y[o + i]!;
      for (let i = 0; i < cols; i++) {
        dx[o + i] = log ? dy[o + i]! - Math.exp(y[o + i]!) * sum : y[o + i]! * (dy[o + i]! - sum);
      }
    }
  },

  embeddingFwd({ n, num, dim, idx, weight, y }) {
    for (let i = 0; i < n; i++) {
      const k = idx[i]!;
      if (!(k >= 0 && k < num)) throw new RangeError(`ref embeddingFwd: idx: expected indices in [0, ${num}), got ${k} at position ${i}`);
      for (let j = 0; j < dim; j++) y[i * dim + j] = weight[k * dim + j]!;
    }
  },

  embeddingBwd({ n, num, dim, idx, dy, dweight }) {
    // Accumulates in index order.
    for (let i = 0; i < n; i++) {
      const k = idx[i]!;
      if (!(k >= 0 && k < num)) throw new RangeError(`ref embeddingBwd: idx: expected indices in [0, ${num}), got ${k} at position ${i}`);
      for (let j = 0; j < dim; j++) dweight[k * dim + j]! += dy[i * dim + j]!;
    }
  },
};
