/**
 * safetensors reader and writer: an 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then the data buffer.
 * Float dtypes (F64, F32, F16, BF16) are decoded to Float32Array; integer dtypes stay integers in their own typed
 * array, so a label tensor is never silently turned into floats (toTensor does that only when asked).
 */
import fs from 'node:fs';
import os from 'node:os';
import { basename } from 'node:path';
import { check, GranqError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { numel, shapeStr } from '../tensor/shape.js';
import { writeFileAtomic } from './atomic.js';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from './half.js';

/** The typed array each dtype is held in after reading (and expected in when writing). */
export interface DTypeData {
  F64: Float32Array;
  F32: Float32Array;
  F16: Float32Array;
  BF16: Float32Array;
  I64: BigInt64Array;
  U64: BigUint64Array;
  I32: Int32Array;
  U32: Uint32Array;
  I16: Int16Array;
  U16: Uint16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}
export type DType = keyof DTypeData;
export type FloatDType = 'F64' | 'F32' | 'F16' | 'BF16';

/** One tensor as stored: its dtype on disk, shape, and the decoded data (floats always as Float32Array). */
export type StoredTensor = { [D in DType]: { dtype: D; shape: number[]; data: DTypeData[D] } }[DType];

export interface SafetensorsFile {
  /** Tensors in header order. */
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

const ITEMSIZE: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
};
const ARRAY_OF: Record<DType, abstract new (...args: never[]) => ArrayBufferView> = {
  F64: Float32Array, F32: Float32Array, F16: Float32Array, BF16: Float32Array, I64: BigInt64Array, U64: BigUint64Array,
  I32: Int32Array, U32: Uint32Array, I16: Int16Array, U16: Uint16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
};
const FLOAT_DTYPES: ReadonlySet<string> = new Set<FloatDType>(['F64', 'F32', 'F16', 'BF16']);

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ITEMSIZE, s);
}
export function isFloatDType(d: DType): d is FloatDType {
  return FLOAT_DTYPES.has(d);
}
export function itemsize(d: DType): number {
  return ITEMSIZE[d];
}

function checkHost(): void {
  // Typed-array views below read and write in host order; safetensors is little-endian.
  check(os.endianness() === 'LE', 'safetensors: a little-endian host is required');
}

