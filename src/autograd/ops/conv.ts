/** 2-D convolution (NCHW, square stride and padding, grouped/depthwise) and the dense layer on the same GEMM backend. */
import { backend, type Conv2dShape } from '../../backend/index.js';
import { check } from '../../errors.js';
import { allocFloats, Tensor } from '../../tensor/tensor.js';
import { shapeStr } from '../../tensor/shape.js';
import { defineOp } from '../tape.js';

declare module '../tape.js' {
  interface OpAttrs {
    conv2d: Conv2dAttrs;
    linear: null;
    matmul: null;
  }
}

export interface Conv2dAttrs {
  stride: number;
  padding: number;
  /** Channel groups (1: dense; ic: depthwise); the weight is [OC, IC/groups, KH, KW]. */
  groups: number;
}

function convShape(x: Tensor, w: Tensor, { stride, padding, groups }: Conv2dAttrs): Conv2dShape {
  check(x.ndim === 4, () => `conv2d: input must be [N,C,H,W], got ${shapeStr(x.shape)}`);
  check(w.ndim === 4, () => `conv2d: weight must be [OC,IC,KH,KW], got ${shapeStr(w.shape)}`);
  const [n, ic, ih, iw] = x.shape as [number, number, number, number];
  const [oc, wic, kh, kw] = w.shape as [number, number, number, number];
  check(Number.isInteger(groups) && groups >= 1 && ic % groups === 0 && oc % groups === 0,
    () => `conv2d: groups must be a positive integer dividing the input (${ic}) and output (${oc}) channels, got ${groups}`);
  check(wic * groups === ic, () => `conv2d: input has ${ic} channels, weight ${shapeStr(w.shape)} with groups ${groups} expects ${wic * groups}`);
  check(Number.isInteger(stride) && stride >= 1, () => `conv2d: stride must be a positive integer, got ${stride}`);
  check(Number.isInteger(padding) && padding >= 0, () => `conv2d: padding must be a non-negative integer, got ${padding}`);
  const oh = Math.floor((ih + 2 * padding - kh) / stride) + 1;
  const ow = Math.floor((iw + 2 * padding - kw) / stride) + 1;
  check(oh >= 1 && ow >= 1, () => `conv2d: kernel ${kh}x${kw} does not fit input ${ih}x${iw} with padding ${padding}`);
  return { n, ic, ih, iw, oc, kh, kw, stride, pad: padding, oh, ow, groups };
}

const conv2dOp = defineOp<'conv2d', [Tensor, Tensor, Tensor | null], Conv2dShape>({
  name: 'conv2d',
  forward([x, w, b], attrs) {
    const s = convShape(x, w, attrs);
    if (b) check(b.size === s.oc, () => `conv2d: bias has ${b.size} elements, expected ${s.oc}`);
    const out = Tensor.empty([s.n, s.oc, s.oh, s.ow]);
    backend().conv2dFwd({ ...s, x: x.data, weight: w.data, bias: b ? b.data : null, y: out.data });
    return { out, saved: s };
  },
  backward({ gy, saved: s, needs, inputs: [x, w] }) {
    const be = backend();
    let dx: Float32Array | null = null;
    let dw: Float32Array | null = null;
    let db: Float32Array | null = null;
    if (needs[0]) {
      dx = allocFloats(x.size);
      be.conv2dBwdData({ ...s, dy: gy, weight: w.data, dx });
    }
    if (needs[1] || needs[2]) {
      dw = allocFloats(w.size);
      db = needs[2] ? allocFloats(s.oc) : null;
      be.conv2dBwdWeight({ ...s, x: x.data, dy: gy, dweight: dw, dbias: db });
    }
    return [dx, needs[1] ? dw : null, db];
  },
});

export function conv2d(x: Tensor, w: Tensor, b: Tensor | null = null, attrs: Partial<Conv2dAttrs> = {}): Tensor {
  return conv2dOp([x, w, b], { stride: attrs.stride ?? 1, padding: attrs.padding ?? 0, groups: attrs.groups ?? 1 });
}

/** y = x . W^T + b for x [N,in], W [out,in], b [out]. */
const linearOp = defineOp<'linear', [Tensor, Tensor, Tensor | null], { m: number; k: number; n: number }>({
  name: 'linear',
  forward([x, w, b]) {
    check(x.ndim === 2 && w.ndim === 2, () => `linear: expected x [N,in] and weight [out,in], got ${shapeStr(x.shape)} and ${shapeStr(w.shape)}`);
    const [m, k] = x.shape as [number, number];
    const [n, wk] = w.shape as [number, number];
    check(wk === k, () => `linear: input has ${k} features, weight ${shapeStr(w.shape)} expects ${wk}`);
    const out = Tensor.empty([m, n]);
    const be = backend();
    if (b) {
      check(b.size === n, () => `linear: bias has ${b.size} elements, expected ${n}`);
      be.copyStrided({ shape: [1, 1, m, n], stride: [0, 0, 0, 1], x: b.data, y: out.data });
    }
    be.gemm({ m, n, k, transA: false, transB: true, beta: b ? 1 : 0, a: x.data, b: w.data, c: out.data });
    return { out, saved: { m, k, n } };
  },
  backward({ gy, saved: { m, k, n }, needs, inputs: [x, w] }) {
    const be = backend();
    let dx: Float32Array | null = null;
    let dw: Float32Array | null = null;
    let db: Float32Array | null = null;
    if (needs[0]) {
      dx = allocFloats(m * k);
      be.gemm({ m, n: k, k: n, transA: false, transB: false, beta: 0, a: gy, b: w.data, c: dx });
    }
    if (needs[1]) {
      dw = allocFloats(n * k);
      be.gemm({ m: n, n: k, k: m, transA: true, transB: false, beta: 0, a: gy, b: x.data, c: dw });
    }
    if (needs[2]) {
      db = allocFloats(n);
      be.reduceFwd({ op: 0, shape: [1, 1, m, n], mask: [false, false, true, false], x: gy, y: db });
    }
    return [dx, dw, db];
  },
});

export const linear = (x: Tensor, w: Tensor, b: Tensor | null = null) => linearOp([x, w, b], null);

/** Plain matrix product a [m,k] . b [k,n]. */
const matmulOp = defineOp<'matmul', [Tensor, Tensor], { m: number; k: number; n: number }>({
  name: 'matmul',
  forward([a, b]) {
    check(a.ndim === 2 && b.ndim === 2 && a.shape[1] === b.shape[0],
      () => `matmul: expected [m,k] . [k,n], got ${shapeStr(a.shape)} . ${shapeStr(b.shape)}`);
    const [m, k] = a.shape as [number, number];
    const n = b.shape[1]!;
    const out = Tensor.empty([m, n]);
    backend().gemm({ m, n, k, transA: false, transB: false, beta: 0, a: a.data, b: b.data, c: out.data });
    return { out, saved: { m, k, n } };
  },
  backward({ gy, saved: { m, k, n }, needs, inputs: [a, b] }) {
    const be = backend();
    let da: Float32Array | null = null;
    let db: Float32Array | null = null;
    if (needs[0]) {
      da = allocFloats(m * k);
      be.gemm({ m, n: k, k: n, transA: false, transB: true, beta: 0, a: gy, b: b.data, c: da });
    }
    if (needs[1]) {
      db = allocFloats(k * n);
      be.gemm({ m: k, n, k: m, transA: true, transB: false, beta: 0, a: a.data, b: gy, c: db });
    }
    return [da, db];
  },
});

export const matmul = (a: Tensor, b: Tensor) => matmulOp([a, b], null);
