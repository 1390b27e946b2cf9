/** Scalar reference twins of native/eltwise.cc: unary ops and their derivatives, broadcasting binary ops, copies. */
import { BINARY, UNARY, type Backend, type Quad } from '../backend.js';

/** f(x) for each UNARY code; alpha is leakyRelu's slope, affine's scale or hardtanh's min, beta affine's shift or hardtanh's max. */
function unary(op: number, v: number, alpha: number, beta: number): number {
  switch (op) {
    case UNARY.relu: return v < 0 ? 0 : v; // NaN passes through, as torch.relu
    case UNARY.leakyRelu: return v > 0 ? v : v * alpha;
    case UNARY.tanh: return Math.tanh(v);
    case UNARY.exp: return Math.exp(v);
    case UNARY.log: return Math.log(v);
    case UNARY.affine: return alpha * v + beta;
    case UNARY.sqrt: return Math.sqrt(v);
    case UNARY.hardtanh: return v < alpha ? alpha : v > beta ? beta : v; // NaN passes through, as torch
    default: throw new Error(`ref unary: unknown op ${op}`);
  }
}

/** dy * f'(x), from x or from y = f(x), whichever is cheaper (as torch's backward formulas). */
function unaryGrad(op: number, x: number, y: number, g: number, alpha: number, beta: number): number {
  switch (op) {
    case UNARY.relu: return x > 0 ? g : 0;
    case UNARY.leakyRelu: return x > 0 ? g : g * alpha; // torch: slope alpha at x == 0
    case UNARY.tanh: return g * (1 - y * y);
    case UNARY.exp: return g * y;
    case UNARY.log: return g / x;
    case UNARY.affine: return g * alpha;
    case UNARY.sqrt: return g / (2 * y);
    case UNARY.hardtanh: return x > alpha && x < beta ? g : 0; // torch's hardtanh_backward: 0 at both ends
    default: throw new Error(`ref unaryGrad: unknown op ${op}`);
  }
}

function binary(op: number, a: number, b: number): number {
  switch (op) {
    case BINARY.add: return a + b;
    case BINARY.sub: return a - b;
    case BINARY.mul: return a * b;
    case BINARY.div: return a / b;
    default: throw new Error(`ref binary: unknown op ${op}`);
  }
}

/** Calls fn(flatIndex, offset) for every element of `shape` in row-major order, offset read through `stride`. */
function forEachStrided(shape: Quad, stride: Quad, fn: (i: number, off: number) => void): void {
  let i = 0;
  for (let a = 0; a < shape[0]; a++)
    for (let b = 0; b < shape[1]; b++)
      for (let c = 0; c < shape[2]; c++)
        for (let d = 0; d < shape[3]; d++) fn(i++, a * stride[0] + b * stride[1] + c * stride[2] + d * stride[3]);
}

export const refEltwise: Pick<Backend, 'unaryFwd' | 'unaryBwd' | 'binaryFwd' | 'addReluFwd' | 'axpby' | 'copyStrided' | 'phaseMerge2' | 'phaseSplit2'> = {
  addReluFwd({ len, a, b, y }) {
    for (let i = 0; i < len; i++) y[i] = unary(UNARY.relu, a[i]! + b[i]!, 0, 0);
  },

  unaryFwd({ op, len, x, y, alpha, beta }) {
    for (let i = 0; i < len; i++) y[i] = unary(op, x[i]!, alpha, beta);
  },

  unaryBwd({ op, len, x, y, dy, dx, alpha, beta }) {
    for (let i = 0; i < len; i++) dx[i] = unaryGrad(op, x[i]!, y[i]!, dy[i]!, alpha, beta);
  },

  binaryFwd({ op, shape, aStride, bStride, a, b, y }) {
    const offB: number[] = [];
    forEachStrided(shape, bStride, (_i, off) => offB.push(off));
    forEachStrided(shape, aStride, (i, off) => {
      y[i] = binary(op, a[off]!, b[offB[i]!]!);
    });
  },

  axpby({ len, alpha, x, beta, y }) {
    // beta == 0 overwrites: y may hold garbage, and NaN * 0 is NaN.
    for (let i = 0; i < len; i++) y[i] = beta === 0 ? alpha * x[i]! : alpha * x[i]! + beta * y[i]!;
  },

  copyStrided({ shape, stride, x, y }) {
    forEachStrided(shape, stride, (i, off) => {
      y[i] = x[off]!;
    });
  },

  phaseMerge2({ rows, h, w, x, y }) {
    for (let ab = 0; ab < 4; ab++)
      for (let r = 0; r < rows; r++)
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++) y[(r * 2 * h + 2 * i + (ab >> 1)) * 2 * w + 2 * j + (ab & 1)] = x[((ab * rows + r) * h + i) * w + j]!;
  },

  phaseSplit2(p) {
    const { rows, h, w, x, y } = p;
    const framed = p.framed ?? null;
    const channels = p.framed ? p.channels : 1;
    if (framed) framed.fill(0, 0, 4 * rows * (h + 1) * (w + 1));
    for (let ab = 0; ab < 4; ab++)
      for (let r = 0; r < rows; r++) {
        const f = ((Math.floor(r / channels) * 4 + ab) * channels + (r % channels)) * (h + 1) * (w + 1);
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++) {
            const v = x[(r * 2 * h + 2 * i + (ab >> 1)) * 2 * w + 2 * j + (ab & 1)]!;
            y[((ab * rows + r) * h + i) * w + j] = v;
            if (framed) framed[f + (i + (ab >> 1)) * (w + 1) + j + (ab & 1)] = v;
          }
      }
  },
};
