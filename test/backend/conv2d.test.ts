/**
 * conv2d: native vs the scalar reference (forward, backward data, backward weight) over a case table (dense, grouped and
 * depthwise) and seeded random shapes; thread-count determinism; float64 adjoint identities on the reference; bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Buf, Conv2dShape } from '../../src/backend/backend.js';
import { nativeBackend } from '../../src/backend/native.js';
import { refBackend } from '../../src/backend/ref/index.js';
import { GranqError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/rng.js';
import { assertBitEqual, assertClose } from '../kit/compare.js';
import { randomFloats, toF64 } from '../kit/random.js';
import { withThreads } from '../kit/threads.js';

type Case = [n: number, ic: number, ih: number, iw: number, oc: number, kh: number, kw: number, stride: number, pad: number, bias: boolean, groups?: number];

function shape([n, ic, ih, iw, oc, kh, kw, stride, pad, , groups]: Case): Conv2dShape {
  const oh = Math.floor((ih + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((iw + 2 * pad - kw) / stride) + 1;
  return groups === undefined ? { n, ic, ih, iw, oc, kh, kw, stride, pad, oh, ow } : { n, ic, ih, iw, oc, kh, kw, stride, pad, oh, ow, groups };
}
const weightLen = (s: Conv2dShape) => s.oc * (s.ic / (s.groups ?? 1)) * s.kh * s.kw;

// n ic ih iw oc kh kw stride pad bias
const CASES: Case[] = [
  [1, 1, 1, 1, 1, 1, 1, 1, 0, false], // size 1
  [1, 1, 1, 1, 1, 1, 1, 1, 0, true],
  [2, 7, 7, 7, 17, 1, 1, 1, 0, true], // 1x1, odd sizes
  [2, 8, 9, 9, 17, 1, 1, 2, 0, false], // 1x1 stride 2 (projection shortcut)
  [1, 3, 8, 8, 16, 3, 3, 1, 1, true], // batch 1, 3x3 pad 1
  [2, 17, 9, 9, 7, 3, 3, 1, 1, false],
  [2, 5, 7, 7, 9, 3, 3, 1, 0, true], // pad 0
  [2, 7, 9, 9, 33, 3, 3, 2, 1, true], // stride 2
  [3, 16, 16, 16, 32, 3, 3, 2, 1, false],
  [2, 6, 10, 11, 5, 3, 5, 1, 1, true], // kh != kw, ih != iw
  [2, 4, 11, 13, 6, 3, 3, 3, 2, false], // stride 3, pad 2
  [2, 3, 7, 35, 4, 3, 3, 1, 1, true], // rows wider than one 32-column panel
  [5, 33, 17, 17, 33, 3, 3, 1, 1, true], // k = 297 crosses the 256 k-block; batch not a multiple of 4
  [2, 64, 8, 8, 64, 3, 3, 1, 1, false], // ResNet-20's last stage, k = 576
  // Widths the direct AVX-512 path takes (ow % 16 == 0 or ow == 8), including tiles cut short by oh * ow % 32 != 0.
  [2, 5, 16, 16, 9, 3, 3, 1, 1, true],
  [1, 3, 7, 32, 5, 3, 3, 1, 1, false],
  [2, 4, 5, 16, 3, 3, 3, 1, 1, true],
  [2, 3, 5, 8, 4, 3, 3, 1, 1, false],
  [2, 4, 32, 32, 8, 3, 3, 2, 1, true],
  [2, 8, 16, 16, 16, 1, 1, 2, 0, false],
  [2, 5, 24, 24, 6, 3, 3, 3, 1, true], // stride 3: backward data phases of width 8
  [2, 3, 16, 16, 4, 5, 5, 2, 2, false], // 5x5 stride 2
  [2, 3, 15, 15, 5, 3, 3, 2, 1, true], // stride 2, odd input width, ow = 8
  [1, 2, 17, 17, 3, 3, 3, 2, 0, false],
  [2, 6, 11, 8, 5, 3, 3, 1, 0, true], // pad 0 with ow != iw
  [2, 6, 9, 48, 7, 5, 3, 1, 2, false],
];

// Grouped convolution: depthwise (groups = ic; channel multiplier oc/ic of 1, 2 or 3) and general groups, whose
// per-group convs take the packed, direct and strided-backward paths.
const GROUP_CASES: Case[] = [
  [2, 8, 9, 9, 8, 3, 3, 1, 1, true, 8], // depthwise, multiplier 1, stride 1
  [2, 8, 9, 9, 16, 3, 3, 2, 1, false, 8], // depthwise, multiplier 2, stride 2
  [3, 6, 16, 16, 6, 3, 3, 1, 1, true, 6],
  [2, 5, 15, 15, 10, 3, 3, 2, 1, true, 5], // stride 2, odd width
  [2, 4, 16, 16, 8, 3, 3, 2, 1, false, 4], // stride 2, even width (MobileNetV2's downsampling block)
  [1, 4, 7, 7, 12, 5, 5, 1, 2, false, 4], // 5x5 pad 2, multiplier 3
  [2, 3, 8, 9, 3, 3, 3, 1, 0, true, 3], // pad 0
  [2, 4, 6, 6, 4, 1, 1, 1, 0, false, 4], // 1x1 depthwise
  [2, 4, 9, 9, 8, 3, 3, 3, 1, true, 4], // stride 3
  [1, 1, 5, 5, 2, 3, 3, 1, 1, true, 1], // one input channel: groups 1 is also depthwise
  [2, 8, 9, 9, 12, 3, 3, 1, 1, true, 2], // 2 groups, packed path
  [2, 12, 16, 16, 8, 3, 3, 2, 1, false, 4], // 4 groups, ow 8: direct path, strided backward
  [2, 6, 16, 16, 6, 3, 3, 1, 1, true, 3], // 3 groups of 2 channels, ow 16
  [3, 8, 7, 7, 4, 1, 1, 2, 0, false, 2], // 1x1 stride 2, 2 groups
  [2, 9, 11, 11, 6, 3, 3, 2, 1, true, 3],
];

/** float32 products summed over ic kh kw (and the batch and pixels for the weight gradient). */
const tol = (terms: number) => ({ atol: 1e-4 * Math.max(1, terms / 64), rtol: 1e-4 });

