/** 2-D convolution (NCHW, square stride and padding, grouped/depthwise) and the dense layer on the same GEMM backend. */
import { backend, type Conv2dShape } from '../../backend/index.js';
import { check } from '../../errors.js';
import { allocFloats, releaseFloats, Tensor } from '../../tensor/tensor.js';
import { shapeStr } from '../../tensor/shape.js';
import { defineOp } from '../tape.js';

declare module '../tape.js' {
  interface OpAttrs {
    conv2d: Conv2dAttrs;
    upsample_conv2d: null;
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

/*
 * Nearest x2 upsampling followed by a 3x3 convolution (stride 1, padding 1, the GDFQ generator's blocks), computed on
 * the low-resolution input. Output pixel (2i + a, 2j + b) of phase (a, b) reads the upsampled rows 2i + a - 1 .. 2i + a
 * + 1, which are input rows i - 1, i, i (a = 0) or i, i, i + 1 (a = 1): a 2x2 window of the zero-padded input xp at
 * (i + a, j + b) through a 2x2 kernel K_ab whose taps are sums of the 3x3 kernel's, tap ky going to row (ky + 1 - a) >> 1
 * (columns alike). 16 multiply-adds per 4 outputs instead of 36, in all three passes:
 *   forward      per phase: window xp[a.., b..] [N,C,H+1,W+1] (*) K_ab -> y_ab [N,O,H,W], interleaved into y (the
 *                window is x with top / left padding 1 - a / 1 - b: the conv kernels read it, nothing is copied);
 *   input grad   one valid 2x2 conv of the 4 phases' gradients, each framed at offset (a, b) in [N,4O,H+1,W+1],
 *                with the flipped kernels: dx[c,i,j] = sum K_ab[o,c,1-r,1-s] dy_ab[o,i+r-a,j+s-b];
 *   weight grad  per phase: the window against dy_ab gives dK_ab, summed back onto the 3x3 taps.
 * The same function as conv2d(upsampleNearest(x, 2), w, b) with other float32 rounding (the taps are summed first).
 */
interface UpConvSaved { n: number; c: number; h: number; w: number; o: number }

/**
 * The 4 phase kernels of the 3x3 kernel w[p .. p + 9) into k: phase ab's 4 taps at k[d_ab + t] (t = r * 2 + s), or with
 * `flip` at k[d_ab + 3 - t] (the kernel turned by 180 degrees). K_ab[r][s] sums the taps (ky, kx) with (ky + 1 - a) >> 1
 * = r and (kx + 1 - b) >> 1 = s. Written out: rows 0 | 1 + 2 for a = 0 and 0 + 1 | 2 for a = 1, columns alike.
 */
function writePhaseTaps(w: Float32Array, p: number, k: Float32Array, d00: number, d01: number, d10: number, d11: number, flip: boolean): void {
  const w00 = w[p]!, w01 = w[p + 1]!, w02 = w[p + 2]!, w10 = w[p + 3]!, w11 = w[p + 4]!, w12 = w[p + 5]!;
  const w20 = w[p + 6]!, w21 = w[p + 7]!, w22 = w[p + 8]!;
  const b0 = w10 + w20, b1 = w11 + w21, b2 = w12 + w22;  // rows 1 + 2 (a = 0, r = 1)
  const t0 = w00 + w10, t1 = w01 + w11, t2 = w02 + w12;  // rows 0 + 1 (a = 1, r = 0)
  const e = flip ? 3 : 0, u = flip ? -1 : 1;
  k[d00 + e] = w00; k[d00 + e + u] = w01 + w02; k[d00 + e + 2 * u] = b0; k[d00 + e + 3 * u] = b1 + b2;
  k[d01 + e] = w00 + w01; k[d01 + e + u] = w02; k[d01 + e + 2 * u] = b0 + b1; k[d01 + e + 3 * u] = b2;
  k[d10 + e] = t0; k[d10 + e + u] = t1 + t2; k[d10 + e + 2 * u] = w20; k[d10 + e + 3 * u] = w21 + w22;
  k[d11 + e] = t0 + t1; k[d11 + e + u] = t2; k[d11 + e + 2 * u] = w20 + w21; k[d11 + e + 3 * u] = w22;
}

/** The 4 phase kernels K [ab][O][C][2][2] of w [O][C][3][3] (the forward's and the weight gradient's layout). */
function phaseKernels(oc: number, w: Float32Array): Float32Array {
  const k = allocFloats(16 * oc);
  const ph = 4 * oc;
  for (let j = 0, p = 0, q = 0; j < oc; j++, p += 9, q += 4) writePhaseTaps(w, p, k, q, ph + q, 2 * ph + q, 3 * ph + q, false);
  return k;
}

/**
 * The flipped phase kernels as one [C, 4O, 2, 2] weight, g[c][ab * O + o][r][s] = K_ab[o][c][1 - r][1 - s]: the input
 * gradient's conv over the framed phase gradients. Written in g's order (c outer), so that no transpose is needed.
 */
function phaseKernelsFlipped(o: number, c: number, w: Float32Array): Float32Array {
  const g = allocFloats(16 * o * c);
  for (let ci = 0, d = 0; ci < c; ci++, d += 16 * o)
    for (let oi = 0, p = ci * 9, q = d; oi < o; oi++, p += 9 * c, q += 4) writePhaseTaps(w, p, g, q, 4 * o + q, 8 * o + q, 12 * o + q, true);
  return g;
}

/** The adjoint of phaseKernels: dw [O][C][3][3] from dK [ab][O][C][2][2], each tap the sum of its 4 phase entries. */
function phaseKernelsAdjoint(oc: number, dk: Float32Array): Float32Array {
  const dw = allocFloats(9 * oc);
  const ph = 4 * oc;
  for (let j = 0, p = 0, q = 0; j < oc; j++, p += 9, q += 4) {
    const a0 = dk[q]!, a1 = dk[q + 1]!, a2 = dk[q + 2]!, a3 = dk[q + 3]!;
    const b0 = dk[ph + q]!, b1 = dk[ph + q + 1]!, b2 = dk[ph + q + 2]!, b3 = dk[ph + q + 3]!;
    const c0 = dk[2 * ph + q]!, c1 = dk[2 * ph + q + 1]!, c2 = dk[2 * ph + q + 2]!, c3 = dk[2 * ph + q + 3]!;
    const d0 = dk[3 * ph + q]!, d1 = dk[3 * ph + q + 1]!, d2 = dk[3 * ph + q + 2]!, d3 = dk[3 * ph + q + 3]!;
    dw[p] = a0 + b0 + c0 + d0; dw[p + 1] = a1 + b0 + c1 + d0; dw[p + 2] = a1 + b1 + c1 + d1;
    dw[p + 3] = a2 + b2 + c0 + d0; dw[p + 4] = a3 + b2 + c1 + d0; dw[p + 5] = a3 + b3 + c1 + d1;
    dw[p + 6] = a2 + b2 + c2 + d2; dw[p + 7] = a3 + b2 + c3 + d2; dw[p + 8] = a3 + b3 + c3 + d3;
  }
  return dw;
}

/**
 * Phase (a, b)'s 2x2 conv on the low-resolution input: the window of the zero-padded input at (a, b) is the input with
 * top / left padding 1 - a / 1 - b (bottom / right a / b), read by the conv kernels themselves (no padded copy).
 */
function phaseShape(n: number, c: number, h: number, w: number, o: number, a: number, b: number) {
  return { n, ic: c, ih: h, iw: w, oc: o, kh: 2, kw: 2, stride: 1, pad: 0, padTop: 1 - a, padLeft: 1 - b, oh: h, ow: w, groups: 1 };
}

const upsampleConvOp = defineOp<'upsample_conv2d', [Tensor, Tensor, Tensor | null], UpConvSaved>({
  name: 'upsample_conv2d',
  forward([x, wt, bias]) {
    check(x.ndim === 4, () => `upsampleConv2d: input must be [N,C,H,W], got ${shapeStr(x.shape)}`);
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const o = wt.shape[0]!;
    check(wt.ndim === 4 && wt.shape[1] === c && wt.shape[2] === 3 && wt.shape[3] === 3,
      () => `upsampleConv2d: weight must be [OC,${c},3,3], got ${shapeStr(wt.shape)}`);
    if (bias) check(bias.size === o, () => `upsampleConv2d: bias has ${bias.size} elements, expected ${o}`);
    const be = backend();
    const k = phaseKernels(o * c, wt.data);
    const ph = n * o * h * w;
    const ya = allocFloats(4 * ph);  // [ab][N][O][H][W]
    const out = Tensor.empty([n, o, 2 * h, 2 * w]);
    for (let a = 0; a < 2; a++)
      for (let b = 0; b < 2; b++) {
        const ab = a * 2 + b;
        be.conv2dFwd({ ...phaseShape(n, c, h, w, o, a, b), x: x.data, weight: k.subarray(ab * o * c * 4, (ab + 1) * o * c * 4),
          bias: bias ? bias.data : null, y: ya.subarray(ab * ph, (ab + 1) * ph) });
      }
    be.phaseMerge2({ rows: n * o, h, w, x: ya, y: out.data });
    for (const t of [k, ya]) releaseFloats(t);
    return { out, saved: { n, c, h, w, o } };
  },
  backward({ gy, saved: { n, c, h, w, o }, needs, inputs: [x, wt] }) {
    const be = backend();
    let dx: Float32Array | null = null;
    let dw: Float32Array | null = null;
    let db: Float32Array | null = null;
    // The phase gradients dy_ab [ab][N][O][H][W], and for the input gradient also framed in [N,4O,H+1,W+1]: one pass.
    const ph = n * o * h * w;
    const dya = needs[0] || needs[1] ? allocFloats(4 * ph) : null;
    const framed = needs[0] ? allocFloats(4 * n * o * (h + 1) * (w + 1)) : null;
    if (dya) be.phaseSplit2(framed ? { rows: n * o, h, w, x: gy, y: dya, framed, channels: o } : { rows: n * o, h, w, x: gy, y: dya });
    if (framed) {
      const g = phaseKernelsFlipped(o, c, wt.data);
      dx = allocFloats(n * c * h * w);
      be.conv2dFwd({ n, ic: 4 * o, ih: h + 1, iw: w + 1, oc: c, kh: 2, kw: 2, stride: 1, pad: 0, oh: h, ow: w, groups: 1, x: framed, weight: g, bias: null, y: dx });
      for (const t of [framed, g]) releaseFloats(t);
    }
    if (needs[1]) {
      const dk = allocFloats(16 * o * c);
      for (let a = 0; a < 2; a++)
        for (let b = 0; b < 2; b++) {
          const ab = a * 2 + b;
          be.conv2dBwdWeight({ ...phaseShape(n, c, h, w, o, a, b), x: x.data, dy: dya!.subarray(ab * ph, (ab + 1) * ph),
            dweight: dk.subarray(ab * o * c * 4, (ab + 1) * o * c * 4), dbias: null });
        }
      dw = phaseKernelsAdjoint(o * c, dk);
      releaseFloats(dk);
    }
    if (dya) releaseFloats(dya);
    if (needs[2]) {
      db = allocFloats(o);
      be.reduceFwd({ op: 0, shape: [1, n, o, 4 * h * w], mask: [false, true, false, true], x: gy, y: db });
    }
    return [dx, dw, db];
  },
});

/** conv2d(upsampleNearest(x, 2), w, b) for a 3x3 kernel w [O,C,3,3], stride 1, padding 1, on the low-resolution x. */
export const upsampleConv2d = (x: Tensor, w: Tensor, b: Tensor | null = null) => upsampleConvOp([x, w, b], null);

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
