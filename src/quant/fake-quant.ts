/**
 * Fake quantization as autograd primitives, one per kernel kind. Forward calls the backend kernel (asymmetric
 * uniform quantize-dequantize, see backend.ts); backward is the identity straight-through estimator of the released
 * code: the gradient passes unchanged, with no clipping mask, and ranges / scales get none (they are attrs).
 */
import { defineOp } from '../autograd/index.js';
import { backend } from '../backend/index.js';
import { check } from '../errors.js';
import { qparams, qscale, roundHalfEven } from '../backend/ref/quant.js';
import { allocBytes, Tensor } from '../tensor/tensor.js';

declare module '../autograd/tape.js' {
  interface OpAttrs {
    fake_quant_rows: RowsAttrs;
    fake_quant_channel_loop: ChannelLoopAttrs;
    fake_quant_groups: GroupsAttrs;
    fake_quant_learned: LearnedAttrs;
  }
}

export interface RowsAttrs { rows: number; cols: number; bits: number; clamp: boolean }
export interface ChannelLoopAttrs { n: number; c: number; hw: number; bits: number }
export interface LearnedAttrs { rows: number; cols: number; bits: number }
export interface GroupsAttrs { outer: number; groups: number; inner: number; bits: number; clamp: boolean; mins: Float32Array; maxs: Float32Array }

/** The one bit-width range of every quantizer, policy, CLI flag and kernel (native/addon.cc checks the same 2..8). */
export const MIN_BITS = 2;
export const MAX_BITS = 8;
export const isBitWidth = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= MIN_BITS && v <= MAX_BITS;

function checkBits(op: string, bits: number): void {
  check(isBitWidth(bits), () => `${op}: bits must be an integer in ${MIN_BITS}..${MAX_BITS}, got ${bits}`);
}
function checkSize(op: string, x: Tensor, want: number, what: string): void {
  check(x.size === want, () => `${op}: ${what} = ${want} elements, but the tensor has ${x.size}`);
}

/** The identity STE, shared by every fake-quant op. */
const ste = ({ gy }: { gy: Float32Array }) => [gy];

export const fakeQuantRowsOp = defineOp<'fake_quant_rows', [Tensor], null>({
  name: 'fake_quant_rows',
  forward([x], a) {
    checkBits('fakeQuantRows', a.bits);
    checkSize('fakeQuantRows', x, a.rows * a.cols, `rows x cols ${a.rows}x${a.cols}`);
    const out = Tensor.empty(x.shape);
    backend().quantRowsFwd({ ...a, x: x.data, y: out.data, rowMin: null, rowMax: null });
    return { out, saved: null };
  },
  backward: ste,
});

export const fakeQuantChannelLoopOp = defineOp<'fake_quant_channel_loop', [Tensor], null>({
  name: 'fake_quant_channel_loop',
  forward([x], a) {
    checkBits('fakeQuantChannelLoop', a.bits);
    checkSize('fakeQuantChannelLoop', x, a.n * a.c * a.hw, `n x c x hw ${a.n}x${a.c}x${a.hw}`);
    const out = Tensor.empty(x.shape);
    backend().quantChannelLoopFwd({ ...a, x: x.data, y: out.data });
    return { out, saved: null };
  },
  backward: ste,
});

export const fakeQuantGroupsOp = defineOp<'fake_quant_groups', [Tensor], null>({
  name: 'fake_quant_groups',
  forward([x], a) {
    checkBits('fakeQuantGroups', a.bits);
    checkSize('fakeQuantGroups', x, a.outer * a.groups * a.inner, `outer x groups x inner ${a.outer}x${a.groups}x${a.inner}`);
    check(a.mins.length === a.groups && a.maxs.length === a.groups,
      () => `fakeQuantGroups: expected ${a.groups} ranges, got ${a.mins.length} mins and ${a.maxs.length} maxs`);
    const out = Tensor.empty(x.shape);
    backend().quantGroupsFwd({ ...a, x: x.data, y: out.data });
    return { out, saved: null };
  },
  backward: ste,
});

/**
 * Fake quantization of x [rows, cols] with trained per-row ranges [lo, hi] (inputs, not attrs): the forward is
 * fakeQuantGroups' (clamped codes) with those ranges, bit for bit. The backward is LSQ's (Esser et al. 2020) in the
 * asymmetric form of LSQ+ (Bhalgat et al. 2020), with step Δ = (hi − lo) / n, n = 2^bits − 1, and t = s x − z the
 * unrounded code: x gets the gradient where its code is inside the range and none where it is clipped; per element,
 * dy/dΔ = round(t) − t inside, n above the range, 0 below, and dy/dlo (Δ fixed) = 0 inside, 1 outside; so
 * dL/dhi = g Σ gy dy/dΔ / n and dL/dlo = g Σ gy (dy/dlo − dy/dΔ / n), with LSQ's gradient scale
 * g = 1 / sqrt(cols (2^(bits−1) − 1)).
 */
