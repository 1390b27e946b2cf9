/**
 * Scalar reference twins of native/conv2d.cc: direct loops over NCHW, accumulated in JS doubles. The three kernels
 * are written side by side from the same index map: y[b, o, oh, ow] += x[b, g*icg + i, oh*s + ky - pad, ow*s + kx - pad] w[o, i, ky, kx]
 * for the icg = ic/groups input channels i of output channel o's group g = o / (oc/groups); with padTop / padLeft
 * given, those replace pad in the row / column index.
 */
import type { Backend, Buf, Conv2dShape } from '../backend.js';

/** Calls f(xIndex, wIndex, yIndex) for every multiply-add of the convolution, skipping the zero padding. */
function forEachTap(s: Conv2dShape, f: (xi: number, wi: number, yi: number) => void): void {
  const { n, ic, ih, iw, oc, kh, kw, stride, oh, ow } = s;
  const top = s.padTop ?? s.pad, left = s.padLeft ?? s.pad;
  const groups = s.groups ?? 1;
  const icg = ic / groups;
  const ocg = oc / groups;
  for (let b = 0; b < n; b++)
    for (let o = 0; o < oc; o++)
      for (let y = 0; y < oh; y++)
        for (let x = 0; x < ow; x++) {
          const yi = ((b * oc + o) * oh + y) * ow + x;
          const i0 = Math.floor(o / ocg) * icg;
          for (let i = 0; i < icg; i++)
            for (let ky = 0; ky < kh; ky++) {
              const h = y * stride + ky - top;
              if (h < 0 || h >= ih) continue;
              for (let kx = 0; kx < kw; kx++) {
                const w = x * stride + kx - left;
                if (w < 0 || w >= iw) continue;
                f(((b * ic + i0 + i) * ih + h) * iw + w, ((o * icg + i) * kh + ky) * kw + kx, yi);
              }
            }
        }
}

export function conv2dFwdRef(p: Conv2dShape & { x: Buf; weight: Buf; bias: Buf | null; y: Buf }): void {
  const { x, weight, bias, y, oc, oh, ow } = p;
  const hw = oh * ow;
  const acc = new Float64Array(y.length);
  if (bias) for (let i = 0; i < acc.length; i++) acc[i] = bias[Math.floor(i / hw) % oc]!;
  forEachTap(p, (xi, wi, yi) => {
    acc[yi]! += x[xi]! * weight[wi]!;
  });
  y.set(acc);
}

export function conv2dBwdDataRef(p: Conv2dShape & { dy: Buf; weight: Buf; dx: Buf }): void {
  const { dy, weight, dx } = p;
  const acc = new Float64Array(dx.length);
  forEachTap(p, (xi, wi, yi) => {
    acc[xi]! += dy[yi]! * weight[wi]!;
  });
  dx.set(acc);
}

export function conv2dBwdWeightRef(p: Conv2dShape & { x: Buf; dy: Buf; dweight: Buf; dbias: Buf | null }): void {
  const { x, dy, dweight, dbias, oc, oh, ow } = p;
  const acc = new Float64Array(dweight.length);
  forEachTap(p, (xi, wi, yi) => {
    acc[wi]! += x[xi]! * dy[yi]!;
  });
  dweight.set(acc);
  if (dbias) {
    const hw = oh * ow;
    const db = new Float64Array(oc);
    for (let i = 0; i < dy.length; i++) db[Math.floor(i / hw) % oc]! += dy[i]!;
    dbias.set(db);
  }
}

export const refConv2d: Pick<Backend, 'conv2dFwd' | 'conv2dBwdData' | 'conv2dBwdWeight'> = {
  conv2dFwd: conv2dFwdRef,
  conv2dBwdData: conv2dBwdDataRef,
  conv2dBwdWeight: conv2dBwdWeightRef,
};
