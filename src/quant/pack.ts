/**
 * granq's compact quantized model (`.granq`: a safetensors file). Every quantized weight is stored as its integer
 * codes bit-packed at the rule's width (`<weight>.codes`, U8: code + 2^(width-1) as an unsigned `width`-bit field,
 * little-endian bit order, row-major), a float32 scale and an integer zero point per row (`<weight>.scale`,
 * `<weight>.zero_point`, I8/I16/I32, the smallest that holds the layer's); w = (code + zero_point) / scale gives the
 * student's fake-quantized weight bit for bit. Everything else (biases, BatchNorm, weights kept FP) is float32.
 * The metadata holds the format, the policy, the student's sidecar and the static activation ranges, so the file
 * alone rebuilds the student: loadPackedModel quantizes the architecture with the policy, loads the dequantized
 * weights and switches their weight quantizers off (min/max re-quantization of dequantized values is not always
 * the identity).
 * A layer whose row zero points are not integers below 2^24 in magnitude (a 1x1 kernel slice under `slice`: one value,
 * range 0) cannot be coded; it is stored as its fake-quantized float32 weight and listed as such.
 */
import { statSync } from 'node:fs';
import { qparams, quantCode } from '../backend/ref/quant.js';
import { GranqError } from '../errors.js';
import { readSafetensors, writeSafetensors, type StoredTensor } from '../io/safetensors.js';
import { parseSidecar, type ModelSidecar } from '../io/sidecar.js';
import { createModel } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/index.js';
import { QuantConv2d, QuantLinear } from './modules.js';
import { validatePolicy, type QuantPolicy } from './policy.js';
import { quantizeModel } from './quantize-model.js';
import { actRangeStates, loadActRangeStates, type EstimatorState } from './range-state.js';
import { signedWidth } from './bits.js';

export const PACK_FORMAT = 'granq-pack/1';
export const PACK_EXT = '.granq';

export interface PackedWeight {
  name: string;
  shape: number[];
  bits: number;
  /** Bits per stored code: the rule's k, or more when an unclamped rule (slice) rounds a code past the k-bit range. */
  width: number;
  rows: number;
  cols: number;
  /** 'codes': bit-packed; 'f32': kept as its fake-quantized float32 weight (see the file comment). */
  stored: 'codes' | 'f32';
}

export interface Packed {
  entries: Map<string, StoredTensor>;
  metadata: Record<string, string>;
  weights: PackedWeight[];
}

const quantizedLayers = (m: Module) =>
  m.namedModules().filter(([, x]) => x instanceof QuantConv2d || x instanceof QuantLinear) as [string, QuantConv2d | QuantLinear][];

/** Packs `n` codes, each `width` bits of (code + 2^(width-1)), into bytes (little-endian bit order). */
export function packBits(codes: Int32Array, width: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((codes.length * width) / 8));
  const off = 2 ** (width - 1);
  for (let i = 0; i < codes.length; i++) {
    const u = codes[i]! + off;
    for (let b = 0; b < width; b++) if ((u >> b) & 1) { const at = i * width + b; out[at >> 3]! |= 1 << (at & 7); }
  }
  return out;
}

export function unpackBits(bytes: Uint8Array, n: number, width: number): Int32Array {
  const out = new Int32Array(n);
  const off = 2 ** (width - 1);
  for (let i = 0; i < n; i++) {
    let u = 0;
    for (let b = 0; b < width; b++) { const at = i * width + b; u |= ((bytes[at >> 3]! >> (at & 7)) & 1) << b; }
    out[i] = u - off;
  }
  return out;
}

function zeroTensor(z: Int32Array): StoredTensor {
  const w = Math.max(1, ...Array.from(z, signedWidth));
  if (w <= 8) return { dtype: 'I8', shape: [z.length], data: Int8Array.from(z) };
  if (w <= 16) return { dtype: 'I16', shape: [z.length], data: Int16Array.from(z) };
  return { dtype: 'I32', shape: [z.length], data: z };
}

const dequant = (q: number, z: number, s: number) => Math.fround(Math.fround(q + z) / s);

