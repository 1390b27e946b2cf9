/**
 * Elementwise kernels: unary ops and derivatives (incl. the kinks at 0), broadcasting binary ops, axpby, strided
 * copies, the 2x2 phase merge and split; native vs reference over case tables and seeded random shapes, float64
 * finite differences of the reference derivatives, bit-identical results for 1 and 4 threads, and bad inputs.
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

test('phaseMerge2 / phaseSplit2: the 2x2 phases, native vs ref, merge and split inverse, the frame zero', () => {
  // Sizes that are and are not a multiple of the SIMD width, a single pixel, and 2 or 3 channels per image.
  const cases = [
    { rows: 1, h: 1, w: 1, channels: 1 }, { rows: 6, h: 5, w: 7, channels: 3 }, { rows: 4, h: 8, w: 8, channels: 2 },
    { rows: 2, h: 3, w: 17, channels: 1 }, { rows: 32, h: 16, w: 16, channels: 16 },
  ];
  for (const { rows, h, w, channels } of cases) {
    const len = 4 * rows * h * w;
    const at = `rows ${rows}, ${h}x${w}`;
    const phases = randomFloats(len, rows + h + w);
    const merged = [nativeBackend, refBackend].map((be) => {
      const y = new Float32Array(len).fill(NaN);
      be.phaseMerge2({ rows, h, w, x: phases, y });
      return y;
    });
    assertBitEqual(merged[0]!, merged[1]!, `phaseMerge2 ${at}`);
    // Pixel (2i + a, 2j + b) of plane r is element (i, j) of phase a * 2 + b, by hand for the last plane's last pixel.
    const [r, i, j] = [rows - 1, h - 1, w - 1];
    for (let ab = 0; ab < 4; ab++) {
      assert.equal(merged[0]![(r * 2 * h + 2 * i + (ab >> 1)) * 2 * w + 2 * j + (ab & 1)], phases[((ab * rows + r) * h + i) * w + j], `${at} phase ${ab}`);
    }
    const flen = 4 * rows * (h + 1) * (w + 1);
    const split = [nativeBackend, refBackend].map((be) => {
      const y = new Float32Array(len).fill(NaN);
      const framed = new Float32Array(flen).fill(NaN);
      be.phaseSplit2({ rows, h, w, x: merged[0]!, y, framed, channels });
      return { y, framed };
    });
    assertBitEqual(split[0]!.y, phases, `phaseSplit2 inverts phaseMerge2, ${at}`);
    assertBitEqual(split[1]!.y, phases, `ref phaseSplit2 inverts phaseMerge2, ${at}`);
    assertBitEqual(split[0]!.framed, split[1]!.framed, `phaseSplit2 framed ${at}`);
    // The frame: each plane holds h * w values and (h + 1) * (w + 1) - h * w zeros, nothing left unwritten.
    assert.equal(split[0]!.framed.filter((v) => v === 0).length, 4 * rows * (h + w + 1), `${at}: the frames are zero`);
    assert.equal(split[0]!.framed.filter((v) => Number.isNaN(v)).length, 0, `${at}: every element written`);
    // Without a frame only y is written.
    const y = new Float32Array(len);
    nativeBackend.phaseSplit2({ rows, h, w, x: merged[0]!, y });
    assertBitEqual(y, phases, `phaseSplit2 without framed, ${at}`);
  }
  const x = new Float32Array(4 * 6);
  for (const [what, p] of [
    ['y too short', () => nativeBackend.phaseMerge2({ rows: 6, h: 1, w: 1, x, y: new Float32Array(23) })],
    ['h 0', () => nativeBackend.phaseMerge2({ rows: 6, h: 0, w: 1, x, y: new Float32Array(24) })],
    ['channels not dividing rows', () => nativeBackend.phaseSplit2({ rows: 6, h: 1, w: 1, x, y: new Float32Array(24), framed: new Float32Array(96), channels: 4 })],
    ['framed too short', () => nativeBackend.phaseSplit2({ rows: 6, h: 1, w: 1, x, y: new Float32Array(24), framed: new Float32Array(95), channels: 3 })],
    // The type rules this out; an untyped caller still gets the addon's error.
    ['framed without channels', () => nativeBackend.phaseSplit2({ rows: 6, h: 1, w: 1, x, y: new Float32Array(24), framed: new Float32Array(96) } as never)],
  ] as const) assert.throws(p, GranqError, what);
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
    const u = new Float32Array(len);  // shape's 16 * 16 * 32 * 33 elements as 4 phases of 64 planes of 32 x 33
    const framed = new Float32Array(4 * 64 * 33 * 34);
    nativeBackend.phaseSplit2({ rows: 64, h: 32, w: 33, x: randomFloats(len, 9), y: u, framed, channels: 16 });
    const v = new Float32Array(len);
    nativeBackend.phaseMerge2({ rows: 64, h: 32, w: 33, x: randomFloats(len, 10), y: v });
    out.push(y, t, u, framed, v);
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