interface Outs { y: Float32Array; dx: Float32Array; dw: Float32Array; db: Float32Array | null }

function runAll(backend: typeof nativeBackend, c: Case, seed: number): Outs {
  return runShape(backend, shape(c), c[9], seed);
}

function runShape(backend: typeof nativeBackend, s: Conv2dShape, hasBias: boolean, seed: number, xIn?: Float32Array): Outs {
  const x = xIn ?? randomFloats(s.n * s.ic * s.ih * s.iw, seed);
  const weight = randomFloats(weightLen(s), seed + 1);
  const bias = hasBias ? randomFloats(s.oc, seed + 2) : null;
  const dy = randomFloats(s.n * s.oc * s.oh * s.ow, seed + 3);
  const y = new Float32Array(dy.length).fill(7); // outputs are overwritten, never accumulated
  const dx = new Float32Array(x.length).fill(7);
  const dw = new Float32Array(weight.length).fill(7);
  const db = hasBias ? new Float32Array(s.oc).fill(7) : null;
  backend.conv2dFwd({ ...s, x, weight, bias, y });
  backend.conv2dBwdData({ ...s, dy, weight, dx });
  backend.conv2dBwdWeight({ ...s, x, dy, dweight: dw, dbias: db });
  return { y, dx, dw, db };
}

function compare(c: Case, seed: number, what: string): void {
  const s = shape(c);
  const got = runAll(nativeBackend, c, seed);
  const want = runAll(refBackend, c, seed);
  const g = s.groups ?? 1;
  const kTerms = (s.ic / g) * s.kh * s.kw;
  assertClose(got.y, want.y, tol(kTerms), `${what} fwd`);
  assertClose(got.dx, want.dx, tol((s.oc / g) * s.kh * s.kw), `${what} bwd_data`);
  assertClose(got.dw, want.dw, tol(s.n * s.oh * s.ow), `${what} bwd_weight`);
  if (want.db) assertClose(got.db!, want.db, tol(s.n * s.oh * s.ow), `${what} dbias`);
}

test('conv2d native matches ref: case table', () => {
  for (const c of CASES) compare(c, 21, `case [${c.join(',')}]`);
});

test('conv2d native matches ref: grouped and depthwise case table', () => {
  for (const c of GROUP_CASES) compare(c, 23, `case [${c.join(',')}]`);
});

