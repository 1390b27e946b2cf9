/**
 * Elementwise kernels: unary ops and derivatives (incl. the kinks at 0), broadcasting binary ops, axpby, strided
 * copies; native vs reference over case tables and seeded random shapes, float64 finite differences of the
 * reference derivatives, bit-identical results for 1 and 4 threads, and bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BINARY, UNARY, nativeBackend, refBackend, type Backend, type Buf, type Quad } from '../../src/backend/index.js';
import { GranqError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/rng.js';
import { assertBitEqual, assertClose } from '../kit/compare.js';
import { randomFloats } from '../kit/random.js';
import { withThreads } from '../kit/threads.js';

const SIZES = [1, 7, 17, 33, 1000, 70001];
const MATH_TOL = { atol: 1e-7, rtol: 1e-6 }; // tanh/exp/log may differ from V8's by an ulp
const ALPHA = 0.125;
const BETA = -0.5;
/** alpha and beta per op: hardtanh's are its bounds (min -1, max 1.5), the others' ALPHA and BETA. */
const params = (op: number) => (op === UNARY.hardtanh ? { alpha: -1, beta: 1.5 } : { alpha: ALPHA, beta: BETA });

/** Inputs in each op's domain; relu and leaky relu get exact zeros, hardtanh its exact bounds, to pin the kinks. */
function unaryInput(op: number, len: number, seed: number): Float32Array {
  const positive = op === UNARY.log || op === UNARY.sqrt;
  const x = randomFloats(len, seed, positive ? 0.05 : -3, 3);
  if (op === UNARY.relu || op === UNARY.leakyRelu) for (let i = 0; i < len; i += 5) x[i] = 0;
  if (op === UNARY.hardtanh) for (let i = 0; i < len; i += 5) x[i] = i % 2 ? -1 : 1.5;
  return x;
}

function runUnary(b: Backend, op: number, x: Float32Array, dy: Float32Array) {
  const y = new Float32Array(x.length);
  const dx = new Float32Array(x.length);
  b.unaryFwd({ op, len: x.length, x, y, ...params(op) });
  b.unaryBwd({ op, len: x.length, x, y, dy, dx, ...params(op) });
  return { y, dx };
}

test('unary: every op and size, native vs ref', () => {
  for (const [name, op] of Object.entries(UNARY)) {
    SIZES.forEach((len, i) => {
      const seed = 10 * op + i;
      const x = unaryInput(op, len, seed);
      const dy = randomFloats(len, seed + 1000);
      const nat = runUnary(nativeBackend, op, x, dy);
      // The ref derivative is fed the native y so that only the backward formula is compared.
      const ref = runUnary(refBackend, op, x, dy);
      const refDx = new Float32Array(len);
      refBackend.unaryBwd({ op, len, x, y: nat.y, dy, dx: refDx, ...params(op) });
      assertClose(nat.y, ref.y, MATH_TOL, `${name} fwd len=${len} seed=${seed}`);
      assertClose(nat.dx, refDx, { atol: 1e-7, rtol: 1e-6 }, `${name} bwd len=${len} seed=${seed}`);
    });
  }
});

test('unary backward in place (dx = dy) equals the out-of-place result, both backends', () => {
  for (const b of [nativeBackend, refBackend]) {
    for (const [name, op] of Object.entries(UNARY)) {
      const len = 70001;
      const x = unaryInput(op, len, 77 + op);
      const dy = randomFloats(len, 78 + op);
      const { y, dx } = runUnary(b, op, x, dy);
      const inPlace = dy.slice();
      b.unaryBwd({ op, len, x, y, dy: inPlace, dx: inPlace, ...params(op) });
      assertBitEqual(inPlace, dx, `${b.name} ${name}`);
    }
  }
});

test('unary: derivative at the kink and hand values', () => {
  const x = new Float32Array([-2, 0, 3]);
  const dy = new Float32Array([1, 1, 1]);
  for (const b of [nativeBackend, refBackend]) {
    const relu = runUnary(b, UNARY.relu, x, dy);
    assert.deepEqual([...relu.y], [0, 0, 3], `${b.name} relu`);
    assert.deepEqual([...relu.dx], [0, 0, 1], `${b.name} relu grad is 0 at x = 0`);
    const leaky = runUnary(b, UNARY.leakyRelu, x, dy);
    assert.deepEqual([...leaky.y], [-0.25, 0, 3], `${b.name} leaky relu`);
    assert.deepEqual([...leaky.dx], [ALPHA, ALPHA, 1], `${b.name} leaky relu grad is alpha at x = 0`);
    const aff = runUnary(b, UNARY.affine, x, dy);
    assert.deepEqual([...aff.y], [-0.75, -0.5, -0.125], `${b.name} affine`);
    assert.deepEqual([...aff.dx], [ALPHA, ALPHA, ALPHA], `${b.name} affine grad`);
    // hardtanh(-1, 1.5): clipped at both ends, gradient 0 at and beyond the bounds (torch's hardtanh_backward), NaN passes.
    const hx = new Float32Array([-2, -1, 0, 1.5, 3, NaN]);
    const ht = runUnary(b, UNARY.hardtanh, hx, new Float32Array(6).fill(1));
    assert.deepEqual([...ht.y], [-1, -1, 0, 1.5, 1.5, NaN], `${b.name} hardtanh`);
    assert.deepEqual([...ht.dx], [0, 0, 1, 0, 0, 0], `${b.name} hardtanh grad`);
  }
});

