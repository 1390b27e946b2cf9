/**
 * CIFAR-10 / CIFAR-100 in their canonical binary formats (no header, fixed-size records):
 * CIFAR-10 `label, 3072 pixels` (3,073 bytes); CIFAR-100 `coarse, fine, 3072 pixels` (3,074 bytes). Pixels are CHW
 * RGB planes of 32x32, row-major. Also: split location, normalisation to a float32 NCHW Tensor, batching.
 */
import fs from 'node:fs';
import path from 'node:path';
import { check, GranqError } from '../errors.js';
import { Rng } from '../tensor/rng.js';
import { allocFloats, Tensor } from '../tensor/tensor.js';

export type CifarFormat = 'cifar10' | 'cifar100';
export type CifarSplit = 'train' | 'test';

export const IMAGE_BYTES = 3072;
export const IMAGE_SHAPE = [3, 32, 32] as const;

export interface CifarData {
  /** n * 3072 CHW RGB pixel bytes. */
  images: Uint8Array;
  labels: Int32Array;
  n: number;
}

export interface ReadCifarOptions {
  format: CifarFormat;
  /** CIFAR-100 only: the fine (100-class, default) or coarse (20-class) label. */
  label?: 'fine' | 'coarse';
  /** Read at most this many records (from the start of the file). */
  limit?: number;
}

export function recordBytes(format: CifarFormat): number {
  return format === 'cifar10' ? 3073 : 3074;
}

function checkLimit(limit: number | undefined, where: string): void {
  check(limit === undefined || (Number.isInteger(limit) && limit >= 0),
    () => `${where}: limit: expected a non-negative integer, got ${limit}`);
}

