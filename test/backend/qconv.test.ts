/**
 * The integer convolution of integer inference: native (AVX-512 VNNI where the CPU has it) equal to the scalar
 * reference bit for bit over a case table (both reduction modes; offsets 0 for the fast path, non-zero activation
 * offsets where padding taps matter, non-zero and huge weight offsets; strides, 1x1 and 5x5 kernels, odd sizes),
 * the same with 1 and 4 threads, equal to a float convolution of the dequantized operands within float rounding,
 * and bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend, type Backend } from '../../src/backend/index.js';
import { qconvPackedWeights, type QconvArgs } from '../../src/backend/backend.js';
import { GranqError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/rng.js';
import { withThreads } from '../kit/threads.js';

type Shape = { n: number; c: number; h: number; w: number; o: number; k: number; stride: number; pad: number };
type Offsets = 'zero' | 'act' | 'weight' | 'both' | 'huge';

const outSize = (s: Shape) => [Math.floor((s.h + 2 * s.pad - s.k) / s.stride) + 1, Math.floor((s.w + 2 * s.pad - s.k) / s.stride) + 1] as const;

function operands(s: Shape, perInput: boolean, offsets: Offsets, seed: number): QconvArgs {
  const rng = new Rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rng.uniform() * (hi - lo + 1));
  const [oh, ow] = outSize(s);
  const xq = Uint8Array.from({ length: s.n * s.c * s.h * s.w }, () => int(0, 255));
  const wq = Int8Array.from({ length: s.o * s.c * s.k * s.k }, () => int(-128, 127));
  if (xq.length > 1) [xq[0], xq[1]] = [255, 0];
  if (wq.length > 1) [wq[0], wq[1]] = [-128, 127];
  const xbase = new Float64Array(s.n * s.c);
  const xscale = new Float32Array(s.n * s.c);
  const wz = new Float64Array(s.o * s.c);
  const wscale = new Float32Array(s.o * s.c);
  const actOff = offsets === 'act' || offsets === 'both' || offsets === 'huge';
  const wOff = offsets === 'weight' || offsets === 'both' || offsets === 'huge';
  const big = offsets === 'huge' ? 3e6 : 40;
  for (let n = 0; n < s.n; n++) {
    const b = actOff && rng.uniform() < 0.7 ? int(1, big) : 0;
    const sc = Math.fround(0.5 + 20 * rng.uniform());
    for (let i = 0; i < s.c; i++) {
      xbase[n * s.c + i] = perInput ? (actOff && rng.uniform() < 0.5 ? int(1, big) : 0) : b;
      xscale[n * s.c + i] = perInput ? Math.fround(0.5 + 20 * rng.uniform()) : sc;
    }
  }
  for (let o = 0; o < s.o; o++) {
    const z = wOff ? int(-big, big) : 0;
    const sc = Math.fround(1 + 50 * rng.uniform());
    for (let i = 0; i < s.c; i++) {
      wz[o * s.c + i] = perInput ? (wOff ? int(-big, big) : 0) : z;
      wscale[o * s.c + i] = perInput ? Math.fround(1 + 50 * rng.uniform()) : sc;
    }
  }
  const bias = Float32Array.from({ length: s.o }, () => Math.fround(rng.uniform() - 0.5));
  return { ...s, perInput, xq, xbase, xscale, wq, wz, wscale, bias, y: new Float32Array(s.n * s.o * oh * ow).fill(Number.NaN) };
}

function run(be: Backend, a: QconvArgs): Float32Array {
  const y = new Float32Array(a.y.length).fill(-7);
  be.qconv2d({ ...a, y });
  return y;
}

const SHAPES: Shape[] = [
  { n: 1, c: 1, h: 1, w: 1, o: 1, k: 1, stride: 1, pad: 0 },
  { n: 2, c: 3, h: 5, w: 5, o: 4, k: 3, stride: 1, pad: 1 },
  { n: 2, c: 16, h: 8, w: 8, o: 17, k: 3, stride: 2, pad: 1 },
  { n: 1, c: 5, h: 7, w: 6, o: 33, k: 1, stride: 1, pad: 0 },
  { n: 1, c: 7, h: 9, w: 9, o: 16, k: 1, stride: 2, pad: 0 },
  { n: 1, c: 4, h: 6, w: 6, o: 16, k: 3, stride: 1, pad: 0 },
  { n: 3, c: 2, h: 7, w: 5, o: 5, k: 5, stride: 1, pad: 2 },
  { n: 1, c: 32, h: 11, w: 11, o: 48, k: 3, stride: 1, pad: 1 },
  // Rows of 16 pixels and more (4-channel interleave in vector steps, then a tail), c a multiple of 4 or not.
  { n: 2, c: 8, h: 5, w: 35, o: 16, k: 3, stride: 1, pad: 1 },
  { n: 1, c: 13, h: 4, w: 33, o: 20, k: 3, stride: 2, pad: 1 },
];
const OFFSETS: Offsets[] = ['zero', 'act', 'weight', 'both', 'huge'];

test('qconv2d: case table, native bit for bit equal to the reference', () => {
  let seed = 1;
  for (const s of SHAPES) {
    for (const perInput of [true, false]) {
      for (const off of OFFSETS) {
        const a = operands(s, perInput, off, seed++);
        const got = run(nativeBackend, a);
        const want = run(refBackend, a);
        assert.ok(want.every(Number.isFinite), `reference finite: ${JSON.stringify(s)} ${perInput} ${off}`);
        assert.deepEqual(got, want, `${JSON.stringify(s)} perInput ${perInput} offsets ${off} seed=${seed - 1}`);
      }
    }
  }
});

test('qconv2d: relu clamps the result at 0 after the bias, native bit for bit equal to the reference', () => {
  let seed = 100;
  // Small shapes, and rows wider than one 16 x 16 tile of the vector epilogue (a partial tile, outputs not a multiple of 16).
  for (const s of [...SHAPES.slice(0, 4), ...SHAPES.slice(-2)]) {
    for (const perInput of [true, false]) {
      const a = operands(s, perInput, 'both', seed++);
      const plain = run(refBackend, a);
      const want = run(refBackend, { ...a, relu: true });
      assert.deepEqual(want, plain.map((v) => (v > 0 ? v : 0)));
      assert.deepEqual(run(nativeBackend, { ...a, relu: true }), want, `${JSON.stringify(s)} perInput ${perInput}`);
      assert.ok(plain.some((v) => v < 0), 'some outputs are negative before the relu');
    }
  }
});

test('qconv2d: weights pre-packed with qconvPackedWeights give the same bits as packed per call', () => {
  let seed = 200;
  for (const s of SHAPES) {
    for (const perInput of [true, false]) {
      const a = operands(s, perInput, 'both', seed++);
      assert.deepEqual(run(nativeBackend, { ...a, wpk: qconvPackedWeights(s.o, s.c, s.k, a.wq, perInput) }), run(nativeBackend, a), `${JSON.stringify(s)} perInput ${perInput}`);
    }
  }
});

test('qconv2d: the same with 1 and 4 threads', () => {
  for (const perInput of [true, false]) {
    const a = operands({ n: 3, c: 16, h: 16, w: 16, o: 32, k: 3, stride: 1, pad: 1 }, perInput, 'both', 7);
    assert.deepEqual(withThreads(4, () => run(nativeBackend, a)), withThreads(1, () => run(nativeBackend, a)));
  }
});

test('qconv2d: equals a float convolution of the dequantized operands (padding is the value 0) within float rounding', () => {
  for (const perInput of [true, false]) {
    const s: Shape = { n: 2, c: 6, h: 7, w: 7, o: 8, k: 3, stride: 1, pad: 1 };
    const a = operands(s, perInput, 'both', 11);
    const [oh, ow] = outSize(s);
    const hw = s.h * s.w, kk = s.k * s.k;
    const x = Float32Array.from(a.xq, (v, j) => (v + a.xbase[Math.floor(j / hw)]!) / a.xscale[Math.floor(j / hw)]!);
    const weight = Float32Array.from(a.wq, (v, j) => (v + a.wz[Math.floor(j / kk)]!) / a.wscale[Math.floor(j / kk)]!);
    const y = new Float32Array(s.n * s.o * oh * ow);
    refBackend.conv2dFwd({ n: s.n, ic: s.c, ih: s.h, iw: s.w, oc: s.o, kh: s.k, kw: s.k, stride: s.stride, pad: s.pad, oh, ow, x, weight, bias: a.bias, y });
    const got = run(nativeBackend, a);
    const scale = Math.max(...y.map(Math.abs));
    let worst = 0;
    for (let j = 0; j < y.length; j++) worst = Math.max(worst, Math.abs(got[j]! - y[j]!) / scale);
    assert.ok(worst < 1e-5, `perInput ${perInput}: max |int - float| / max |float| = ${worst}`);
  }
});

test('qconv2d: bad inputs throw GranqError', () => {
  const ok = operands({ n: 1, c: 2, h: 4, w: 4, o: 3, k: 3, stride: 1, pad: 1 }, false, 'zero', 3);
  const per = operands({ n: 1, c: 2, h: 4, w: 4, o: 3, k: 3, stride: 1, pad: 1 }, true, 'both', 3);
  const bad: [string, () => void][] = [
    ['x short', () => nativeBackend.qconv2d({ ...ok, xq: new Uint8Array(31) })],
    ['x as Int8Array', () => nativeBackend.qconv2d({ ...ok, xq: new Int8Array(32) as unknown as Uint8Array })],
    ['w as Uint8Array', () => nativeBackend.qconv2d({ ...ok, wq: new Uint8Array(54) as unknown as Int8Array })],
    ['xbase as Float32Array', () => nativeBackend.qconv2d({ ...ok, xbase: new Float32Array(2) as unknown as Float64Array })],
    ['wscale short', () => nativeBackend.qconv2d({ ...ok, wscale: new Float32Array(5) })],
    ['y short', () => nativeBackend.qconv2d({ ...ok, y: new Float32Array(47) })],
    ['bias long', () => nativeBackend.qconv2d({ ...ok, bias: new Float32Array(4) })],
    ['kernel larger than the input', () => nativeBackend.qconv2d({ ...ok, k: 7, pad: 0, wq: new Int8Array(3 * 2 * 49) })],
    ['stride 0', () => nativeBackend.qconv2d({ ...ok, stride: 0 })],
    ['wpk short', () => nativeBackend.qconv2d({ ...ok, wpk: new Int8Array(63) })],
    ['scales that differ along the channels without perInput', () => nativeBackend.qconv2d({ ...per, perInput: false })],
  ];
  for (const [what, fn] of bad) assert.throws(fn, GranqError, what);
});
