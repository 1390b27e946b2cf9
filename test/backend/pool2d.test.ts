/**
 * Pooling kernels: average pooling (k, stride, odd sizes), nearest upsampling and channel padding, forward and
 * backward; native vs ref, hand values, the adjoint identity <fwd(x), dy> = <x, bwd(dy)>, bit-identical results for
 * 1 and 4 threads, and bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend, type Backend, type Buf, type Pool2dShape } from '../../src/backend/index.js';
import { GranqError } from '../../src/errors.js';
import { assertBitEqual, assertClose } from '../kit/compare.js';
import { randomFloats } from '../kit/random.js';
import { withThreads } from '../kit/threads.js';

const TOL = { atol: 1e-6, rtol: 1e-5 }; // float window sums vs the reference's double sums

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!; return s; };

function poolShape(n: number, c: number, ih: number, iw: number, k: number, stride: number): Pool2dShape {
  return { n, c, ih, iw, k, stride, oh: Math.floor((ih - k) / stride) + 1, ow: Math.floor((iw - k) / stride) + 1 };
}

// n, c, ih, iw, k, stride: size 1, odd sizes, overlapping windows, global pooling (ResNet head), k = 1 subsampling
// (option-A shortcuts; its own kernel).
const POOLS: [number, number, number, number, number, number][] = [
  [1, 1, 1, 1, 1, 1], [1, 3, 7, 7, 2, 2], [2, 2, 17, 9, 3, 2], [1, 1, 33, 33, 3, 1], [2, 5, 8, 8, 8, 1], [64, 64, 8, 8, 8, 8], [3, 4, 9, 7, 2, 3],
  [4, 16, 32, 32, 1, 2], [2, 3, 9, 7, 1, 3],
];

function runPool(b: Backend, s: Pool2dShape, x: Float32Array, dy: Float32Array) {
  const y = new Float32Array(s.n * s.c * s.oh * s.ow);
  const dx = new Float32Array(x.length).fill(NaN);
  b.avgPool2dFwd({ ...s, x, y });
  b.avgPool2dBwd({ ...s, dy, dx });
  return [y, dx];
}

test('avgpool2d: case table, native vs ref and adjoint', () => {
  POOLS.forEach(([n, c, ih, iw, k, st], i) => {
    const s = poolShape(n, c, ih, iw, k, st);
    const x = randomFloats(n * c * ih * iw, i);
    const dy = randomFloats(n * c * s.oh * s.ow, i + 100);
    const nat = runPool(nativeBackend, s, x, dy);
    const ref = runPool(refBackend, s, x, dy);
    nat.forEach((a, j) => assertClose(a, ref[j]!, TOL, `output ${j} [${n},${c},${ih},${iw}] k=${k} s=${st} seed=${i}`));
    assertClose([dot(nat[0]!, dy)], [dot(x, nat[1]!)], { atol: 1e-4, rtol: 1e-5 }, `adjoint case ${i}`);
  });
});

test('avgpool2d: hand values', () => {
  const s = poolShape(1, 1, 2, 4, 2, 2);
  for (const b of [nativeBackend, refBackend]) {
    const [y, dx] = runPool(b, s, new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), new Float32Array([4, 8]));
    assert.deepEqual([...y!], [3.5, 5.5], `${b.name} fwd`);
    assert.deepEqual([...dx!], [1, 1, 2, 2, 1, 1, 2, 2], `${b.name} bwd`);
  }
});

function runUpPad(b: Backend, n: number, c: number, ih: number, iw: number, scale: number, before: number, after: number, seed: number) {
  const x = randomFloats(n * c * ih * iw, seed);
  const up = new Float32Array(x.length * scale * scale);
  b.upsampleNearestFwd({ n, c, ih, iw, scale, x, y: up });
  const dx = new Float32Array(x.length);
  b.upsampleNearestBwd({ n, c, ih, iw, scale, dy: randomFloats(up.length, seed + 1), dx });
  const hw = ih * iw;
  const padded = new Float32Array(n * (before + c + after) * hw).fill(NaN);
  b.padChannelsFwd({ n, c, hw, before, after, x, y: padded });
  const sliced = new Float32Array(x.length);
  b.padChannelsBwd({ n, c, hw, before, after, dy: randomFloats(padded.length, seed + 2), dx: sliced });
  return [up, dx, padded, sliced];
}

test('upsample and pad channels: case table, native vs ref', () => {
  const cases: [number, number, number, number, number, number, number][] = [
    [1, 1, 1, 1, 1, 0, 0], [1, 3, 7, 5, 2, 1, 0], [2, 2, 17, 3, 3, 0, 2], [1, 16, 8, 8, 2, 8, 8], [3, 5, 1, 33, 4, 2, 3],
  ];
  cases.forEach(([n, c, ih, iw, sc, bf, af], i) => {
    const nat = runUpPad(nativeBackend, n, c, ih, iw, sc, bf, af, 40 + i);
    const ref = runUpPad(refBackend, n, c, ih, iw, sc, bf, af, 40 + i);
    nat.forEach((a, j) => assertClose(a, ref[j]!, TOL, `output ${j} case ${i} seed=${40 + i}`));
  });
});

test('upsample and pad channels: hand values', () => {
  for (const b of [nativeBackend, refBackend]) {
    const y = new Float32Array(8);
    b.upsampleNearestFwd({ n: 1, c: 1, ih: 1, iw: 2, scale: 2, x: new Float32Array([1, 2]), y });
    assert.deepEqual([...y], [1, 1, 2, 2, 1, 1, 2, 2], `${b.name} upsample`);
    const dx = new Float32Array(2);
    b.upsampleNearestBwd({ n: 1, c: 1, ih: 1, iw: 2, scale: 2, dy: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), dx });
    assert.deepEqual([...dx], [14, 22], `${b.name} upsample bwd sums each block`);
    const p = new Float32Array(8).fill(NaN);
    b.padChannelsFwd({ n: 2, c: 1, hw: 2, before: 1, after: 0, x: new Float32Array([1, 2, 3, 4]), y: p });
    assert.deepEqual([...p], [0, 0, 1, 2, 0, 0, 3, 4], `${b.name} pad`);
  }
});

test('pool2d: bit-identical for 1 and 4 threads', () => {
  const run = () => {
    const s = poolShape(32, 16, 32, 32, 2, 2);
    const out = runPool(nativeBackend, s, randomFloats(32 * 16 * 32 * 32, 1), randomFloats(32 * 16 * 16 * 16, 2));
    const sub = poolShape(32, 16, 32, 32, 1, 2);
    out.push(...runPool(nativeBackend, sub, randomFloats(32 * 16 * 32 * 32, 3), randomFloats(32 * 16 * 16 * 16, 4)));
    return out.concat(runUpPad(nativeBackend, 16, 16, 16, 16, 2, 8, 8, 3));
  };
  const one = withThreads(1, run);
  const four = withThreads(4, run);
  one.forEach((a, i) => assertBitEqual(four[i]!, a, `output ${i} threads 4 vs 1`));
});

test('pool2d: bad inputs throw GranqError', () => {
  const f = new Float32Array(16);
  const s = poolShape(1, 1, 4, 4, 2, 2);
  assert.throws(() => nativeBackend.avgPool2dFwd({ ...s, x: f, y: new Float32Array(3) }), GranqError);
  assert.throws(() => nativeBackend.avgPool2dFwd({ ...s, oh: 3, x: f, y: new Float32Array(4) }), GranqError);
  assert.throws(() => nativeBackend.avgPool2dFwd({ ...poolShape(1, 1, 4, 4, 2, 2), k: 5, x: f, y: new Float32Array(4) }), GranqError);
  assert.throws(() => nativeBackend.avgPool2dBwd({ ...s, dy: new Float64Array(4) as Buf, dx: f }), GranqError);
  assert.throws(() => nativeBackend.upsampleNearestFwd({ n: 1, c: 1, ih: 2, iw: 2, scale: 2, x: new Float32Array(4), y: new Float32Array(15) }), GranqError);
  assert.throws(() => nativeBackend.padChannelsFwd({ n: 1, c: 2, hw: 4, before: -1, after: 0, x: new Float32Array(8), y: new Float32Array(4) }), GranqError);
  assert.throws(() => nativeBackend.padChannelsBwd({ n: 1, c: 2, hw: 4, before: 1, after: 1, dy: new Float32Array(8), dx: new Float32Array(8) }), GranqError);
});