test('conv2d groups = 1 given explicitly is bit-identical to groups left out', () => {
  for (const c of CASES.slice(0, 8)) {
    const without = runAll(nativeBackend, c, 5);
    const one = c.slice() as Case;
    one[10] = 1;
    const withOne = runAll(nativeBackend, one, 5);
    for (const k of ['y', 'dx', 'dw', 'db'] as const) if (without[k]) assertBitEqual(withOne[k]!, without[k], `${k} [${c.join(',')}]`);
  }
});

test('conv2d native matches ref: seeded random grouped shapes', () => {
  for (let seed = 300; seed < 308; seed++) {
    const r = new Rng(seed);
    const pick = (k: number) => r.uint32() % k;
    const groups = 1 + pick(6);
    const depthwise = pick(2) === 1;
    const ic = groups * (depthwise ? 1 : 1 + pick(4));
    const oc = groups * (1 + pick(3));
    const kh = [1, 3, 5][pick(3)]!;
    const pad = pick(kh);
    const c: Case = [1 + pick(4), ic, kh + pick(12), kh + pick(20), oc, kh, kh, 1 + pick(3), pad, pick(2) === 1, groups];
    compare(c, seed, `seed ${seed}: case [${c.join(',')}]`);
  }
});

test('conv2d native matches ref: seeded random shapes', () => {
  for (let seed = 200; seed < 210; seed++) {
    const r = new Rng(seed);
    const pick = (k: number) => r.uint32() % k;
    const kh = [1, 3, 5][pick(3)]!, kw = [1, 3][pick(2)]!;
    const pad = pick(Math.min(kh, kw));
    const ih = kh + pick(12), iw = kw + pick(40);
    const c: Case = [1 + pick(6), 1 + pick(20), ih, iw, 1 + pick(40), kh, kw, 1 + pick(3), pad, pick(2) === 1];
    compare(c, seed, `seed ${seed}: case [${c.join(',')}]`);
  }
});

test('conv2d is bit-identical with 1, 3 and 4 threads', () => {
  // The first two take the packed-im2col path; the last three the direct path (output width 16 or 8), whose weight
  // gradient splits output channels across threads when its image chunks do not divide among them.
  const cases: Case[] = [[9, 16, 12, 12, 24, 3, 3, 1, 1, true], [11, 8, 13, 13, 16, 3, 3, 2, 1, true],
    [3, 8, 16, 16, 24, 3, 3, 1, 1, true], [5, 4, 8, 8, 10, 3, 3, 1, 1, false], [7, 6, 32, 32, 13, 3, 3, 2, 1, true],
    // depthwise (multiplier 1 and 2, strides 1 and 2) and grouped
    [9, 12, 16, 16, 12, 3, 3, 1, 1, true, 12], [7, 6, 15, 15, 12, 3, 3, 2, 1, false, 6], [5, 8, 16, 16, 8, 3, 3, 2, 1, true, 2]];
  for (const c of cases) {
    const one = withThreads(1, () => runAll(nativeBackend, c, 3));
    for (const t of [3, 4]) {
      const many = withThreads(t, () => runAll(nativeBackend, c, 3));
      for (const k of ['y', 'dx', 'dw', 'db'] as const) if (one[k]) assertBitEqual(many[k]!, one[k], `${k} [${c.join(',')}], ${t} threads`);
    }
  }
});

function dot(a: Buf, b: Buf): number {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc += a[i]! * b[i]!;
  return acc;
}

test('conv2d ref backward kernels are the adjoints of the forward (float64)', () => {
  for (const c of [...CASES, ...GROUP_CASES]) {
    const s = shape(c);
    const x = toF64(randomFloats(s.n * s.ic * s.ih * s.iw, 31));
    const weight = toF64(randomFloats(weightLen(s), 32));
    const dy = toF64(randomFloats(s.n * s.oc * s.oh * s.ow, 33));
    const y = new Float64Array(dy.length);
    const dx = new Float64Array(x.length);
    const dw = new Float64Array(weight.length);
    const db = new Float64Array(s.oc);
    refBackend.conv2dFwd({ ...s, x, weight, bias: null, y });
    refBackend.conv2dBwdData({ ...s, dy, weight, dx });
    refBackend.conv2dBwdWeight({ ...s, x, dy, dweight: dw, dbias: db });
    const lhs = dot(y, dy);
    const scale = Math.max(1, Math.abs(lhs));
    const what = `case [${c.join(',')}]`;
    assert.ok(Math.abs(lhs - dot(x, dx)) < 1e-10 * scale, `${what}: <conv(x,w),dy> ${lhs} vs <x,bwd_data> ${dot(x, dx)}`);
    assert.ok(Math.abs(lhs - dot(weight, dw)) < 1e-10 * scale, `${what}: <conv(x,w),dy> ${lhs} vs <w,bwd_weight> ${dot(weight, dw)}`);
    const sumDy = dy.reduce((a, v) => a + v, 0);
    assert.ok(Math.abs(sumDy - db.reduce((a, v) => a + v, 0)) < 1e-10 * Math.max(1, Math.abs(sumDy)), `${what}: sum dy vs dbias.1`);
  }
});

