/**
 * The integer GEMM of integer inference: native (AVX-512 VNNI where the CPU has it) equal to the scalar reference,
 * exactly, over a case table (sizes 1, odd, not multiples of 4 or 16; extreme codes 0/255 x -128/127), 1 and 4
 * threads, and bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend, type Backend } from '../../src/backend/index.js';
import { GranqError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/rng.js';
import { withThreads } from '../kit/threads.js';

const SIZES = [1, 3, 7, 16, 17, 33, 64];

function operands(m: number, n: number, k: number, seed: number): { a: Uint8Array; b: Int8Array } {
  const rng = new Rng(seed);
  const a = Uint8Array.from({ length: m * k }, () => Math.floor(rng.uniform() * 256));
  const b = Int8Array.from({ length: n * k }, () => Math.floor(rng.uniform() * 256) - 128);
  if (a.length > 1) [a[0], a[1]] = [255, 0];
  if (b.length > 1) [b[0], b[1]] = [-128, 127];
  return { a, b };
}

function run(be: Backend, m: number, n: number, k: number, a: Uint8Array, b: Int8Array): Int32Array {
  const c = new Int32Array(m * n).fill(-7);
  be.qgemmU8S8({ m, n, k, a, b, c });
  return c;
}

test('qgemmU8S8: case table, native exactly equal to the reference', () => {
  let seed = 1;
  for (const m of [1, 5, 37]) {
    for (const n of SIZES) {
      for (const k of [...SIZES, 9, 27, 144, 576]) {
        const { a, b } = operands(m, n, k, seed++);
        assert.deepEqual(run(nativeBackend, m, n, k, a, b), run(refBackend, m, n, k, a, b), `m ${m} n ${n} k ${k} seed=${seed - 1}`);
      }
    }
  }
});

test('qgemmU8S8: the extreme products at the largest k stay exact (255 x -128 x 65,000 fits int32)', () => {
  const k = 65000;
  const a = new Uint8Array(2 * k).fill(255);
  const b = new Int8Array(3 * k).fill(-128);
  b.fill(127, k, 2 * k);
  const c = run(nativeBackend, 2, 3, k, a, b);
  assert.deepEqual([...c], [-255 * 128 * k, 255 * 127 * k, -255 * 128 * k, -255 * 128 * k, 255 * 127 * k, -255 * 128 * k]);
});

test('qgemmU8S8: the same with 1 and 4 threads', () => {
  const { a, b } = operands(301, 40, 147, 99);
  assert.deepEqual(withThreads(4, () => run(nativeBackend, 301, 40, 147, a, b)), withThreads(1, () => run(nativeBackend, 301, 40, 147, a, b)));
});

test('qgemmU8S8: bad inputs throw GranqError', () => {
  const ok = { m: 2, n: 3, k: 4, a: new Uint8Array(8), b: new Int8Array(12), c: new Int32Array(6) };
  const bad: [string, () => void][] = [
    ['a short', () => nativeBackend.qgemmU8S8({ ...ok, a: new Uint8Array(7) })],
    ['a as Int8Array', () => nativeBackend.qgemmU8S8({ ...ok, a: new Int8Array(8) as unknown as Uint8Array })],
    ['b as Uint8Array', () => nativeBackend.qgemmU8S8({ ...ok, b: new Uint8Array(12) as unknown as Int8Array })],
    ['c long', () => nativeBackend.qgemmU8S8({ ...ok, c: new Int32Array(7) })],
    ['k 0', () => nativeBackend.qgemmU8S8({ ...ok, k: 0 })],
    ['k too large', () => nativeBackend.qgemmU8S8({ ...ok, k: 65001, a: new Uint8Array(2 * 65001), b: new Int8Array(3 * 65001) })],
  ];
  for (const [what, fn] of bad) assert.throws(fn, GranqError, what);
});
