/**
 * Training-time augmentation of CIFAR images, torchvision's standard pair: RandomCrop(32, padding=p) with zero
 * fill, then RandomHorizontalFlip(0.5), applied to the uint8 pixels before normalisation; optionally Cutout
 * (DeVries & Taylor 2017): after normalisation, a side x side square centred on a uniformly drawn pixel (clipped at
 * the border) is set to 0, the dataset mean. Everything random in an
 * epoch (the sample order and each position's crop offset and flip) is drawn up front from an Rng seeded by
 * (seed, epoch) alone, so any batch of any epoch can be rebuilt without replaying the ones before it: a run
 * resumed mid-epoch sees exactly the batches it would have seen.
 */
import { check } from '../errors.js';
import { Rng } from '../tensor/rng.js';
import { IMAGE_BYTES, normalizeImages, type Batch, type CifarData } from './cifar.js';

const SIDE = 32;

export interface AugmentOptions {
  /** Zero padding on each side before the 32x32 crop (0: no crop). */
  padding: number;
  flip: boolean;
  /** Side of the Cutout square (0: none). */
  cutout: number;
}

/** What an epoch draws: the order of the samples, and per position (not per image) a crop offset and a flip. */
export interface EpochPlan {
  order: Int32Array;
  dy: Uint8Array;
  dx: Uint8Array;
  flip: Uint8Array;
  /** Cutout centres per position (empty without Cutout). */
  cy: Uint8Array;
  cx: Uint8Array;
}

/** The Rng seed of epoch `epoch` of a run seeded `seed` (splitmix inside Rng spreads neighbouring seeds apart). */
export function epochSeed(seed: number, epoch: number): number {
  check(Number.isInteger(seed) && seed >= 0 && Number.isInteger(epoch) && epoch >= 0,
    () => `epochSeed: expected non-negative integers, got ${seed}, ${epoch}`);
  return (Math.imul(seed, 0x9e3779b1) + epoch * 0x85ebca6b) >>> 0;
}

export function epochPlan(n: number, seed: number, epoch: number, aug: AugmentOptions): EpochPlan {
  check(Number.isInteger(aug.padding) && aug.padding >= 0 && aug.padding <= SIDE,
    () => `padding: expected an integer in [0, ${SIDE}], got ${aug.padding}`);
  check(Number.isInteger(aug.cutout) && aug.cutout >= 0 && aug.cutout <= SIDE,
    () => `cutout: expected an integer in [0, ${SIDE}], got ${aug.cutout}`);
  const rng = new Rng(epochSeed(seed, epoch));
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  rng.shuffle(order);
  const dy = new Uint8Array(n);
  const dx = new Uint8Array(n);
  const flip = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    dy[i] = rng.randint(0, 2 * aug.padding + 1);
    dx[i] = rng.randint(0, 2 * aug.padding + 1);
    flip[i] = aug.flip && rng.uniform() < 0.5 ? 1 : 0;
  }
  // Drawn after the others, so a plan without Cutout is what it was before Cutout existed.
  const cut = aug.cutout > 0 ? n : 0;
  const cy = new Uint8Array(cut);
  const cx = new Uint8Array(cut);
  for (let i = 0; i < cut; i++) {
    cy[i] = rng.randint(0, SIDE);
    cx[i] = rng.randint(0, SIDE);
  }
  return { order, dy, dx, flip, cy, cx };
}

/**
 * Image `src` of `images` cropped at (dy, dx) of its zero-padded version and optionally mirrored, written to
 * `out` at `to`: out(y, x) = padded(y + dy, x') with x' = dx + (flip ? 31 - x : x). The pixels are uint8 (a data
 * set) or float32 (a generator's normalised images, whose padding 0 is the mean).
 */
export function cropFlip<T extends Uint8Array | Float32Array>(images: T, src: number, padding: number, dy: number, dx: number,
  flip: boolean, out: T, to: number): void {
  const from = src * IMAGE_BYTES;
  for (let c = 0; c < 3; c++) {
    const plane = c * SIDE * SIDE;
    for (let y = 0; y < SIDE; y++) {
      const sy = y + dy - padding;
      const row = to + plane + y * SIDE;
      if (sy < 0 || sy >= SIDE) {
        out.fill(0, row, row + SIDE);
        continue;
      }
      const srow = from + plane + sy * SIDE;
      for (let x = 0; x < SIDE; x++) {
        const sx = (flip ? SIDE - 1 - x : x) + dx - padding;
        out[row + x] = sx >= 0 && sx < SIDE ? images[srow + sx]! : 0;
      }
    }
  }
}

/**
 * Cutout of image `i` of a normalised [N,3,32,32] batch: rows and columns [c - side/2, c + side/2) around the
 * centre (cy, cx), clipped to the image, set to 0 in every channel.
 */
export function cutoutSquare(x: Float32Array, i: number, side: number, cy: number, cx: number): void {
  const half = side >> 1;
  const y0 = Math.max(cy - half, 0), y1 = Math.min(cy - half + side, SIDE);
  const x0 = Math.max(cx - half, 0), x1 = Math.min(cx - half + side, SIDE);
  for (let c = 0; c < 3; c++) {
    const plane = (i * 3 + c) * SIDE * SIDE;
    for (let y = y0; y < y1; y++) x.fill(0, plane + y * SIDE + x0, plane + y * SIDE + x1);
  }
}

/**
 * A batch of normalised [N,3,32,32] images, each shifted by up to `padding` pixels (zero fill) and mirrored with
 * probability 1/2, the offsets and flips drawn from `rng` (dy, dx, flip per image, in image order).
 */
export function shiftFlipBatch(x: Float32Array, n: number, padding: number, rng: Rng): Float32Array {
  check(x.length === n * IMAGE_BYTES, () => `shiftFlipBatch: expected ${n} images of 3x${SIDE}x${SIDE}, got ${x.length} values`);
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    const dy = rng.randint(0, 2 * padding + 1);
    const dx = rng.randint(0, 2 * padding + 1);
    const flip = rng.uniform() < 0.5;
    cropFlip(x, i, padding, dy, dx, flip, out, i * IMAGE_BYTES);
  }
  return out;
}

/** Batch `b` (positions b*size ... ) of an epoch's plan: augmented, then normalised. The last batch may be short. */
export function planBatch(data: CifarData, plan: EpochPlan, b: number, size: number, aug: AugmentOptions,
  mean: readonly number[], std: readonly number[]): Batch {
  const from = b * size;
  const to = Math.min(from + size, plan.order.length);
  check(from < to, () => `batch ${b}: past the end of an epoch of ${plan.order.length} samples`);
  const n = to - from;
  const pixels = new Uint8Array(n * IMAGE_BYTES);
  const indices = plan.order.slice(from, to);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const p = from + i;
    cropFlip(data.images, indices[i]!, aug.padding, plan.dy[p]!, plan.dx[p]!, plan.flip[p] === 1, pixels, i * IMAGE_BYTES);
    y[i] = data.labels[indices[i]!]!;
  }
  const x = normalizeImages(pixels, mean, std);
  if (aug.cutout > 0) for (let i = 0; i < n; i++) cutoutSquare(x.data, i, aug.cutout, plan.cy[from + i]!, plan.cx[from + i]!);
  return { x, y, indices };
}