test('unary: reference derivatives match float64 finite differences', () => {
  const h = 1e-6;
  for (const [name, op] of Object.entries(UNARY)) {
    const x = Float64Array.from(randomFloats(33, 5 + op, 0.2, 2)); // away from the kinks
    if (op !== UNARY.log && op !== UNARY.sqrt) for (let i = 0; i < x.length; i += 2) x[i] = -x[i]!;
    const f = (v: Float64Array) => {
      const y = new Float64Array(v.length);
      refBackend.unaryFwd({ op, len: v.length, x: v, y, ...params(op) });
      return y;
    };
    const y = f(x);
    const dx = new Float64Array(x.length);
    refBackend.unaryBwd({ op, len: x.length, x, y, dy: new Float64Array(x.length).fill(1), dx, ...params(op) });
    const yp = f(x.map((v) => v + h));
    const ym = f(x.map((v) => v - h));
    assertClose(dx, yp.map((v, i) => (v - ym[i]!) / (2 * h)), { atol: 1e-6, rtol: 1e-5 }, `${name} derivative`);
  }
});

const contiguous = (s: Quad): Quad => [s[1] * s[2] * s[3], s[2] * s[3], s[3], 1];
const broadcastStrides = (s: Quad, keep: boolean[]): Quad => {
  const inner = s.map((d, i) => (keep[i] ? d : 1)) as Quad;
  const st = contiguous(inner);
  return st.map((v, i) => (keep[i] ? v : 0)) as Quad;
};
const extent = (s: Quad, st: Quad) => s.reduce((a, d, i) => a + (d - 1) * st[i]!, 0) + 1;

interface BinCase { shape: Quad; aStride: Quad; bStride: Quad; what: string }

function binCases(shape: Quad): BinCase[] {
  const [n, c, h, w] = shape;
  return [
    { shape, aStride: contiguous(shape), bStride: contiguous(shape), what: 'same shape' },
    { shape, aStride: contiguous(shape), bStride: broadcastStrides(shape, [false, true, false, false]), what: 'b per channel' },
    { shape, aStride: contiguous(shape), bStride: [0, 0, 0, 0], what: 'b scalar' },
    { shape, aStride: broadcastStrides(shape, [false, true, false, false]), bStride: contiguous(shape), what: 'a per channel' },
    { shape, aStride: contiguous(shape), bStride: broadcastStrides(shape, [true, false, true, true]), what: 'b per sample plane' },
    { shape, aStride: [c * h * w, 1, w * c, c], bStride: broadcastStrides(shape, [false, false, false, true]), what: 'a NHWC, b per column' },
    { shape: [n, c, h, w], aStride: [1, n, n * c, n * c * h], bStride: contiguous(shape), what: 'a fully permuted' },
  ];
}

function runBinary(b: Backend, op: number, cs: BinCase, a: Float32Array, bb: Float32Array): Float32Array {
  const y = new Float32Array(cs.shape.reduce((p, d) => p * d, 1));
  b.binaryFwd({ op, shape: cs.shape, aStride: cs.aStride, bStride: cs.bStride, a, b: bb, y });
  return y;
}

function checkBinary(shape: Quad, seed: number): void {
  for (const cs of binCases(shape)) {
    const a = randomFloats(extent(cs.shape, cs.aStride), seed, -2, 2);
    const b = randomFloats(extent(cs.shape, cs.bStride), seed + 1, 0.5, 2);
    for (const [name, op] of Object.entries(BINARY)) {
      // One correctly rounded operation per element: the reference (double, then rounded) is bit-identical.
      assertBitEqual(runBinary(nativeBackend, op, cs, a, b), runBinary(refBackend, op, cs, a, b), `${name} ${cs.what} [${shape}] seed=${seed}`);
    }
  }
}

test('binary: case table of shapes and broadcasts, native vs ref', () => {
  const shapes: Quad[] = [[1, 1, 1, 1], [1, 1, 1, 7], [2, 3, 1, 17], [1, 4, 5, 33], [3, 16, 8, 8], [4, 16, 32, 32]];
  shapes.forEach((s, i) => checkBinary(s, 300 + 10 * i));
});

