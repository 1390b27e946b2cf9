/** gemm: native vs the scalar reference over a case table and seeded random shapes; thread-count determinism; bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend } from '../../src/backend/native.js';
import { refBackend } from '../../src/backend/ref/index.js';
import { GranqError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/rng.js';
import { assertBitEqual, assertClose } from '../kit/compare.js';
import { randomFloats } from '../kit/random.js';
import { withThreads } from '../kit/threads.js';

interface GemmCase {
  m: number; n: number; k: number; transA: boolean; transB: boolean; beta: 0 | 1;
}

// Size 1, sizes that are not multiples of the 8x32 tile or the 16-lane vector, k across the 256 k-block boundary.
const CASES: GemmCase[] = [];
for (const [m, n, k] of [[1, 1, 1], [7, 17, 33], [17, 33, 7], [33, 7, 17], [8, 32, 16], [16, 64, 300], [65, 129, 257], [3, 600, 5]] as const)
  for (const transA of [false, true])
    for (const transB of [false, true])
      for (const beta of [0, 1] as const) CASES.push({ m, n, k, transA, transB, beta });

/** float32 inputs summed over k: the error grows with k. */
const tolFor = (k: number) => ({ atol: 1e-4 * Math.max(1, k / 64), rtol: 1e-4 });

function run(backend: typeof nativeBackend, c: GemmCase, seed: number): Float32Array {
  const a = randomFloats(c.m * c.k, seed);
  const b = randomFloats(c.k * c.n, seed + 1);
  const out = randomFloats(c.m * c.n, seed + 2);
  backend.gemm({ ...c, a, b, c: out });
  return out;
}

const label = (c: GemmCase) => `m${c.m} n${c.n} k${c.k} tA${+c.transA} tB${+c.transB} beta${c.beta}`;

test('gemm native matches ref: case table', () => {
  for (const c of CASES) assertClose(run(nativeBackend, c, 11), run(refBackend, c, 11), tolFor(c.k), label(c));
});

test('gemm native matches ref: seeded random shapes', () => {
  for (let seed = 100; seed < 112; seed++) {
    const r = new Rng(seed);
    const c: GemmCase = {
      m: 1 + (r.uint32() % 90), n: 1 + (r.uint32() % 150), k: 1 + (r.uint32() % 400),
      transA: r.uint32() % 2 === 1, transB: r.uint32() % 2 === 1, beta: (r.uint32() % 2) as 0 | 1,
    };
    assertClose(run(nativeBackend, c, seed), run(refBackend, c, seed), tolFor(c.k), `seed ${seed}: ${label(c)}`);
  }
});

test('gemm is bit-identical with 1 and 4 threads', () => {
  for (const c of [{ m: 300, n: 1100, k: 70, transA: false, transB: true, beta: 1 }, { m: 257, n: 513, k: 300, transA: true, transB: false, beta: 0 }] as GemmCase[]) {
    const one = withThreads(1, () => run(nativeBackend, c, 5));
    const four = withThreads(4, () => run(nativeBackend, c, 5));
    assertBitEqual(four, one, label(c));
  }
});

test('gemm rejects bad input with GranqError', () => {
  const ok = { m: 2, n: 3, k: 4, transA: false, transB: false, beta: 0 as const, a: new Float32Array(8), b: new Float32Array(12), c: new Float32Array(6) };
  assert.throws(() => nativeBackend.gemm({ ...ok, c: new Float32Array(5) }), GranqError);
  assert.throws(() => nativeBackend.gemm({ ...ok, a: new Float64Array(8) }), GranqError);
  assert.throws(() => nativeBackend.gemm({ ...ok, beta: 0.5 as 0 }), GranqError);
  assert.throws(() => nativeBackend.gemm({ ...ok, m: 0 }), GranqError);
  nativeBackend.gemm(ok);  // and the good call still works afterwards
});
