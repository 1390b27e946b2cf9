/**
 * Fake quantization as autograd primitives, one per kernel kind. Forward calls the backend kernel (asymmetric
 * uniform quantize-dequantize, see backend.ts); backward is the identity straight-through estimator of the released
 * code: the gradient passes unchanged, with no clipping mask, and ranges / scales get none (they are attrs).
 */
import { defineOp } from '../autograd/index.js';
import { backend } from '../backend/index.js';
import { check } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

declare module '../autograd/tape.js' {
  interface OpAttrs {
    fake_quant_rows: RowsAttrs;
    fake_quant_channel_loop: ChannelLoopAttrs;
    fake_quant_groups: GroupsAttrs;
  }
}

export interface RowsAttrs { rows: number; cols: number; bits: number; clamp: boolean }
export interface ChannelLoopAttrs { n: number; c: number; hw: number; bits: number }
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

/** Fixed ranges per group of x viewed as [outer, groups, inner] (per-tensor: 1 group; per-channel: groups = C). */
export function fakeQuantGroups(x: Tensor, bits: number, view: [number, number, number], mins: Float32Array, maxs: Float32Array, clamp = true): Tensor {
  return fakeQuantGroupsOp([x], { outer: view[0], groups: view[1], inner: view[2], bits, clamp, mins, maxs });
}
