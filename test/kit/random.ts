/** Seeded test inputs. A failing random case prints its seed so it can be replayed. */
import { Rng } from '../../src/tensor/rng.js';

export function randomFloats(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  new Rng(seed).fillUniform(out, lo, hi);
  return out;
}

export function randomNormal(n: number, seed: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  new Rng(seed).fillNormal(out, 0, std);
  return out;
}

export function toF64(a: Float32Array): Float64Array {
  return Float64Array.from(a);
}