// Top / left padding of its own (padTop, padLeft): n ic ih iw oc kh kw padTop padLeft, bottom and right padding.
type AsymCase = [n: number, ic: number, ih: number, iw: number, oc: number, kh: number, kw: number, top: number, left: number, bottom: number, right: number];
const ASYM_CASES: AsymCase[] = [
  [2, 5, 8, 8, 6, 2, 2, 1, 1, 0, 0], // the fused upsample conv's phases (0, 0) .. (1, 1), ow 8: direct path
  [2, 5, 8, 8, 6, 2, 2, 0, 1, 1, 0],
  [2, 5, 8, 8, 6, 2, 2, 1, 0, 0, 1],
  [2, 5, 8, 8, 6, 2, 2, 0, 0, 1, 1],
  [1, 4, 16, 16, 20, 2, 2, 1, 0, 0, 1], // ow 16: direct path
  [2, 3, 7, 9, 5, 2, 2, 1, 1, 0, 0], // ow 9: packed path
  [2, 3, 7, 6, 4, 3, 3, 2, 0, 1, 2], // 3x3, every padding different
  [1, 2, 5, 5, 3, 3, 3, 0, 2, 0, 0],
];

function asymShape([n, ic, ih, iw, oc, kh, kw, top, left, bottom, right]: AsymCase): Conv2dShape {
  return { n, ic, ih, iw, oc, kh, kw, stride: 1, pad: 0, padTop: top, padLeft: left, oh: ih + top + bottom - kh + 1, ow: iw + left + right - kw + 1 };
}

test('conv2d with padTop / padLeft: native matches ref, and equals the conv of the explicitly padded input bit for bit', () => {
  for (const c of ASYM_CASES) {
    const s = asymShape(c), what = `asym [${c.join(',')}]`;
    const got = runShape(nativeBackend, s, true, 31), want = runShape(refBackend, s, true, 31);
    assertClose(got.y, want.y, tol(s.ic * s.kh * s.kw), `${what} fwd`);
    assertClose(got.dx, want.dx, tol(s.oc * s.kh * s.kw), `${what} bwd_data`);
    assertClose(got.dw, want.dw, tol(s.n * s.oh * s.ow), `${what} bwd_weight`);
    assertClose(got.db!, want.db!, tol(s.n * s.oh * s.ow), `${what} dbias`);
    // The same window copied out with its zeros, pad 0: forward and weight gradient are the same sums in the same order.
    const [n, ic, ih, iw, , , , top, left, bottom, right] = c;
    const ph = ih + top + bottom, pw = iw + left + right;
    const x = randomFloats(n * ic * ih * iw, 31), xp = new Float32Array(n * ic * ph * pw);
    for (let i = 0; i < n * ic; i++)
      for (let r = 0; r < ih; r++) xp.set(x.subarray((i * ih + r) * iw, (i * ih + r + 1) * iw), (i * ph + r + top) * pw + left);
    const { padTop: _t, padLeft: _l, ...plain } = s;
    const copied = runShape(nativeBackend, { ...plain, ih: ph, iw: pw }, true, 31, xp);
    assertBitEqual(got.y, copied.y, `${what} fwd vs padded copy`);
    assertBitEqual(got.dw, copied.dw, `${what} bwd_weight vs padded copy`);
  }
});

