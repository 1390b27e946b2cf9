/**
 * Scalar reference twins of native/reduce.cc: sum / max / min over masked axes of a contiguous 4-D tensor, and the
 * max/min backward that splits the gradient evenly between ties (as torch.amax / torch.amin).
 */
import { REDUCE, type Backend, type Mask4, type Quad } from '../backend.js';

/** Calls fn(inputIndex, outputIndex) over x in row-major order; y has the masked axes of size 1. */
function forEachPair(shape: Quad, mask: Mask4, fn: (i: number, o: number) => void): void {
  const oshape = shape.map((s, d) => (mask[d] ? 1 : s));
  let i = 0;
  for (let a = 0; a < shape[0]; a++)
    for (let b = 0; b < shape[1]; b++)
      for (let c = 0; c < shape[2]; c++)
        for (let d = 0; d < shape[3]; d++) {
          const oa = mask[0] ? 0 : a;
          const ob = mask[1] ? 0 : b;
          const oc = mask[2] ? 0 : c;
          const od = mask[3] ? 0 : d;
          fn(i++, ((oa * oshape[1]! + ob) * oshape[2]! + oc) * oshape[3]! + od);
        }
}

function outLen(shape: Quad, mask: Mask4): number {
  return shape.reduce((p, s, d) => p * (mask[d] ? 1 : s), 1);
}

export const refReduce: Pick<Backend, 'reduceFwd' | 'reduceMinMaxBwd'> = {
  reduceFwd({ op, shape, mask, x, y }) {
    const acc = new Float64Array(outLen(shape, mask));
    const seen = new Uint8Array(acc.length);
    forEachPair(shape, mask, (i, o) => {
      const v = x[i]!;
      if (op === REDUCE.sum) {
        acc[o] += v;
      } else if (!seen[o] || Number.isNaN(v)) {
        acc[o] = v;
      } else if (!Number.isNaN(acc[o]!)) {
        acc[o] = op === REDUCE.max ? Math.max(acc[o]!, v) : Math.min(acc[o]!, v);
      }
      seen[o] = 1;
    });
    for (let o = 0; o < acc.length; o++) y[o] = acc[o]!;
  },

  reduceMinMaxBwd({ shape, mask, x, y, dy, dx }) {
    const ties = new Float64Array(outLen(shape, mask));
    forEachPair(shape, mask, (i, o) => {
      if (x[i] === y[o]) ties[o]! += 1;
    });
    // torch.amax backward: dx = (dy / count) * (x == y)
    const share = Float64Array.from(ties, (t, o) => (t > 0 ? dy[o]! / t : 0));
    forEachPair(shape, mask, (i, o) => {
      dx[i] = x[i] === y[o] ? share[o]! : 0;
    });
  },
};