/** Reads one binary file (only the first `limit` records when given). */
export function readCifar(file: string, opts: ReadCifarOptions): CifarData {
  const { format } = opts;
  check(format === 'cifar10' || format === 'cifar100', () => `format: expected cifar10 or cifar100, got ${JSON.stringify(format)}`);
  const which = opts.label ?? 'fine';
  check(which === 'fine' || which === 'coarse', () => `label: expected fine or coarse, got ${JSON.stringify(which)}`);
  check(format === 'cifar100' || opts.label === undefined || which === 'fine',
    'label: coarse labels exist only in cifar100');
  checkLimit(opts.limit, file);
  const rec = recordBytes(format);
  const hdr = rec - IMAGE_BYTES;
  const labelAt = format === 'cifar100' && which === 'fine' ? 1 : 0;
  const maxLabel = format === 'cifar10' ? 10 : which === 'fine' ? 100 : 20;

  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new GranqError(`${file}: could not open the ${format} file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    check(size % rec === 0, () => `${file}: size ${size} bytes is not a multiple of the ${format} record size ${rec}`);
    const total = size / rec;
    const n = Math.min(total, opts.limit ?? total);
    // Only the records asked for are read: a quick run on 8 images does not load 30 MB.
    const buf = Buffer.allocUnsafe(n * rec);
    let off = 0;
    while (off < buf.length) {
      const got = fs.readSync(fd, buf, off, buf.length - off, off);
      check(got > 0, () => `${file}: expected ${buf.length} bytes, the file ended after ${off}`);
      off += got;
    }
    const images = new Uint8Array(n * IMAGE_BYTES);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const r = i * rec;
      const y = buf[r + labelAt]!;
      check(y < maxLabel, () => `${file}: record ${i}: expected a ${format} ${which} label in [0, ${maxLabel}), got ${y}`);
      labels[i] = y;
      images.set(buf.subarray(r + hdr, r + rec), i * IMAGE_BYTES);
    }
    return { images, labels, n };
  } finally {
    fs.closeSync(fd);
  }
}

function splitCandidates(dir: string, format: CifarFormat, split: CifarSplit): string[][] {
  if (format === 'cifar100') {
    const f = `${split}.bin`;
    return [[path.join(dir, f)], [path.join(dir, 'cifar-100-binary', f)]];
  }
  const names = split === 'test' ? ['test_batch.bin'] : [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
  return [names.map((f) => path.join(dir, f)), names.map((f) => path.join(dir, 'cifar-10-batches-bin', f))];
}

/**
 * The files of a split inside a data dir: `dir/` itself first, then the canonical subfolder
 * (`cifar-10-batches-bin/`, `cifar-100-binary/`). CIFAR-10 train is whichever of data_batch_{1..5}.bin exist.
 */
export function locateCifarSplit(dir: string, format: CifarFormat, split: CifarSplit): string[] {
  const groups = splitCandidates(dir, format, split);
  for (const g of groups) {
    const found = g.filter((f) => fs.existsSync(f));
    if (found.length > 0) return found;
  }
  const checked = groups.map((g) => (g.length === 1 ? g[0]! : `${path.dirname(g[0]!)}/data_batch_{1..5}.bin`));
  throw new GranqError(`${dir}: no ${format} ${split} split found (checked: ${checked.join(', ')})`);
}

export interface LoadSplitOptions {
  format: CifarFormat;
  split: CifarSplit;
  label?: 'fine' | 'coarse';
  limit?: number;
}

/** Reads a whole split (all its files, in order), up to `limit` records. */
export function loadCifarSplit(dir: string, opts: LoadSplitOptions): CifarData {
  checkLimit(opts.limit, dir);
  const parts: CifarData[] = [];
  let left = opts.limit ?? Infinity;
  for (const f of locateCifarSplit(dir, opts.format, opts.split)) {
    if (left <= 0) break;
    const part = readCifar(f, { format: opts.format, label: opts.label, limit: Number.isFinite(left) ? left : undefined });
    parts.push(part);
    left -= part.n;
  }
  if (parts.length === 1) return parts[0]!;
  const n = parts.reduce((s, p) => s + p.n, 0);
  const images = new Uint8Array(n * IMAGE_BYTES);
  const labels = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * IMAGE_BYTES);
    labels.set(p.labels, at);
    at += p.n;
  }
  return { images, labels, n };
}

/**
 * Normalises images `indices` (all when omitted) into a float32 [N,3,32,32] Tensor: x = (pixel/255 - mean[c]) / std[c],
 * each step rounded to float32 as PyTorch's `(x/255.0 - m)/s` on a float32 tensor, so the results are bit-identical.
 * Every pixel value has only 256 possible results per channel, so they are tabulated once and looked up.
 */
export function normalizeImages(
  images: Uint8Array,
  mean: readonly number[],
  std: readonly number[],
  indices?: ArrayLike<number>,
): Tensor {
  check(mean.length === 3 && std.length === 3, () => `normalize: expected 3 means and 3 stds, got ${mean.length} and ${std.length}`);
  check(images.length % IMAGE_BYTES === 0, () => `normalize: expected a multiple of ${IMAGE_BYTES} bytes, got ${images.length}`);
  const total = images.length / IMAGE_BYTES;
  const n = indices === undefined ? total : indices.length;
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    for (let p = 0; p < 256; p++) lut[c * 256 + p] = Math.fround(Math.fround(p / 255) - m) / s;
  }
  const out = allocFloats(n * IMAGE_BYTES); // every element is written below
  for (let i = 0; i < n; i++) {
    const src = indices === undefined ? i : indices[i]!;
    if (!(Number.isInteger(src) && src >= 0 && src < total)) throw new GranqError(`normalize: index ${src} out of range [0, ${total})`);
    lookupImage(lut, images, src * IMAGE_BYTES, out, i * IMAGE_BYTES);
  }
  return new Tensor(out, [n, ...IMAGE_SHAPE]);
}

/** The hot loop, kept small and monomorphic so it stays optimised. */
function lookupImage(lut: Float32Array, images: Uint8Array, from: number, out: Float32Array, to: number): void {
  for (let c = 0; c < 3; c++) {
    const base = c * 256;
    const o = c * 1024;
    for (let j = 0; j < 1024; j++) out[to + o + j] = lut[base + images[from + o + j]!]!;
  }
}

export interface Batch {
  x: Tensor;
  y: Int32Array;
  /** Positions of the batch's images in the dataset. */
  indices: Int32Array;
}

export interface BatchOptions {
  batchSize: number;
  mean: readonly number[];
  std: readonly number[];
  /** At most this many samples in all (after shuffling: a random subset when shuffled). */
  limit?: number;
  /** When given, the order is a Fisher-Yates shuffle by Rng(seed): same seed, same order. */
  shuffleSeed?: number;
}

/** The sample order batches() walks: 0..n-1, or shuffled by `seed`, cut to `limit`. */
export function batchOrder(n: number, seed?: number, limit?: number): Int32Array {
  checkLimit(limit, 'batches');
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (seed !== undefined) new Rng(seed).shuffle(order);
  return limit === undefined || limit >= n ? order : order.slice(0, limit);
}

/** Batches of normalised images; the last partial batch is kept. */
export function* batches(data: CifarData, opts: BatchOptions): Generator<Batch> {
  const { batchSize } = opts;
  check(Number.isInteger(batchSize) && batchSize > 0, () => `batchSize: expected a positive integer, got ${batchSize}`);
  const order = batchOrder(data.n, opts.shuffleSeed, opts.limit);
  for (let at = 0; at < order.length; at += batchSize) {
    const indices = order.slice(at, at + batchSize);
    const y = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) y[i] = data.labels[indices[i]!]!;
    yield { x: normalizeImages(data.images, opts.mean, opts.std, indices), y, indices };
  }
}
