/**
 * IEEE half (F16) and bfloat16 (BF16) conversions to and from float32. Decoding F16 goes through a 65,536-entry table
 * built once (exact); encoding rounds to nearest, ties to even, as PyTorch's `.half()` and `.bfloat16()` do.
 */

let f16Table: Float32Array | null = null;

function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero and subnormals
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 values of F16 bit patterns. */
export function f16BitsToF32(bits: Uint16Array): Float32Array {
  if (f16Table === null) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16Value(h);
  }
  const t = f16Table;
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}

/** F16 bit patterns of float32 values (round to nearest even; overflow to ±inf; NaN stays NaN). */
export function f32ToF16Bits(src: Float32Array): Uint16Array {
  const u = new Uint32Array(Float32Array.from(src).buffer);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    let h: number;
    if (exp === 255) {
      h = 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
    } else {
      const e = exp - 127 + 15;
      if (e >= 31) {
        h = 0x7c00;
      } else if (e <= 0) {
        if (e < -10) {
          h = 0;
        } else {
          // Subnormal: shift the full significand (implicit bit included) into the 10-bit field.
          const m = mant | 0x800000;
          const shift = 14 - e;
          h = m >>> shift;
          const rem = m & ((1 << shift) - 1);
          const halfway = 1 << (shift - 1);
          if (rem > halfway || (rem === halfway && (h & 1) !== 0)) h++;
        }
      } else {
        h = (e << 10) | (mant >>> 13);
        const rem = mant & 0x1fff;
        // A carry out of the mantissa bumps the exponent, and past the largest finite value gives 0x7c00 = inf.
        if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
      }
    }
    out[i] = sign | h;
  }
  return out;
}

/** BF16 bit patterns of float32 values (round to nearest even; NaN stays a quiet NaN). */
export function f32ToBf16Bits(src: Float32Array): Uint16Array {
  const u = new Uint32Array(Float32Array.from(src).buffer);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}
