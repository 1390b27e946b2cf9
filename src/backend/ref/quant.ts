/**
 * Scalar reference twins of native/quant.cc: asymmetric uniform fake quantization in torch's float32 operation
 * order (every intermediate rounded to float32 with Math.fround, round half to even as torch.round).
 */
import { check } from '../../errors.js';
import type { Backend, Buf } from '../backend.js';

const f = Math.fround;

/** torch.round: half to even. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Scale and zero point for the range [m, M]: s = n / max(M - m, 1e-8), z = round(s m) + 2^(bits-1).
 * PyTorch evaluates `scalar / tensor` as reciprocal(tensor) * scalar, so s is n * (1 / range), rounded twice:
 * this differs from a direct division by an ulp in some cases, and the fixtures pin it.
 */
export function qparams(m: number, M: number, bits: number): { s: number; z: number } {
  const s = qscale(m, M, 2 ** bits - 1);
  return { s, z: roundHalfEven(f(s * m)) + 2 ** (bits - 1) };
}

/** qparams' s for `levels` = 2^bits − 1 (a scalar for loops over many ranges). */
export const qscale = (m: number, M: number, levels: number): number => f(levels * f(1 / Math.max(f(M - m), f(1e-8))));

/** The integer code of v: round(s v - z), clamped to [-2^(bits-1), 2^(bits-1) - 1] when `clamp`. */
export function quantCode(v: number, s: number, z: number, bits: number, clamp: boolean): number {
  const q = roundHalfEven(f(f(s * v) - z));
  return clamp ? Math.min(2 ** (bits - 1) - 1, Math.max(-(2 ** (bits - 1)), q)) : q;
}

/** y[i] = (code(x[i]) + z) / s over [from, to); codes[i] = code + 2^(bits-1), saturated to 0..255 (NaN: 0). */
function fakeQuantRun(x: Buf, y: Buf | null, from: number, to: number, step: number, s: number, z: number, bits: number, clamp: boolean,
  codes?: Uint8Array | null): void {
  for (let i = from; i < to; i += step) {
    const q = quantCode(x[i]!, s, z, bits, clamp);
    if (y) y[i] = f(f(q + z) / s);
    if (codes) codes[i] = Number.isNaN(q) ? 0 : Math.min(255, Math.max(0, q + 2 ** (bits - 1)));
  }
}

/** [min, max] of x[from, from + len). */
export function rowRange(x: Buf, from: number, len: number): [number, number] {
  let m = Infinity;
  let M = -Infinity;
  for (let i = from; i < from + len; i++) {
    m = Math.min(m, x[i]!);
    M = Math.max(M, x[i]!);
  }
  return [m, M];
}

const CLIP_LANES = 16;

/** E / s^2 of one clip candidate over x[from, from + len): clamped codes, d = (q + z) - s x, float32 lanes i mod 16. */
function clipError(x: Buf, from: number, len: number, s: number, z: number, bits: number): number {
  const acc = new Float32Array(CLIP_LANES);
  for (let i = 0; i < len; i++) {
    const sx = f(s * x[from + i]!);
    const q = quantCode(x[from + i]!, s, z, bits, true);
    const d = f(f(q + z) - sx);
    acc[i % CLIP_LANES] = f(acc[i % CLIP_LANES]! + f(d * d));
  }
  let e = 0;
  for (let l = 0; l < CLIP_LANES; l++) e += acc[l]!;
  return e / (s * s);
}

export const refQuant: Pick<Backend, 'quantRowsFwd' | 'quantChannelLoopFwd' | 'quantGroupsFwd' | 'quantClipRanges'> = {
  quantClipRanges({ rows, cols, bits, steps, lowest, x, rowMin, rowMax }) {
    const low = f(lowest);
    for (let r = 0; r < rows; r++) {
      const [m, M] = rowRange(x, r * cols, cols);
      rowMin[r] = m;
      rowMax[r] = M;
      if (!Number.isFinite(m) || !Number.isFinite(M)) continue;
      let best = Infinity;
      for (let j = 0; j < steps; j++) {
        const a = steps === 1 ? 1 : f(1 - j * (1 - low) / (steps - 1));
        const lo = f(a * m);
        const hi = f(a * M);
        const { s, z } = qparams(lo, hi, bits);
        if (!(Math.abs(z) < 2 ** 24)) continue;
        const e = clipError(x, r * cols, cols, s, z, bits);
        if (e < best) {
          best = e;
          rowMin[r] = lo;
          rowMax[r] = hi;
        }
      }
    }
  },
  quantRowsFwd({ rows, cols, bits, clamp, x, y, rowMin, rowMax, codes }) {
    check(y !== null || !!codes, 'quantRowsFwd: y is null and no codes are asked for');
    for (let r = 0; r < rows; r++) {
      const [m, M] = rowRange(x, r * cols, cols);
      if (rowMin) rowMin[r] = m;
      if (rowMax) rowMax[r] = M;
      const { s, z } = qparams(m, M, bits);
      fakeQuantRun(x, y, r * cols, (r + 1) * cols, 1, s, z, bits, clamp, codes);
    }
  },
  quantChannelLoopFwd({ n, c, hw, bits, x, y }) {
    for (let ch = 0; ch < c; ch++) {
      for (let b = 0; b < n; b++) {
        const at = (b * c + ch) * hw;
        const [m, M] = rowRange(x, at, hw);
        const { s, z } = qparams(m, M, bits);
        fakeQuantRun(x, y, at, at + hw, 1, s, z, bits, false);
      }
    }
  },
  quantGroupsFwd({ outer, groups, inner, bits, clamp, mins, maxs, x, y, codes }) {
    check(y !== null || !!codes, 'quantGroupsFwd: y is null and no codes are asked for');
    for (let g = 0; g < groups; g++) {
      const { s, z } = qparams(mins[g]!, maxs[g]!, bits);
      for (let o = 0; o < outer; o++) {
        const at = (o * groups + g) * inner;
        fakeQuantRun(x, y, at, at + inner, 1, s, z, bits, clamp, codes);
      }
    }
  },
};