test('binary: seeded random shapes', () => {
  const seed = 9001;
  const rng = new Rng(seed);
  for (let t = 0; t < 20; t++) {
    const shape = [0, 0, 0, 0].map(() => 1 + (rng.uint32() % 9)) as Quad;
    checkBinary(shape, seed + t);
  }
});

test('axpby: beta 0 overwrites NaN garbage; general case', () => {
  for (const len of SIZES) {
    const x = randomFloats(len, len);
    for (const b of [nativeBackend, refBackend]) {
      const y = new Float32Array(len).fill(NaN);
      b.axpby({ len, alpha: 2, x, beta: 0, y });
      assertBitEqual(y, x.map((v) => 2 * v), `${b.name} beta 0 len=${len}`);
    }
    const y0 = randomFloats(len, len + 1);
    const yn = y0.slice();
    const yr = y0.slice();
    nativeBackend.axpby({ len, alpha: 0.3, x, beta: 0.9, y: yn });
    refBackend.axpby({ len, alpha: 0.3, x, beta: 0.9, y: yr });
    assertClose(yn, yr, { atol: 1e-7, rtol: 1e-6 }, `axpby len=${len}`); // FMA contraction is allowed
  }
});

test('copyStrided: permutations and broadcasts, native vs ref', () => {
  const shape: Quad = [2, 3, 5, 7];
  const [n, c, h, w] = shape;
  const cases: [Quad, Quad][] = [
    [shape, contiguous(shape)],
    [shape, [c * h * w, 1, w * c, c]], // read NHWC memory as NCHW
    [[w, h, c, n], [1, w, w * h, w * h * c]], // full reversal
    [shape, [0, 1, 0, 0]], // broadcast per channel
    [[1, 1, 1, 33], [0, 0, 0, 0]], // scalar broadcast
    [[1, 17, 1, 1], [0, 2, 0, 0]], // stride 2
  ];
  for (const [s, st] of cases) {
    const x = randomFloats(extent(s, st), 7);
    const len = s.reduce((p, d) => p * d, 1);
    const yn = new Float32Array(len);
    const yr = new Float32Array(len);
    nativeBackend.copyStrided({ shape: s, stride: st, x, y: yn });
    refBackend.copyStrided({ shape: s, stride: st, x, y: yr });
    assertBitEqual(yn, yr, `copyStrided shape [${s}] stride [${st}]`);
  }
});

test('copyStrided with yStride: interleave, de-interleave and a frame, native vs ref; untouched elements stay', () => {
  // [N*C*H, 2, W, 2] phases interleaved into a 2x upsampled grid, the reverse, and a copy into the interior of a
  // zero frame (an image padded by 1).
  const [nc, h, w] = [6, 5, 8];
  const cases: { shape: Quad; stride: Quad; yStride: Quad; ylen: number }[] = [
    { shape: [nc * h, 2, w, 2], stride: [w, 2 * nc * h * w, 1, nc * h * w], yStride: [4 * w, 2 * w, 2, 1], ylen: 4 * nc * h * w },
    { shape: [2, 2, nc * h, w], stride: [2 * w, 1, 4 * w, 2], yStride: [2 * nc * h * w, nc * h * w, w, 1], ylen: 4 * nc * h * w },
    { shape: [1, nc, h, w], stride: [0, h * w, w, 1], yStride: [0, (h + 2) * (w + 2), w + 2, 1], ylen: nc * (h + 2) * (w + 2) - (w + 2) - 1 },
    { shape: [3, 1, 4, 5], stride: [20, 0, 5, 1], yStride: [1, 7, 3, 12], ylen: 3 * 4 * 5 * 4 },
  ];
  for (const { shape, stride, yStride, ylen } of cases) {
    const x = randomFloats(extent(shape, stride), 9);
    const yn = new Float32Array(ylen).fill(-7);
    const yr = new Float32Array(ylen).fill(-7);
    nativeBackend.copyStrided({ shape, stride, x, y: yn, yStride });
    refBackend.copyStrided({ shape, stride, x, y: yr, yStride });
    assertBitEqual(yn, yr, `copyStrided shape [${shape}] stride [${stride}] yStride [${yStride}]`);
    const len = shape.reduce((p, d) => p * d, 1);
    assert.equal(yn.filter((v) => v === -7).length, ylen - len, 'every other element untouched');
  }
  const x = new Float32Array(16);
  assert.throws(() => nativeBackend.copyStrided({ shape: [1, 1, 4, 4], stride: [0, 0, 4, 1], x, y: new Float32Array(16), yStride: [0, 0, 4, 2] }), /overlapping/);
  assert.throws(() => nativeBackend.copyStrided({ shape: [1, 1, 4, 4], stride: [0, 0, 4, 1], x, y: new Float32Array(18), yStride: [0, 0, 5, 1] }), GranqError);
});