/** Decodes `bytes` (a fresh, 0-offset copy of one tensor's region) into the dtype's typed array. */
function decode(dtype: DType, b: Uint8Array, n: number): DTypeData[DType] {
  const buf = b.buffer;
  switch (dtype) {
    case 'F32': return new Float32Array(buf, 0, n);
    case 'F64': return Float32Array.from(new Float64Array(buf, 0, n));
    case 'F16': return f16BitsToF32(new Uint16Array(buf, 0, n));
    case 'BF16': {
      const out = new Float32Array(n);
      const u32 = new Uint32Array(out.buffer);
      const u16 = new Uint16Array(buf, 0, n);
      for (let i = 0; i < n; i++) u32[i] = u16[i]! << 16;
      return out;
    }
    case 'I64': return new BigInt64Array(buf, 0, n);
    case 'U64': return new BigUint64Array(buf, 0, n);
    case 'I32': return new Int32Array(buf, 0, n);
    case 'U32': return new Uint32Array(buf, 0, n);
    case 'I16': return new Int16Array(buf, 0, n);
    case 'U16': return new Uint16Array(buf, 0, n);
    case 'I8': return new Int8Array(buf, 0, n);
    case 'U8': case 'BOOL': return new Uint8Array(buf, 0, n);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parses a whole safetensors file held in memory; `name` (usually the file name) heads every error message. */
export function parseSafetensors(bytes: Uint8Array, name: string): SafetensorsFile {
  checkHost();
  const fail = (what: string): never => {
    throw new GranqError(`${name}: ${what}`);
  };
  if (bytes.byteLength < 8) fail(`expected a safetensors file of at least 8 bytes, got ${bytes.byteLength}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(bytes.byteLength - 8)) {
    fail(`header length ${n64} runs past the end of the file (${bytes.byteLength} bytes)`);
  }
  const n = Number(n64);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`expected a JSON header of ${n} bytes, got invalid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) fail(`expected the header to be a JSON object, got ${JSON.stringify(header)?.slice(0, 60)}`);
  const h = header as Record<string, unknown>;
  const dataStart = 8 + n;
  const dataLen = bytes.byteLength - dataStart;

  const metadata: Record<string, string> = {};
  const meta = h['__metadata__'];
  if (meta !== undefined) {
    if (!isPlainObject(meta)) fail(`expected __metadata__ to be an object of strings, got ${JSON.stringify(meta)}`);
    for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`expected __metadata__.${k} to be a string, got ${JSON.stringify(v)}`);
      metadata[k] = v as string;
    }
  }

  const spans: { key: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, StoredTensor>();
  for (const [key, entry] of Object.entries(h)) {
    if (key === '__metadata__') continue;
    const t = `tensor '${key}'`;
    if (!isPlainObject(entry)) fail(`${t}: expected {dtype, shape, data_offsets}, got ${JSON.stringify(entry)}`);
    const e = entry as Record<string, unknown>;
    const dtype = e['dtype'];
    if (!isDType(dtype)) fail(`${t}: expected a dtype among ${Object.keys(ITEMSIZE).join('/')}, got ${JSON.stringify(dtype)}`);
    const shape = e['shape'];
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(`${t}: expected shape to be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const offs = e['data_offsets'];
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isCount) || offs[0] > offs[1]) {
      fail(`${t}: expected data_offsets [begin, end] with integers 0 <= begin <= end, got ${JSON.stringify(offs)}`);
    }
    const d = dtype as DType;
    const shp = shape as number[];
    const [begin, end] = offs as [number, number];
    const count = numel(shp);
    const need = count * ITEMSIZE[d];
    if (!Number.isSafeInteger(need) || end - begin !== need) {
      fail(`${t}: data_offsets [${begin},${end}] hold ${end - begin} bytes, dtype ${d} shape ${shapeStr(shp)} needs ${need}`);
    }
    if (end > dataLen) fail(`${t}: data_offsets [${begin},${end}] run past the data buffer of ${dataLen} bytes`);
    spans.push({ key, begin, end });
    // A fresh copy (Buffer#slice would only view): aligned for the typed array and detached from `bytes`.
    const region = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end);
    tensors.set(key, { dtype: d, shape: [...shp], data: decode(d, region, count) } as StoredTensor);
  }
  // Gaps are tolerated (some writers pad); overlaps are not. Empty tensors occupy nothing and never overlap.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let prev: { key: string; end: number } | null = null;
  for (const s of spans) {
    if (s.end === s.begin) continue;
    if (prev !== null && s.begin < prev.end) fail(`tensors '${prev.key}' and '${s.key}' overlap in the data buffer`);
    prev = s;
  }
  return { tensors, metadata };
}

/** Reads and validates a safetensors file. */
export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new GranqError(`${path}: could not read the safetensors file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseSafetensors(bytes, path);
}

/** A float32 tensor of any stored tensor: float data is shared, not copied; integers are converted (the caller asked). */
export function toTensor(st: StoredTensor): Tensor {
  if (st.data instanceof Float32Array) return new Tensor(st.data, st.shape);
  const out = new Float32Array(st.data.length);
  if (st.data instanceof BigInt64Array || st.data instanceof BigUint64Array) {
    for (let i = 0; i < out.length; i++) out[i] = Number(st.data[i]!);
  } else {
    out.set(st.data);
  }
  return new Tensor(out, st.shape);
}

export interface LoadStateDictOptions {
  /** What to do with integer tensors (e.g. PyTorch's num_batches_tracked): 'error' (default) or 'skip'. */
  integers?: 'error' | 'skip';
}

/** The float tensors of a weights file as float32 Tensors; integer tensors are an error unless skipped. */
export function loadStateDictFile(path: string, opts: LoadStateDictOptions = {}): Map<string, Tensor> {
  const file = readSafetensors(path);
  const out = new Map<string, Tensor>();
  for (const [key, st] of file.tensors) {
    if (isFloatDType(st.dtype)) {
      out.set(key, toTensor(st));
    } else if (opts.integers !== 'skip') {
      throw new GranqError(`${path}: tensor '${key}' has integer dtype ${st.dtype}; a state dict holds float tensors only (read it with readSafetensors)`);
    }
  }
  return out;
}

export type WriteEntry = Tensor | StoredTensor;

function encode(name: string, st: StoredTensor): Uint8Array {
  const n = numel(st.shape);
  check(st.data.length === n, () => `${name}: data has ${st.data.length} elements, shape ${shapeStr(st.shape)} needs ${n}`);
  const ctor = ARRAY_OF[st.dtype];
  check(st.data instanceof ctor, () => `${name}: dtype ${st.dtype} expects a ${ctor.name}, got ${st.data.constructor.name}`);
  let out: ArrayBufferView;
  switch (st.dtype) {
    case 'F64': out = Float64Array.from(st.data); break;
    case 'F16': out = f32ToF16Bits(st.data); break;
    case 'BF16': out = f32ToBf16Bits(st.data); break;
    default: out = st.data;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Writes `entries` (Tensors are stored as F32) and string metadata atomically. Tensors are laid out by itemsize,
 * largest first, with no holes, after a header space-padded to a multiple of 8 bytes, so every tensor starts at an
 * offset aligned to its own itemsize (the layout of the reference implementation).
 */
export function writeSafetensors(
  path: string,
  entries: Map<string, WriteEntry> | Record<string, WriteEntry>,
  metadata: Record<string, string> = {},
): void {
  checkHost();
  const name = basename(path);
  const list: [string, StoredTensor][] = [];
  for (const [key, e] of entries instanceof Map ? entries : Object.entries(entries)) {
    check(key.length > 0 && key !== '__metadata__', () => `${name}: expected a tensor name, got ${JSON.stringify(key)}`);
    const st: StoredTensor = e instanceof Tensor ? { dtype: 'F32', shape: [...e.shape], data: Float32Array.from(e.data) } : e;
    check(isDType(st.dtype), () => `${name}: tensor '${key}': unknown dtype ${JSON.stringify(st.dtype)}`);
    check(Array.isArray(st.shape) && st.shape.every(isCount),
      () => `${name}: tensor '${key}': expected shape of non-negative integers, got ${JSON.stringify(st.shape)}`);
    list.push([key, st]);
  }
  for (const [k, v] of Object.entries(metadata)) {
    check(typeof v === 'string', () => `${name}: metadata '${k}': expected a string, got ${JSON.stringify(v)}`);
  }
  list.sort((a, b) => ITEMSIZE[b[1].dtype] - ITEMSIZE[a[1].dtype] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [key, st] of list) {
    const bytes = encode(`${name}: tensor '${key}'`, st);
    header[key] = { dtype: st.dtype, shape: st.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    chunks.push(bytes);
  }
  let json = JSON.stringify(header);
  const raw = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (raw % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.byteLength));
  writeFileAtomic(path, [len, head, ...chunks]);
}
