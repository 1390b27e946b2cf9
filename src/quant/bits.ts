/**
 * What a quantized model costs to store, honestly: every quantized weight as a k-bit code, plus per row of its rule
 * (slice: an (out, in) kernel slice; channel: an output channel; tensor: the whole weight) a scale and a zero point at
 * their stored width; every other value of the model (biases, BatchNorm, static activation ranges, weights kept FP)
 * at 32 bits. Effective bits per weight = (n·k + rows·(scale bits + zero-point bits)) / n.
 *
 * Storage forms:
 * - `f32`: float32 scale and float32 zero point per row, as `granq export` writes them (64 bits per row): slice at
 *   k=3 on a 3x3 conv is 3 + 64/9 ≈ 10.1 bits per weight; a 1x1 slice is k + 64 bits for one weight.
 * - `int-zp`: float32 scale, the zero point as a signed integer at the layer's smallest width that holds all of its
 *   rows' zero points. Exact: our zero point is an integer by construction (round(s·min) + 2^(k-1)), so dequantizing
 *   gives the same weights bit for bit.
 * No float16 form is offered: a row's scale is (2^k - 1)/max(range, 1e-8), which exceeds float16's 65504 for any
 * row narrower than about 1e-4 (all-zero output channels, and every 1x1 slice under `slice`), so it would not
 * round-trip.
 */
import type { Module } from '../nn/module.js';
import { qparams } from '../backend/ref/quant.js';
import type { Ranges } from './estimators.js';
import { QuantConv2d, QuantLinear } from './modules.js';
import { Quantizer, type WeightKind } from './quantizer.js';

export const STORAGES = ['f32', 'int-zp'] as const;
export type Storage = (typeof STORAGES)[number];
export const STORAGE_NOTES: Record<Storage, string> = {
  'f32': 'float32 scale + float32 zero point per row (as granq export writes them)',
  'int-zp': 'float32 scale + integer zero point at the layer\'s smallest signed width (exact: same weights)',
};

export interface WeightBits {
  path: string;
  rule: WeightKind;
  bits: number;
  shape: number[];
  weights: number;
  rows: number;
  scaleBits: number;
  zeroBits: number;
  totalBits: number;
  bitsPerWeight: number;
}

export interface ModelBits {
  storage: Storage;
  layers: WeightBits[];
  quantizedWeights: number;
  /** Values stored at 32 bits: everything that is not a quantized weight. */
  otherValues: number;
  totalBits: number;
  bytes: number;
  /** The same model in float32 (its parameters and buffers, without the quantizers' own state). */
  fp32Bytes: number;
  /** Over the quantized weights only. */
  bitsPerWeight: number;
  /** Over every stored value of the FP model. */
  bitsPerValue: number;
}

/** The width of v as a two's-complement integer (0 and -1: 1 bit). */
export function signedWidth(v: number): number {
  let w = 1;
  while (v < -(2 ** (w - 1)) || v > 2 ** (w - 1) - 1) w++;
  return w;
}

/** Each row's zero point, as the quantizer computes it from its ranges. */
export function zeroPoints(r: Ranges, bits: number): number[] {
  return Array.from(r.mins, (m, i) => qparams(m, r.maxs[i]!, bits).z);
}

export function weightBits(path: string, rule: WeightKind, bits: number, shape: readonly number[], rows: number, zeros: readonly number[], storage: Storage): WeightBits {
  const weights = shape.reduce((a, b) => a * b, 1);
  const scaleBits = 32;
  const zeroBits = storage === 'f32' ? 32 : Math.max(1, ...zeros.map(signedWidth));
  const totalBits = weights * bits + rows * (scaleBits + zeroBits);
  return { path, rule, bits, shape: [...shape], weights, rows, scaleBits, zeroBits, totalBits, bitsPerWeight: totalBits / weights };
}

function quantizedWeights(model: Module): { path: string; m: QuantConv2d | QuantLinear }[] {
  return model.namedModules().filter(([, m]) => m instanceof QuantConv2d || m instanceof QuantLinear)
    .map(([path, m]) => ({ path, m: m as QuantConv2d | QuantLinear }));
}

export function modelBits(model: Module, storage: Storage): ModelBits {
  const layers = quantizedWeights(model).map(({ path, m }) => {
    const [rows] = m.wq.rowsOf(m.weight.shape);
    return weightBits(`${path}.weight`, m.wq.kind, m.wq.bits, m.weight.shape, rows, zeroPoints(m.wq.rowRanges(m.weight), m.wq.bits), storage);
  });
  const quantized = new Set(layers.map((l) => l.path));
  const quantizerPaths = model.namedModules().filter(([, m]) => m instanceof Quantizer).map(([p]) => `${p}.`);
  let otherValues = 0;
  let fpValues = 0;
  for (const [key, t] of model.stateDict()) {
    const ofQuantizer = quantizerPaths.some((p) => key.startsWith(p));
    if (!ofQuantizer) fpValues += t.size;
    if (!quantized.has(key)) otherValues += t.size;
  }
  const qBits = layers.reduce((a, l) => a + l.totalBits, 0);
  const quantizedWeightCount = layers.reduce((a, l) => a + l.weights, 0);
  const totalBits = qBits + 32 * otherValues;
  return {
    storage, layers, quantizedWeights: quantizedWeightCount, otherValues, totalBits, bytes: Math.ceil(totalBits / 8), fp32Bytes: 4 * fpValues,
    bitsPerWeight: quantizedWeightCount ? qBits / quantizedWeightCount : 0, bitsPerValue: totalBits / fpValues,
  };
}

/** The bits of each storage form as an aligned table (one line per quantized weight, then the model). */
export function formatBits(all: readonly ModelBits[]): string {
  const first = all[0]!;
  const head = ['weight', 'rule', 'shape', 'rows', ...all.map((b) => `bits/w ${b.storage}`)];
  const body = first.layers.map((l, i) => [l.path, `${l.rule} W${l.bits}`, `[${l.shape.join(',')}]`, String(l.rows), ...all.map((b) => b.layers[i]!.bitsPerWeight.toFixed(2))]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i < 3 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd();
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  return [line(head), ...body.map(line), ...all.map((b) =>
    `${b.storage}: ${b.bitsPerWeight.toFixed(2)} bits per quantized weight (${b.quantizedWeights} weights), ${b.bitsPerValue.toFixed(2)} bits per value of the model; ` +
    `${kb(b.bytes)} against ${kb(b.fp32Bytes)} in FP32 (${(b.fp32Bytes / b.bytes).toFixed(2)}x smaller; ${STORAGE_NOTES[b.storage]})`)].join('\n');
}

/** The model-level figures of every storage form and the per-layer bits, as result.json keeps them. */
export function bitsRecord(model: Module): Record<string, unknown> {
  const all = STORAGES.map((s) => modelBits(model, s));
  return {
    ...Object.fromEntries(all.map((b) => [b.storage, {
      bits_per_weight: Number(b.bitsPerWeight.toFixed(4)), bits_per_value: Number(b.bitsPerValue.toFixed(4)), bytes: b.bytes, fp32_bytes: b.fp32Bytes,
      quantized_weights: b.quantizedWeights, other_values: b.otherValues,
    }])),
    layers: all[0]!.layers.map((l, i) => ({ path: l.path, rule: l.rule, bits: l.bits, shape: l.shape, rows: l.rows,
      ...Object.fromEntries(all.map((b) => [`bits_per_weight_${b.storage}`, Number(b.layers[i]!.bitsPerWeight.toFixed(4))])), zero_point_bits: all[1]!.layers[i]!.zeroBits })),
  };
}