export const fakeQuantLearnedOp = defineOp<'fake_quant_learned', [Tensor, Tensor, Tensor], null>({
  name: 'fake_quant_learned',
  forward([x, lo, hi], a) {
    checkBits('fakeQuantLearned', a.bits);
    checkSize('fakeQuantLearned', x, a.rows * a.cols, `rows x cols ${a.rows}x${a.cols}`);
    checkSize('fakeQuantLearned', lo, a.rows, 'rows (lo)');
    checkSize('fakeQuantLearned', hi, a.rows, 'rows (hi)');
    const out = Tensor.empty(x.shape);
    backend().quantGroupsFwd({ outer: 1, groups: a.rows, inner: a.cols, bits: a.bits, clamp: true, mins: lo.data, maxs: hi.data, x: x.data, y: out.data });
    return { out, saved: null };
  },
  backward({ gy, inputs: [x, lo, hi], attrs: a, needs }) {
    const levels = 2 ** a.bits - 1;
    const qmin = -(2 ** (a.bits - 1));
    const qmax = 2 ** (a.bits - 1) - 1;
    const g = 1 / Math.sqrt(a.cols * qmax);
    const gx = needs[0] ? Tensor.empty(x.shape) : null;
    const glo = Tensor.zeros([a.rows]);
    const ghi = Tensor.zeros([a.rows]);
    for (let r = 0; r < a.rows; r++) {
      const { s, z } = qparams(lo.data[r]!, hi.data[r]!, a.bits);
      let gStep = 0;
      let gOut = 0;
      for (let i = r * a.cols; i < (r + 1) * a.cols; i++) {
        const t = Math.fround(Math.fround(s * x.data[i]!) - z);
        const q = roundHalfEven(t);
        const gi = gy[i]!;
        if (q < qmin) {
          gOut += gi;
          if (gx) gx.data[i] = 0;
        } else if (q > qmax) {
          gOut += gi;
          gStep += gi * levels;
          if (gx) gx.data[i] = 0;
        } else {
          gStep += gi * (q - t);
          if (gx) gx.data[i] = gi;
        }
      }
      ghi.data[r] = (g * gStep) / levels;
      glo.data[r] = g * (gOut - gStep / levels);
    }
    return [gx ? gx.data : null, glo.data, ghi.data];
  },
});

/** Ops whose backward is the identity STE (the autograd meta-test checks them with a dedicated STE test). */
export const STE_OP_NAMES = ['fake_quant_rows', 'fake_quant_channel_loop', 'fake_quant_groups'] as const;

/** [rows, cols] of the released row view: (sample, channel) x H·W for 4-D, rows of a 2-D tensor otherwise. */
export function rowView(shape: readonly number[]): [number, number] {
  check(shape.length >= 2, () => `row view: expected a tensor of rank >= 2, got rank ${shape.length}`);
  if (shape.length === 2) return [shape[0]!, shape[1]!];
  const rows = shape[0]! * shape[1]!;
  return [rows, shape.slice(2).reduce((p, s) => p * s, 1)];
}

/** Per-row dynamic fake quantization (GranQ); `clamp` adds GDFQ's clamp to the signed code range. */
export function fakeQuantRows(x: Tensor, bits: number, view: [number, number] = rowView(x.shape), clamp = false): Tensor {
  return fakeQuantRowsOp([x], { rows: view[0], cols: view[1], bits, clamp });
}

/** The conventional per-channel loop over [n, c, hw]: same values as fakeQuantRows, one channel at a time. */
export function fakeQuantChannelLoop(x: Tensor, bits: number): Tensor {
  const [rows, hw] = rowView(x.shape);
  const n = x.shape[0]!;
  return fakeQuantChannelLoopOp([x], { n, c: rows / n, hw, bits });
}

/** x viewed as [rows, cols], each row fake-quantized with its trained range [lo[r], hi[r]] (fakeQuantLearnedOp). */
export function fakeQuantLearned(x: Tensor, lo: Tensor, hi: Tensor, bits: number, view: [number, number]): Tensor {
  return fakeQuantLearnedOp([x, lo, hi], { rows: view[0], cols: view[1], bits });
}

/** Fixed ranges per group of x viewed as [outer, groups, inner] (per-tensor: 1 group; per-channel: groups = C). */
export function fakeQuantGroups(x: Tensor, bits: number, view: [number, number, number], mins: Float32Array, maxs: Float32Array, clamp = true): Tensor {
  return fakeQuantGroupsOp([x], { outer: view[0], groups: view[1], inner: view[2], bits, clamp, mins, maxs });
}

/**
 * An activation's integer form for integer inference: x [N, C, ...] as unsigned codes (code = q + 2^(bits-1)) with
 * value = (code + base[n, c]) / scale[n, c], base = round(s m) = z - 2^(bits-1); `y` is the fake-quant output the
 * codes stand for (bit for bit: the same kernel call writes both). `alongChannels`: the scale changes along C.
 */
