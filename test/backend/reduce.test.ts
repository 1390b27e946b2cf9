/**
 * Reductions: sum/max/min over every mask of a case table of shapes, NaN propagation, the max/min backward with
 * ties (hand values and native vs ref), bit-identical results for 1 and 4 threads, and bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDUCE, nativeBackend, refBackend, type Backend, type Mask4, type Quad } from '../../src/backend/index.js';
import { GranqError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/rng.js';
import { assertBitEqual, assertClose } from '../kit/compare.js';
import { randomFloats } from '../kit/random.js';
import { withThreads } from '../kit/threads.js';

const SUM_TOL = { atol: 1e-6, rtol: 1e-6 }; // both sum in double, in different orders

const SHAPES: Quad[] = [[1, 1, 1, 1], [1, 1, 1, 7], [2, 3, 5, 7], [1, 17, 1, 33], [3, 1, 7, 1], [4, 16, 8, 8], [2, 5, 33, 17]];
const ALL_MASKS: Mask4[] = Array.from({ length: 16 }, (_, m) => [!!(m & 8), !!(m & 4), !!(m & 2), !!(m & 1)] as Mask4);

const size = (s: Quad) => s[0] * s[1] * s[2] * s[3];
const outSize = (s: Quad, m: Mask4) => s.reduce((p, d, i) => p * (m[i] ? 1 : d), 1);

function fwd(b: Backend, op: number, shape: Quad, mask: Mask4, x: Float32Array): Float32Array {
  const y = new Float32Array(outSize(shape, mask));
  b.reduceFwd({ op, shape, mask, x, y });
  return y;
}

function bwd(b: Backend, shape: Quad, mask: Mask4, x: Float32Array, y: Float32Array, dy: Float32Array): Float32Array {
  const dx = new Float32Array(size(shape)).fill(NaN); // every element must be written
  b.reduceMinMaxBwd({ shape, mask, x, y, dy, dx });
  return dx;
}

/** Small integers, so every group has ties. */
function tiedInput(len: number, seed: number): Float32Array {
  return randomFloats(len, seed, 0, 3).map(Math.floor);
}

function checkShape(shape: Quad, seed: number): void {
  for (const mask of ALL_MASKS) {
    const what = `shape [${shape}] mask [${mask.map(Number)}] seed=${seed}`;
    const x = randomFloats(size(shape), seed, -1, 1);
    assertClose(fwd(nativeBackend, REDUCE.sum, shape, mask, x), fwd(refBackend, REDUCE.sum, shape, mask, x), SUM_TOL, `sum ${what}`);
    const xt = tiedInput(size(shape), seed + 1);
    const dy = randomFloats(outSize(shape, mask), seed + 2);
    for (const op of [REDUCE.max, REDUCE.min]) {
      const yn = fwd(nativeBackend, op, shape, mask, xt);
      assertBitEqual(yn, fwd(refBackend, op, shape, mask, xt), `op ${op} ${what}`);
      assertBitEqual(bwd(nativeBackend, shape, mask, xt, yn, dy), bwd(refBackend, shape, mask, xt, yn, dy), `op ${op} bwd ${what}`);
    }
  }
}

test('reduce: case table of shapes, every mask, native vs ref', () => {
  SHAPES.forEach((s, i) => checkShape(s, 50 + i));
});

test('reduce: seeded random shapes', () => {
  const seed = 123;
  const rng = new Rng(seed);
  for (let t = 0; t < 6; t++) checkShape([0, 0, 0, 0].map(() => 1 + (rng.uint32() % 10)) as Quad, seed + t);
});