/** The student's packed form; every coded weight is checked to dequantize to the fake-quant weight bit for bit. */
export function packModel(student: Module, sidecar: ModelSidecar, policy: QuantPolicy): Packed {
  if (typeof sidecar.raw['graph'] === 'string') throw new GranqError('granq pack: students of ONNX-graph teachers are not supported (their graph is not in the file); use granq export');
  const entries = new Map<string, StoredTensor>();
  const weights: PackedWeight[] = [];
  const coded = new Set<string>();
  for (const [path, m] of quantizedLayers(student)) {
    const name = `${path}.weight`;
    const w = m.weight;
    const [rows, cols] = m.wq.rowsOf(w.shape);
    const want = noGrad(() => m.wq.quantize(w)).data;
    const r = m.wq.rowRanges(w);
    const scale = new Float32Array(rows);
    const zero = new Int32Array(rows);
    const codes = new Int32Array(w.size);
    let codable = true;
    for (let i = 0; i < rows && codable; i++) {
      const { s, z } = qparams(r.mins[i]!, r.maxs[i]!, m.wq.bits);
      if (!(Math.abs(z) < 2 ** 24) || !Number.isFinite(s)) codable = false;
      scale[i] = s;
      zero[i] = z;
      for (let j = i * cols; j < (i + 1) * cols && codable; j++) {
        codes[j] = quantCode(w.data[j]!, s, z, m.wq.bits, m.wq.clamp);
        if (dequant(codes[j]!, z, s) !== want[j] && !(Number.isNaN(want[j]!))) codable = false;
      }
    }
    coded.add(name);
    if (!codable) {
      entries.set(name, { dtype: 'F32', shape: [...w.shape], data: Float32Array.from(want) });
      weights.push({ name, shape: [...w.shape], bits: m.wq.bits, width: 32, rows, cols, stored: 'f32' });
      continue;
    }
    const width = Math.max(m.wq.bits, ...Array.from(codes, signedWidth));
    entries.set(`${name}.codes`, { dtype: 'U8', shape: [Math.ceil((w.size * width) / 8)], data: packBits(codes, width) });
    entries.set(`${name}.scale`, { dtype: 'F32', shape: [rows], data: scale });
    entries.set(`${name}.zero_point`, zeroTensor(zero));
    weights.push({ name, shape: [...w.shape], bits: m.wq.bits, width, rows, cols, stored: 'codes' });
  }
  for (const [k, t] of student.stateDict()) if (!coded.has(k)) entries.set(k, { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(t.data) });
  const metadata = {
    format: PACK_FORMAT,
    policy: JSON.stringify(policy),
    sidecar: JSON.stringify(sidecar.raw),
    act_ranges: JSON.stringify(actRangeStates(student)),
    weights: JSON.stringify(weights),
    formula: 'w = (code + zero_point) / scale per row of the weight viewed as [rows, cols]; code = field - 2^(width-1)',
  };
  return { entries, metadata, weights };
}

export function writePackedModel(file: string, student: Module, sidecar: ModelSidecar, policy: QuantPolicy): { weights: PackedWeight[]; bytes: number } {
  const p = packModel(student, sidecar, policy);
  writeSafetensors(file, p.entries, p.metadata);
  return { weights: p.weights, bytes: statSync(file).size };
}

function metaJson<T>(file: string, meta: Record<string, string>, key: string): T {
  const v = meta[key];
  if (v === undefined) throw new GranqError(`${file}: not a granq pack file (no '${key}' in its metadata)`);
  try {
    return JSON.parse(v) as T;
  } catch (e) {
    throw new GranqError(`${file}: metadata '${key}' is not valid JSON (${(e as Error).message})`);
  }
}

/** Rebuilds the quantized student of a `.granq` file: same forward as the student it was packed from. */
export function loadPackedModel(file: string): { model: Module; sidecar: ModelSidecar; policy: QuantPolicy; weights: PackedWeight[] } {
  const f = readSafetensors(file);
  if (f.metadata['format'] !== PACK_FORMAT) throw new GranqError(`${file}: not a granq pack file (format ${JSON.stringify(f.metadata['format'] ?? null)}, expected ${PACK_FORMAT})`);
  const policy = validatePolicy(metaJson(file, f.metadata, 'policy'));
  const sidecar = parseSidecar(metaJson(file, f.metadata, 'sidecar'), file);
  const weights = metaJson<PackedWeight[]>(file, f.metadata, 'weights');
  const { student } = quantizeModel(createModel(sidecar.architecture, sidecar.numClasses), policy, { warn: () => {} });
  const tensor = (key: string): StoredTensor => {
    const t = f.tensors.get(key);
    if (!t) throw new GranqError(`${file}: tensor '${key}' is missing`);
    return t;
  };
  const state = new Map<string, Tensor>();
  const packedNames = new Set<string>();
  for (const pw of weights) {
    packedNames.add(pw.name);
    const n = pw.shape.reduce((a, b) => a * b, 1);
    if (pw.stored === 'f32') {
      state.set(pw.name, new Tensor(Float32Array.from(tensor(pw.name).data as Float32Array), pw.shape));
      continue;
    }
    const bytes = tensor(`${pw.name}.codes`);
    const s = tensor(`${pw.name}.scale`).data as Float32Array;
    const z = tensor(`${pw.name}.zero_point`).data as Int8Array | Int16Array | Int32Array;
    if (bytes.dtype !== 'U8' || bytes.data.length !== Math.ceil((n * pw.width) / 8) || s.length !== pw.rows || z.length !== pw.rows || pw.rows * pw.cols !== n) {
      throw new GranqError(`${file}: ${pw.name}: stored codes, scales or zero points do not fit shape [${pw.shape.join(',')}] at ${pw.width} bits`);
    }
    const q = unpackBits(bytes.data as Uint8Array, n, pw.width);
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) { const r = Math.floor(i / pw.cols); w[i] = dequant(q[i]!, z[r]!, s[r]!); }
    state.set(pw.name, new Tensor(w, pw.shape));
  }
  for (const [k] of student.stateDict()) if (!packedNames.has(k)) state.set(k, new Tensor(Float32Array.from(tensor(k).data as Float32Array), tensor(k).shape));
  try {
    student.loadStateDict(state);
  } catch (e) {
    if (e instanceof GranqError) throw new GranqError(`${file}: ${e.message}`);
    throw e;
  }
  // The weights are the quantized values already.
  for (const [path, m] of quantizedLayers(student)) if (packedNames.has(`${path}.weight`)) m.wq.quantizing = false;
  loadActRangeStates(student, metaJson<Record<string, EstimatorState>>(file, f.metadata, 'act_ranges'), file);
  student.eval();
  return { model: student, sidecar, policy, weights };
}
