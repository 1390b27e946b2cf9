/**
 * Seeded random numbers, reproducible bit for bit: xoshiro128** over 32-bit integers, uniform floats with 24-bit
 * mantissas (exact in float32), normals by Box-Muller. The state is four integers, saved in checkpoints.
 */
import { check } from '../errors.js';

export type RngState = [number, number, number, number, number | null];

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | null = null;

  constructor(seed: number) {
    check(Number.isInteger(seed) && seed >= 0, () => `seed: expected a non-negative integer, got ${seed}`);
    // splitmix32 expands the seed into the four state words.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  uint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0; this.s3 >>>= 0;
    return result;
  }

  /** Uniform in [0, 1), a multiple of 2^-24. */
  uniform(): number {
    return (this.uint32() >>> 8) * 5.9604644775390625e-8;
  }

  /** Standard normal (Box-Muller, the second value cached). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [lo, hi), without modulo bias. */
  randint(lo: number, hi: number): number {
    check(Number.isInteger(lo) && Number.isInteger(hi) && hi > lo && hi - lo <= 2 ** 32,
      () => `randint: expected integers lo < hi, got ${lo}, ${hi}`);
    const range = hi - lo;
    const limit = 2 ** 32 - (2 ** 32 % range);
    let r = this.uint32();
    while (r >= limit) r = this.uint32();
    return lo + (r % range);
  }

  fillNormal(out: Float32Array | Float64Array, mean = 0, std = 1): void {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
  }

  fillUniform(out: Float32Array | Float64Array, lo = 0, hi = 1): void {
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * this.uniform();
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.randint(0, i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
  }

  getState(): RngState {
    return [this.s0, this.s1, this.s2, this.s3, this.spare];
  }

  setState(s: RngState): void {
    check(Array.isArray(s) && s.length === 5, 'rng state: expected [s0, s1, s2, s3, spare]');
    [this.s0, this.s1, this.s2, this.s3] = s.slice(0, 4).map((v) => Number(v) >>> 0) as [number, number, number, number];
    this.spare = s[4] === null ? null : Number(s[4]);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