test('eltwise: bit-identical for 1 and 4 threads', () => {
  const shape: Quad = [16, 16, 32, 33];
  const len = shape.reduce((p, d) => p * d, 1);
  const run = () => {
    const out: Float32Array[] = [];
    for (const op of Object.values(UNARY)) {
      const r = runUnary(nativeBackend, op, unaryInput(op, len, 1), randomFloats(len, 2));
      out.push(r.y, r.dx);
    }
    for (const cs of binCases(shape)) {
      out.push(runBinary(nativeBackend, BINARY.mul, cs, randomFloats(extent(shape, cs.aStride), 3), randomFloats(extent(shape, cs.bStride), 4)));
    }
    const y = randomFloats(len, 5);
    nativeBackend.axpby({ len, alpha: 0.3, x: randomFloats(len, 6), beta: 0.9, y });
    const t = new Float32Array(len);
    nativeBackend.copyStrided({ shape, stride: [1, 16, 256, 256 * 32], x: randomFloats(len, 8), y: t });
    const u = new Float32Array(len);
    nativeBackend.copyStrided({ shape, stride: contiguous(shape), x: randomFloats(len, 9), y: u, yStride: [1, 16, 256, 256 * 32] });
    out.push(y, t, u);
    return out;
  };
  const one = withThreads(1, run);
  const four = withThreads(4, run);
  one.forEach((a, i) => assertBitEqual(four[i]!, a, `output ${i} threads 4 vs 1`));
});

test('eltwise: bad inputs throw GranqError', () => {
  const f = new Float32Array(8);
  const q: Quad = [1, 1, 2, 4];
  assert.throws(() => nativeBackend.unaryFwd({ op: UNARY.relu, len: 8, x: new Float32Array(7), y: f, alpha: 0, beta: 0 }), GranqError);
  assert.throws(() => nativeBackend.unaryFwd({ op: 8, len: 8, x: f, y: f, alpha: 0, beta: 0 }), GranqError);
  assert.throws(() => nativeBackend.unaryBwd({ op: UNARY.tanh, len: 8, x: f, y: f, dy: new Float64Array(8) as Buf, dx: f, alpha: 0, beta: 0 }), GranqError);
  assert.throws(() => nativeBackend.binaryFwd({ op: BINARY.add, shape: q, aStride: [8, 8, 4, 1], bStride: [8, 8, 4, 2], a: f, b: f, y: f }), GranqError);
  assert.throws(() => nativeBackend.binaryFwd({ op: BINARY.add, shape: q, aStride: [8, 8, 4, -1] as Quad, bStride: [0, 0, 0, 0], a: f, b: f, y: f }), GranqError);
  assert.throws(() => nativeBackend.axpby({ len: 9, alpha: 1, x: f, beta: 0, y: f }), GranqError);
  assert.throws(() => nativeBackend.copyStrided({ shape: [1, 1, 3, 4], stride: [0, 0, 4, 1], x: f, y: new Float32Array(12) }), GranqError);
});

test('addRelu: relu(a + b) bit-identical to add then relu, native vs ref, thread-independent, bad input', () => {
  for (const n of SIZES) {
    const a = randomFloats(n, 1), b = randomFloats(n, 2);
    const sum = new Float32Array(n), want = new Float32Array(n);
    nativeBackend.binaryFwd({ op: BINARY.add, shape: [1, 1, 1, n], aStride: [0, 0, 0, 1], bStride: [0, 0, 0, 1], a, b, y: sum });
    nativeBackend.unaryFwd({ op: UNARY.relu, len: n, x: sum, y: want, alpha: 0, beta: 0 });
    const got = new Float32Array(n);
    nativeBackend.addReluFwd({ len: n, a, b, y: got });
    assertBitEqual(got, want, `native n=${n}`);
    const ref = new Float32Array(n);
    refBackend.addReluFwd({ len: n, a, b, y: ref });
    assertBitEqual(ref, want, `ref n=${n}`);
    const one = withThreads(1, () => { const y = new Float32Array(n); nativeBackend.addReluFwd({ len: n, a, b, y }); return y; });
    assertBitEqual(one, got, `1 thread n=${n}`);
  }
  const nan = new Float32Array(1);
  nativeBackend.addReluFwd({ len: 1, a: Float32Array.of(NaN), b: Float32Array.of(1), y: nan });
  assert.ok(Number.isNaN(nan[0]), 'NaN passes, as relu');
  assert.throws(() => nativeBackend.addReluFwd({ len: 4, a: new Float32Array(4), b: new Float32Array(3), y: new Float32Array(4) }), GranqError);
});