test('conv2d rejects bad padTop / padLeft with one clear GranqError', () => {
  const s = asymShape([2, 3, 8, 8, 4, 2, 2, 1, 0, 0, 1]);
  const x = new Float32Array(2 * 3 * 64), weight = new Float32Array(4 * 3 * 4), y = new Float32Array(2 * 4 * 64);
  nativeBackend.conv2dFwd({ ...s, x, weight, bias: null, y });
  const bad = (extra: Partial<Conv2dShape>, re: RegExp) =>
    assert.throws(() => nativeBackend.conv2dFwd({ ...s, ...extra, x, weight, bias: null, y }),
      (e: unknown) => e instanceof GranqError && re.test(e.message), JSON.stringify(extra));
  bad({ padTop: 2 }, /padTop: expected an integer in \[0, 1\]/);
  bad({ padLeft: -1 }, /padLeft: expected an integer in \[0, 1\]/);
  bad({ stride: 2 }, /padTop\/padLeft need stride 1 and groups 1/);
  bad({ oh: 10 }, /oh\/ow: with padTop 1 and padLeft 0 expected 8\.\.9 x 7\.\.8, got 10x8/);
  bad({ ow: 9 }, /oh\/ow: with padTop 1 and padLeft 0 expected 8\.\.9 x 7\.\.8, got 8x9/);
  nativeBackend.conv2dFwd({ ...s, x, weight, bias: null, y }); // still works afterwards
});

test('conv2d rejects bad input with GranqError', () => {
  const s = shape([2, 3, 5, 5, 4, 3, 3, 1, 1, false]);
  const x = new Float32Array(2 * 3 * 25), weight = new Float32Array(4 * 3 * 9), y = new Float32Array(2 * 4 * 25);
  assert.throws(() => nativeBackend.conv2dFwd({ ...s, x: x.subarray(1), weight, bias: null, y }), GranqError);
  assert.throws(() => nativeBackend.conv2dFwd({ ...s, x: Float64Array.from(x), weight, bias: null, y }), GranqError);
  assert.throws(() => nativeBackend.conv2dFwd({ ...s, x, weight, bias: new Float32Array(3), y }), GranqError);
  assert.throws(() => nativeBackend.conv2dFwd({ ...s, oh: 4, x, weight, bias: null, y }), GranqError);
  assert.throws(() => nativeBackend.conv2dBwdData({ ...s, dy: y, weight, dx: new Float32Array(1) }), GranqError);
  assert.throws(() => nativeBackend.conv2dBwdWeight({ ...s, x, dy: y, dweight: new Float32Array(weight.length + 1), dbias: null }), GranqError);
  assert.throws(() => nativeBackend.conv2dFwd({ ...s, pad: 3, oh: 9, ow: 9, x, weight, bias: null, y: new Float32Array(2 * 4 * 81) }), GranqError);
  nativeBackend.conv2dFwd({ ...s, x, weight, bias: null, y }); // still works afterwards
});

test('conv2d rejects bad groups with one clear GranqError', () => {
  const s = shape([2, 4, 5, 5, 6, 3, 3, 1, 1, false]);
  const x = new Float32Array(2 * 4 * 25), y = new Float32Array(2 * 6 * 25);
  const w2 = new Float32Array(6 * 2 * 9); // groups 2: [6, 2, 3, 3]
  nativeBackend.conv2dFwd({ ...s, groups: 2, x, weight: w2, bias: null, y });
  const bad = (groups: unknown, weight: Float32Array, re: RegExp) =>
    assert.throws(() => nativeBackend.conv2dFwd({ ...s, groups: groups as number, x, weight, bias: null, y }),
      (e: unknown) => e instanceof GranqError && re.test(e.message), `groups ${String(groups)}`);
  bad(0, w2, /groups: expected an integer in \[1, /);
  bad(1.5, w2, /groups: expected an integer/);
  bad('2', w2, /groups: expected an integer, got a string/);
  bad(3, new Float32Array(6 * 4 * 9 / 3), /groups: expected a divisor of ic \(4\) and oc \(6\), got 3/);
  bad(4, new Float32Array(6 * 9), /groups: expected a divisor of ic \(4\) and oc \(6\), got 4/);
  bad(2, new Float32Array(6 * 4 * 9), /weight: expected a Float32Array of 108 elements, got 216 elements/);
  assert.throws(() => nativeBackend.conv2dBwdData({ ...s, groups: 2, dy: y, weight: new Float32Array(6 * 4 * 9), dx: x }), /weight: expected/);
  assert.throws(() => nativeBackend.conv2dBwdWeight({ ...s, groups: 2, x, dy: y, dweight: new Float32Array(6 * 4 * 9), dbias: null }), /dweight: expected/);
  nativeBackend.conv2dFwd({ ...s, groups: 2, x, weight: w2, bias: null, y }); // still works afterwards
});