test('reduce: hand values, ties split evenly, NaN propagates', () => {
  const shape: Quad = [1, 2, 1, 4];
  const x = new Float32Array([1, 3, 3, 2, -1, 5, -1, 0]);
  const rows: Mask4 = [false, false, false, true];
  for (const b of [nativeBackend, refBackend]) {
    assert.deepEqual([...fwd(b, REDUCE.sum, shape, rows, x)], [9, 3], `${b.name} sum`);
    const mx = fwd(b, REDUCE.max, shape, rows, x);
    const mn = fwd(b, REDUCE.min, shape, rows, x);
    assert.deepEqual([...mx], [3, 5], `${b.name} max`);
    assert.deepEqual([...mn], [1, -1], `${b.name} min`);
    const dy = new Float32Array([1, 2]);
    assert.deepEqual([...bwd(b, shape, rows, x, mx, dy)], [0, 0.5, 0.5, 0, 0, 2, 0, 0], `${b.name} max bwd`);
    assert.deepEqual([...bwd(b, shape, rows, x, mn, dy)], [1, 0, 0, 0, 1, 0, 1, 0], `${b.name} min bwd`);
    const all: Mask4 = [true, true, true, true];
    const t = fwd(b, REDUCE.max, shape, all, x);
    assert.deepEqual([...bwd(b, shape, all, x, t, new Float32Array([3]))], [0, 0, 0, 0, 0, 3, 0, 0], `${b.name} full max bwd`);
    const xn = x.slice();
    xn[2] = NaN;
    assert.ok(Number.isNaN(fwd(b, REDUCE.max, shape, rows, xn)[0]!), `${b.name} max propagates NaN`);
    assert.ok(Number.isNaN(fwd(b, REDUCE.min, shape, rows, xn)[0]!), `${b.name} min propagates NaN`);
    assert.equal(fwd(b, REDUCE.min, shape, rows, xn)[1], -1, `${b.name} other rows unaffected`);
  }
});

test('reduce: sums accumulate in double', () => {
  // 2^24 + 1 + 1 + ... is lost in a float accumulator.
  const x = new Float32Array(1025).fill(1);
  x[0] = 16777216;
  const y = fwd(nativeBackend, REDUCE.sum, [1, 1, 1, 1025], [true, true, true, true], x);
  assert.equal(y[0], 16777216 + 1024);
});

test('reduce: bit-identical for 1 and 4 threads', () => {
  const shape: Quad = [16, 16, 32, 33];
  const masks: Mask4[] = [[true, false, true, true], [false, false, true, true], [true, false, false, false], [true, true, true, true], [false, true, false, true]];
  const x = randomFloats(size(shape), 11);
  const xt = tiedInput(size(shape), 12);
  const run = () =>
    masks.flatMap((m) => {
      const dy = randomFloats(outSize(shape, m), 13);
      const mx = fwd(nativeBackend, REDUCE.max, shape, m, xt);
      return [fwd(nativeBackend, REDUCE.sum, shape, m, x), mx, fwd(nativeBackend, REDUCE.min, shape, m, x), bwd(nativeBackend, shape, m, xt, mx, dy)];
    });
  const one = withThreads(1, run);
  const four = withThreads(4, run);
  one.forEach((a, i) => assertBitEqual(four[i]!, a, `output ${i} threads 4 vs 1`));
});

test('reduce: bad inputs throw GranqError', () => {
  const shape: Quad = [2, 3, 1, 1];
  const x = new Float32Array(6);
  const mask: Mask4 = [true, false, false, false];
  assert.throws(() => nativeBackend.reduceFwd({ op: REDUCE.sum, shape, mask, x, y: new Float32Array(6) }), GranqError);
  assert.throws(() => nativeBackend.reduceFwd({ op: 3, shape, mask, x, y: new Float32Array(3) }), GranqError);
  assert.throws(() => nativeBackend.reduceFwd({ op: REDUCE.sum, shape: [2, 3, 0, 1], mask, x, y: new Float32Array(3) }), GranqError);
  assert.throws(() => nativeBackend.reduceFwd({ op: REDUCE.sum, shape, mask: [1, 0, 0, 0] as unknown as Mask4, x, y: new Float32Array(3) }), GranqError);
  assert.throws(() => nativeBackend.reduceMinMaxBwd({ shape, mask, x, y: new Float32Array(3), dy: new Float64Array(3) as unknown as Float32Array, dx: x }), GranqError);
});
