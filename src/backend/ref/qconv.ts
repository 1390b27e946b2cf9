/**
 * Scalar reference twin of native/qconv.cc (the definition is in native/kernels.h qconv2d): exact integer partial
 * sums, then the float32 epilogue in the same order.
 */
import type { Backend, QconvArgs } from '../backend.js';

const f = Math.fround;

/** T = sum over the taps of (w + wz)(a + base) from its parts, in kernels.h's order (float32 of a double). */
function total(s: number, aSum: number, wSum: number, cnt: number, wz: number, base: number): number {
  if (wz === 0 && base === 0) return f(s);
  return f(((s + wz * aSum) + base * wSum) + (wz * base) * cnt);
}

export const refQconv: Pick<Backend, 'qconv2d'> = {
  qconv2d(p: QconvArgs) {
    const { n: N, c: C, h: H, w: W, o: O, k: K, stride, pad, perInput } = p;
    const OH = Math.floor((H + 2 * pad - K) / stride) + 1;
    const OW = Math.floor((W + 2 * pad - K) / stride) + 1;
    // Integer parts of channel i at output (n, o, oy, ox).
    const parts = (n: number, o: number, i: number, oy: number, ox: number) => {
      let s = 0, aSum = 0, wSum = 0, cnt = 0;
      for (let ky = 0; ky < K; ky++) {
        const iy = oy * stride - pad + ky;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < K; kx++) {
          const ix = ox * stride - pad + kx;
          if (ix < 0 || ix >= W) continue;
          const a = p.xq[((n * C + i) * H + iy) * W + ix]!;
          const w = p.wq[((o * C + i) * K + ky) * K + kx]!;
          s += a * w;
          aSum += a;
          wSum += w;
          cnt++;
        }
      }
      return { s, aSum, wSum, cnt };
    };
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        for (let oy = 0; oy < OH; oy++) {
          for (let ox = 0; ox < OW; ox++) {
            let y: number;
            if (perInput) {
              let acc = 0;
              for (let i = 0; i < C; i++) {
                const t = parts(n, o, i, oy, ox);
                const fi = f(f(1 / p.wscale[o * C + i]!) * f(1 / p.xscale[n * C + i]!));
                acc = f(acc + f(fi * total(t.s, t.aSum, t.wSum, t.cnt, p.wz[o * C + i]!, p.xbase[n * C + i]!)));
              }
              y = acc;
            } else {
              let s = 0, aSum = 0, wSum = 0, cnt = 0;
              for (let i = 0; i < C; i++) {
                const t = parts(n, o, i, oy, ox);
                s += t.s;
                aSum += t.aSum;
                wSum += t.wSum;
                cnt += t.cnt;
              }
              const fo = f(f(1 / p.wscale[o * C]!) * f(1 / p.xscale[n * C]!));
              y = f(fo * total(s, aSum, wSum, cnt, p.wz[o * C]!, p.xbase[n * C]!));
            }
            const v = f(y + p.bias[o]!);
            p.y[((n * O + o) * OH + oy) * OW + ox] = p.relu && !(v > 0) ? 0 : v;
          }
        }
      }
    }
  },
};
