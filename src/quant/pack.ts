/**
 * granq's compact quantized model (`.granq`: a safetensors file). Every quantized weight is stored as its integer
 * codes bit-packed at the rule's width (code + 2^(width-1) as an unsigned `width`-bit field, little-endian bit order,
 * row-major), a float32 scale and an integer zero point per row; w = (code + zero_point) / scale gives the student's
 * fake-quantized weight bit for bit. Everything else (biases, BatchNorm, weights kept FP) is float32. All of it sits
 * in four tensors (packModel); the policy, the student's sidecar, the static activation ranges and where each value
 * is are one deflated JSON index in the metadata, so the file alone rebuilds the student: loadPackedModel quantizes
 * the architecture with the policy, loads the dequantized weights and switches their weight quantizers off (min/max
 * re-quantization of dequantized values is not always the identity).
 * A layer whose row zero points are not integers below 2^24 in magnitude (a 1x1 kernel slice under `slice`: one value,
 * range 0) cannot be coded; it is stored as its fake-quantized float32 weight and listed as such.
 */
import { statSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
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
import type { RowCodes } from './quantizer.js';

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

const dequant = (q: number, z: number, s: number) => Math.fround(Math.fround(q + z) / s);

/** Where a weight's parts sit in the file's blobs (byte offset in `codes`, row offset in `scales`/`zero_points`). */
interface WeightIndex extends PackedWeight { codeOffset: number; rowOffset: number }
/** Where a float32 value sits in `floats`. */
interface FloatIndex { name: string; shape: number[]; offset: number }
/** Everything the file says about itself, deflated into the metadata (names compress well; they add up otherwise). */
interface PackIndex { policy: QuantPolicy; sidecar: Record<string, unknown>; actRanges: Record<string, EstimatorState>; weights: WeightIndex[]; floats: FloatIndex[] }

/**
 * The student's packed form. Four tensors: `codes` (U8, each coded weight's bit-packed fields from a byte boundary),
 * `scales` (F32, every row), `zero_points` (I8, or I32 when one does not fit), `floats` (F32, every other value);
 * the metadata's `index` (deflated JSON, base64) says where each weight and value is. Every coded weight is checked
 * to dequantize to the fake-quant weight bit for bit.
 */
export function packModel(student: Module, sidecar: ModelSidecar, policy: QuantPolicy): Packed {
  if (typeof sidecar.raw['graph'] === 'string') throw new GranqError('granq pack: students of ONNX-graph teachers are not supported (their graph is not in the file); use granq export');
  const weights: WeightIndex[] = [];
  const floats: FloatIndex[] = [];
  const codeParts: Uint8Array[] = [];
  const scaleParts: Float32Array[] = [];
  const zeroParts: Int32Array[] = [];
  const floatParts: Float32Array[] = [];
  let codeBytes = 0;
  let rowCount = 0;
  let floatCount = 0;
  const addFloat = (name: string, shape: number[], data: Float32Array) => {
    floats.push({ name, shape, offset: floatCount });
    floatParts.push(data);
    floatCount += data.length;
  };
  const coded = new Set<string>();
  for (const [path, m] of quantizedLayers(student)) {
    const name = `${path}.weight`;
    const w = m.weight;
    const [rows, cols] = m.wq.rowsOf(w.shape);
    const want = noGrad(() => m.wq.quantize(w)).data;
    const c = m.wq.codes(w);
    const scale = c.scale;
    const zero = Int32Array.from(c.zero);
    const codes = c.codes;
    let codable = true;
    for (let i = 0; i < rows && codable; i++) {
      if (!(Math.abs(c.zero[i]!) < 2 ** 24) || !Number.isFinite(scale[i]!)) codable = false;
      for (let j = i * cols; j < (i + 1) * cols && codable; j++) {
        if (dequant(codes[j]!, zero[i]!, scale[i]!) !== want[j] && !Number.isNaN(want[j]!)) codable = false;
      }
    }
    coded.add(name);
    const base = { name, shape: [...w.shape], bits: m.wq.bits, rows, cols };
    if (!codable) {
      addFloat(name, [...w.shape], Float32Array.from(want));
      weights.push({ ...base, width: 32, stored: 'f32', codeOffset: -1, rowOffset: -1 });
      continue;
    }
    const width = Math.max(m.wq.bits, ...Array.from(codes, signedWidth));
    const bytes = packBits(codes, width);
    weights.push({ ...base, width, stored: 'codes', codeOffset: codeBytes, rowOffset: rowCount });
    codeParts.push(bytes);
    scaleParts.push(scale);
    zeroParts.push(zero);
    codeBytes += bytes.length;
    rowCount += rows;
  }
  for (const [k, t] of student.stateDict()) if (!coded.has(k)) addFloat(k, [...t.shape], Float32Array.from(t.data));
  const cat = <T extends Uint8Array | Float32Array | Int32Array>(parts: T[], make: (n: number) => T): T => {
    const out = make(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const zeros = cat(zeroParts, (n) => new Int32Array(n));
  const entries = new Map<string, StoredTensor>([
    ['codes', { dtype: 'U8', shape: [codeBytes], data: cat(codeParts, (n) => new Uint8Array(n)) }],
    ['scales', { dtype: 'F32', shape: [rowCount], data: cat(scaleParts, (n) => new Float32Array(n)) }],
    ['zero_points', zeros.every((z) => z >= -128 && z <= 127) ? { dtype: 'I8', shape: [rowCount], data: Int8Array.from(zeros) } : { dtype: 'I32', shape: [rowCount], data: zeros }],
    ['floats', { dtype: 'F32', shape: [floatCount], data: cat(floatParts, (n) => new Float32Array(n)) }],
  ]);
  const index: PackIndex = { policy, sidecar: sidecar.raw, actRanges: actRangeStates(student), weights, floats };
  const metadata = {
    format: PACK_FORMAT,
    index: deflateRawSync(Buffer.from(JSON.stringify(index))).toString('base64'),
    formula: 'w = (code + zero_point) / scale per row; code = field - 2^(width-1); index = base64(deflate-raw(JSON))',
  };
  return { entries, metadata, weights: weights.map(({ codeOffset: _c, rowOffset: _r, ...w }) => w) };
}

export function writePackedModel(file: string, student: Module, sidecar: ModelSidecar, policy: QuantPolicy): { weights: PackedWeight[]; bytes: number } {
  const p = packModel(student, sidecar, policy);
  writeSafetensors(file, p.entries, p.metadata);
  return { weights: p.weights, bytes: statSync(file).size };
}

function readIndex(file: string, meta: Record<string, string>): PackIndex {
  try {
    return JSON.parse(inflateRawSync(Buffer.from(meta['index'] ?? '', 'base64')).toString('utf8')) as PackIndex;
  } catch (e) {
    throw new GranqError(`${file}: metadata 'index' is not a deflated JSON index (${(e as Error).message})`);
  }
}

/** Rebuilds the quantized student of a `.granq` file: same forward as the student it was packed from. */
export function loadPackedModel(file: string): { model: Module; sidecar: ModelSidecar; policy: QuantPolicy; weights: PackedWeight[] } {
  const f = readSafetensors(file);
  if (f.metadata['format'] !== PACK_FORMAT) throw new GranqError(`${file}: not a granq pack file (format ${JSON.stringify(f.metadata['format'] ?? null)}, expected ${PACK_FORMAT})`);
  const index = readIndex(file, f.metadata);
  const policy = validatePolicy(index.policy);
  const sidecar = parseSidecar(index.sidecar, file);
  const { student } = quantizeModel(createModel(sidecar.architecture, sidecar.numClasses), policy, { warn: () => {} });
  const blob = (key: string): StoredTensor => {
    const t = f.tensors.get(key);
    if (!t) throw new GranqError(`${file}: tensor '${key}' is missing`);
    return t;
  };
  const codes = blob('codes').data as Uint8Array;
  const scales = blob('scales').data as Float32Array;
  const zeros = blob('zero_points').data as Int8Array | Int32Array;
  const floatData = blob('floats').data as Float32Array;
  const state = new Map<string, Tensor>();
  const stored = new Map<string, RowCodes>();
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  for (const v of index.floats) {
    const n = size(v.shape);
    if (v.offset < 0 || v.offset + n > floatData.length) throw new GranqError(`${file}: ${v.name}: outside the floats tensor`);
    state.set(v.name, new Tensor(floatData.slice(v.offset, v.offset + n), v.shape));
  }
  for (const pw of index.weights) {
    if (pw.stored === 'f32') continue;
    const n = size(pw.shape);
    const nBytes = Math.ceil((n * pw.width) / 8);
    if (pw.rows * pw.cols !== n || pw.codeOffset + nBytes > codes.length || pw.rowOffset + pw.rows > scales.length || scales.length !== zeros.length) {
      throw new GranqError(`${file}: ${pw.name}: stored codes, scales or zero points do not fit shape [${pw.shape.join(',')}] at ${pw.width} bits`);
    }
    const q = unpackBits(codes.subarray(pw.codeOffset, pw.codeOffset + nBytes), n, pw.width);
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) { const r = pw.rowOffset + Math.floor(i / pw.cols); w[i] = dequant(q[i]!, zeros[r]!, scales[r]!); }
    state.set(pw.name, new Tensor(w, pw.shape));
    stored.set(pw.name, {
      rows: pw.rows, cols: pw.cols, codes: q,
      scale: scales.slice(pw.rowOffset, pw.rowOffset + pw.rows), zero: Float64Array.from(zeros.subarray(pw.rowOffset, pw.rowOffset + pw.rows)),
    });
  }
  try {
    student.loadStateDict(state);
  } catch (e) {
    if (e instanceof GranqError) throw new GranqError(`${file}: ${e.message}`);
    throw e;
  }
  // The weights are the quantized values already.
  const packedNames = new Set(index.weights.map((w) => w.name));
  for (const [path, m] of quantizedLayers(student)) {
    if (!packedNames.has(`${path}.weight`)) continue;
    m.wq.quantizing = false;
    m.wq.stored = stored.get(`${path}.weight`) ?? null;
  }
  loadActRangeStates(student, index.actRanges, file);
  student.eval();
  return { model: student, sidecar, policy, weights: index.weights.map(({ codeOffset: _c, rowOffset: _r, ...w }) => w) };
}
