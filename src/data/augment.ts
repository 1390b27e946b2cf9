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

/** A copy of x [..., W] with every row of `width` values reversed: each image of a batch mirrored left to right. */
export function mirrorRows(x: Float32Array, width: number): Float32Array {
  check(Number.isInteger(width) && width >= 1 && x.length % width === 0,
    () => `mirrorRows: ${x.length} values are not whole rows of ${width}`);
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += width) for (let j = 0; j < width; j++) out[r + j] = x[r + width - 1 - j]!;
  return out;
}

/**
 * CutMix of a batch x [N, C, H, W] with itself (Yun et al. 2019; MixMix, Li et al. 2021, mixes synthetic images for
 * data-free compression): each image, with probability p, gets a box of another image of the batch (drawn
 * uniformly, possibly itself) pasted over every channel. The box covers a fraction 1 − λ of the plane, λ uniform in
 * [0, 1) (side ratio √(1 − λ), rounded), centred on a uniform pixel and clipped at the border; the boxes come from
 * the unmixed batch. Draws per image: one uniform (whether), then partner, λ, centre row and column when it mixes.
 */
export function cutMixBatch(x: Float32Array, shape: readonly number[], p: number, rng: Rng): Float32Array {
  check(shape.length === 4 && x.length === shape.reduce((a, d) => a * d, 1),
    () => `cutMixBatch: expected x [N, C, H, W] of ${x.length} values, got shape [${shape.join(', ')}]`);
  check(p >= 0 && p <= 1, () => `cutMixBatch: p must be in [0, 1], got ${p}`);
  const [n, c, h, w] = shape as [number, number, number, number];
  const out = x.slice();
  for (let i = 0; i < n; i++) {
    if (!(rng.uniform() < p)) continue;
    const j = rng.randint(0, n);
    const r = Math.sqrt(1 - rng.uniform());
    const bh = Math.round(h * r), bw = Math.round(w * r);
    const cy = rng.randint(0, h), cx = rng.randint(0, w);
    const y0 = Math.max(0, cy - (bh >> 1)), y1 = Math.min(h, cy - (bh >> 1) + bh);
    const x0 = Math.max(0, cx - (bw >> 1)), x1 = Math.min(w, cx - (bw >> 1) + bw);
    for (let ch = 0; ch < c; ch++) {
      for (let y = y0; y < y1; y++) {
        const row = (ch * h + y) * w;
        out.set(x.subarray((j * c) * h * w + row + x0, (j * c) * h * w + row + x1), (i * c) * h * w + row + x0);
      }
    }
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

/**
 * An ideal low-pass filter of every H x W plane of x [N, C, H, W] (SynQ's filter of synthetic images, Kim et al.
 * 2025): the plane's 2-D DFT keeps the frequencies (fu, fv), signed (fu = u for u <= H/2, else u - H), with
 * fu^2 + fv^2 <= radius^2 (cycles per image) and drops the rest; the result is the real inverse DFT. The kept set is
 * symmetric under (fu, fv) -> (-fu, -fv), so the output is real. Separable sums in double over the kept
 * frequencies only; radius >= the largest |f| keeps every frequency (the plane comes back within float rounding).
 */
export function lowPassBatch(x: Float32Array, shape: readonly number[], radius: number): Float32Array {
  check(shape.length === 4 && x.length === shape.reduce((p, d) => p * d, 1),
    () => `lowPassBatch: expected [N,C,H,W] data, got ${x.length} values for shape [${shape}]`);
  check(radius > 0 && Number.isFinite(radius), () => `lowPassBatch: radius must be a positive number, got ${radius}`);
  const [n, c, h, w] = shape as [number, number, number, number];
  const signed = (k: number, len: number) => (k <= len / 2 ? k : k - len);
  const us = [...Array(h).keys()].filter((u) => Math.abs(signed(u, h)) <= radius);
  const vs = [...Array(w).keys()].filter((v) => Math.abs(signed(v, w)) <= radius);
  // cos/sin(2 pi k t / len) at [t * ks.length + i] (t outer: the inner loops run over the kept frequencies).
  const twiddles = (len: number, ks: number[]) => {
    const cos = new Float64Array(ks.length * len);
    const sin = new Float64Array(ks.length * len);
    ks.forEach((k, i) => {
      for (let t = 0; t < len; t++) {
        const a = (2 * Math.PI * ((k * t) % len)) / len;
        cos[t * ks.length + i] = Math.cos(a);
        sin[t * ks.length + i] = Math.sin(a);
      }
    });
    return { cos, sin };
  };
  const { cos: wc, sin: ws } = twiddles(w, vs);
  const { cos: hc, sin: hs } = twiddles(h, us);
  const keep = new Uint8Array(us.length * vs.length);
  us.forEach((u, i) => vs.forEach((v, j) => {
    keep[i * vs.length + j] = signed(u, h) ** 2 + signed(v, w) ** 2 <= radius * radius ? 1 : 0;
  }));
  const nv = vs.length;
  const nu = us.length;
  const rowRe = new Float64Array(h * nv);
  const rowIm = new Float64Array(h * nv);
  const fRe = new Float64Array(nu * nv);
  const fIm = new Float64Array(nu * nv);
  const out = new Float32Array(x.length);
  for (let p = 0; p < n * c; p++) {
    const base = p * h * w;
    // Along W: R[r][v] = sum_t x[r][t] e^{-2 pi i v t / W}.
    for (let r = 0; r < h; r++) {
      for (let j = 0; j < nv; j++) {
        let re = 0;
        let im = 0;
        for (let t = 0; t < w; t++) {
          const xv = x[base + r * w + t]!;
          re += xv * wc[t * nv + j]!;
          im -= xv * ws[t * nv + j]!;
        }
        rowRe[r * nv + j] = re;
        rowIm[r * nv + j] = im;
      }
    }
    // Along H, masked: X[u][v] = sum_r R[r][v] e^{-2 pi i u r / H}.
    for (let i = 0; i < nu; i++) {
      for (let j = 0; j < nv; j++) {
        let re = 0;
        let im = 0;
        if (keep[i * nv + j]) {
          for (let r = 0; r < h; r++) {
            const cr = hc[r * nu + i]!;
            const sr = hs[r * nu + i]!;
            re += rowRe[r * nv + j]! * cr + rowIm[r * nv + j]! * sr;
            im += rowIm[r * nv + j]! * cr - rowRe[r * nv + j]! * sr;
          }
        }
        fRe[i * nv + j] = re;
        fIm[i * nv + j] = im;
      }
    }
    // Inverse along H, then along W (real part), scaled by 1/(H W).
    for (let r = 0; r < h; r++) {
      for (let j = 0; j < nv; j++) {
        let re = 0;
        let im = 0;
        for (let i = 0; i < nu; i++) {
          const cr = hc[r * nu + i]!;
          const sr = hs[r * nu + i]!;
          re += fRe[i * nv + j]! * cr - fIm[i * nv + j]! * sr;
          im += fRe[i * nv + j]! * sr + fIm[i * nv + j]! * cr;
        }
        rowRe[r * nv + j] = re;
        rowIm[r * nv + j] = im;
      }
      for (let t = 0; t < w; t++) {
        let s = 0;
        for (let j = 0; j < nv; j++) s += rowRe[r * nv + j]! * wc[t * nv + j]! - rowIm[r * nv + j]! * ws[t * nv + j]!;
        out[base + r * w + t] = s / (h * w);
      }
    }
  }
  return out;
}