export interface ActCodes {
  y: Tensor;
  codes: Uint8Array;
  base: Float64Array;
  scale: Float32Array;
  alongChannels: boolean;
}

/**
 * Buffers for an ActCodes' y and codes (x.size elements each) that the caller owns and may reuse; absent: fresh ones.
 * codesOnly: the codes alone are written (no division per element); y's values are left as they were, for a caller
 * that knows nothing reads them (integer inference, where only integer convs consume the output).
 */
export interface CodesOut {
  y: Float32Array;
  codes: Uint8Array;
  codesOnly?: boolean;
}

function codesOut(x: Tensor, out: CodesOut | undefined, what: string): { y: Tensor; codes: Uint8Array } {
  if (!out) return { y: Tensor.empty(x.shape), codes: allocBytes(x.size) };
  check(out.y.length === x.size && out.codes.length === x.size, () => `${what}: output buffers of ${out.y.length} and ${out.codes.length} elements for an input of ${x.size}`);
  return { y: new Tensor(out.y, x.shape), codes: out.codes };
}

/**
 * base and scale per (sample, channel) from the ranges (one per tensor, per channel or per (sample, channel) row)
 * (n, c) has range n perN + c perC: s = qparams' s, base = z − 2^(bits−1) = round(s m), once per range. (Strides, not
 * a callback: a callback per (n, c) made V8 deoptimize this loop, 20x slower.)
 */
function perSampleChannel(shape: readonly number[], bits: number, mins: ArrayLike<number>, maxs: ArrayLike<number>, perN: number, perC: number) {
  const n = shape[0]!, c = shape.length >= 2 ? shape[1]! : 1;
  const levels = 2 ** bits - 1;
  const rs = new Float32Array(mins.length);
  const rb = new Float64Array(mins.length);
  for (let r = 0; r < mins.length; r++) {
    rs[r] = qscale(mins[r]!, maxs[r]!, levels);
    rb[r] = roundHalfEven(Math.fround(rs[r]! * mins[r]!));
  }
  const base = new Float64Array(n * c);
  const scale = new Float32Array(n * c);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const r = b * perN + ch * perC;
      scale[b * c + ch] = rs[r]!;
      base[b * c + ch] = rb[r]!;
    }
  }
  return { base, scale };
}

/** fakeQuantRows with its codes (granq rows: one range per (sample, channel) row; per sample for a 2-D x). */
export function fakeQuantRowsCodes(x: Tensor, bits: number, clamp = false, out?: CodesOut): ActCodes {
  checkBits('fakeQuantRowsCodes', bits);
  check(clamp || bits < MAX_BITS, () => `integer activations: the unclamped rows quantizer at ${bits} bits can reach the code 2^${bits}, beyond 8 bits; use at most ${MAX_BITS - 1} bits`);
  const [rows, cols] = rowView(x.shape);
  const { y, codes } = codesOut(x, out, 'fakeQuantRowsCodes');
  const rowMin = new Float32Array(rows);
  const rowMax = new Float32Array(rows);
  backend().quantRowsFwd({ rows, cols, bits, clamp, x: x.data, y: out?.codesOnly ? null : y.data, rowMin, rowMax, codes });
  const c = x.shape.length >= 2 ? x.shape[1]! : 1;
  const rank2 = x.shape.length === 2;
  return { y, codes, alongChannels: !rank2, ...perSampleChannel(x.shape, bits, rowMin, rowMax, rank2 ? 1 : c, rank2 ? 0 : 1) };
}

/** fakeQuantGroups with its codes, for x [N, C, ...] viewed as [1, 1, size] (per tensor) or [N, C, h w] (per channel). */
export function fakeQuantGroupsCodes(x: Tensor, bits: number, view: [number, number, number], mins: Float32Array, maxs: Float32Array, clamp = true, out?: CodesOut): ActCodes {
  checkBits('fakeQuantGroupsCodes', bits);
  const perTensor = view[0] === 1 && view[1] === 1;
  check(perTensor || (view[0] === x.shape[0] && view[1] === x.shape[1]), () => `fakeQuantGroupsCodes: view ${view.join('x')} is neither per tensor nor [N, C, h w] of ${x.shape.join('x')}`);
  check(mins.length === view[1] && maxs.length === view[1], () => `fakeQuantGroupsCodes: expected ${view[1]} ranges, got ${mins.length}`);
  const { y, codes } = codesOut(x, out, 'fakeQuantGroupsCodes');
  backend().quantGroupsFwd({ outer: view[0], groups: view[1], inner: view[2], bits, clamp, mins, maxs, x: x.data, y: out?.codesOnly ? null : y.data, codes });
  return { y, codes, alongChannels: !perTensor, ...perSampleChannel(x.shape, bits, mins, maxs, 0, perTensor ? 0 : 1) };
}
