/**
 * BatchNorm kernels: native vs the scalar reference over a case table and seeded random shapes, training
 * statistics against a direct computation, a float64 finite-difference check of the reference backward,
 * bit-identical results for 1 and 4 threads, and bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend, type Backend, type BatchNormShape, type Buf } from '../../src/backend/index.js';
import { GranqError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/rng.js';
import { assertBitEqual, assertClose } from '../kit/compare.js';
import { randomFloats, randomNormal } from '../kit/random.js';
import { withThreads } from '../kit/threads.js';

const TOL = { atol: 2e-5, rtol: 2e-4 }; // float32 kernel vs double-accumulating reference

// n, c, hw: size 1, odd sizes, batch 1, a single channel, hw = 1, and a ResNet-sized layer.
const CASES: [number, number, number][] = [
  [1, 1, 2], [2, 1, 1], [1, 3, 7], [2, 5, 17], [3, 4, 33], [1, 16, 64], [5, 7, 1], [4, 16, 9], [8, 16, 1024],
];

interface Inputs { x: Float32Array; dy: Float32Array; gamma: Float32Array; beta: Float32Array; rm: Float32Array; rv: Float32Array }

function inputs(s: BatchNormShape, seed: number): Inputs {
  const len = s.n * s.c * s.hw;
  const x = randomNormal(len, seed, 2);
  for (let i = 0; i < len; i++) x[i]! += 3; // an offset, to catch one-pass variance
  return {
    x,
    dy: randomNormal(len, seed + 1),
    gamma: randomFloats(s.c, seed + 2, 0.5, 1.5),
    beta: randomFloats(s.c, seed + 3),
    rm: randomFloats(s.c, seed + 4),
    rv: randomFloats(s.c, seed + 5, 0.5, 2),
  };
}

/** Every kernel of the family on one backend; returns all outputs. */
function runAll(b: Backend, s: BatchNormShape, inp: Inputs, affine: boolean, relu = false): Record<string, Float32Array> {
  const len = s.n * s.c * s.hw;
  const gamma = affine ? inp.gamma : null;
  const beta = affine ? inp.beta : null;
  const o = {
    y: new Float32Array(len), saveMean: new Float32Array(s.c), saveInvstd: new Float32Array(s.c),
    rm: inp.rm.slice(), rv: inp.rv.slice(), yEval: new Float32Array(len),
    dx: new Float32Array(len), dgamma: new Float32Array(s.c), dbeta: new Float32Array(s.c),
    dxEval: new Float32Array(len), dgammaEval: new Float32Array(s.c), dbetaEval: new Float32Array(s.c),
  };
  b.batchNormFwdTrain({ ...s, x: inp.x, gamma, beta, eps: 1e-5, momentum: 0.1, runningMean: o.rm, runningVar: o.rv, relu, y: o.y, saveMean: o.saveMean, saveInvstd: o.saveInvstd });
  b.batchNormFwdEval({ ...s, x: inp.x, gamma, beta, runningMean: inp.rm, runningVar: inp.rv, eps: 1e-5, relu, y: o.yEval });
  b.batchNormBwdTrain({ ...s, dy: inp.dy, y: relu ? o.y : null, x: inp.x, saveMean: o.saveMean, saveInvstd: o.saveInvstd, gamma, dx: o.dx, dgamma: o.dgamma, dbeta: o.dbeta });
  b.batchNormBwdEval({ ...s, dy: inp.dy, y: relu ? o.yEval : null, x: inp.x, runningMean: inp.rm, runningVar: inp.rv, eps: 1e-5, gamma, dx: o.dxEval, dgamma: o.dgammaEval, dbeta: o.dbetaEval });
  return o;
}

function compareBackends(s: BatchNormShape, seed: number, affine: boolean, relu = false): void {
  const inp = inputs(s, seed);
  if (relu) for (let i = 0; i < inp.x.length; i++) inp.x[i]! -= 3; // centred, so the ReLU cuts about half
  const nat = runAll(nativeBackend, s, inp, affine, relu);
  const ref = runAll(refBackend, s, inp, affine, relu);
  for (const k of Object.keys(ref)) {
    // dgamma/dbeta are sums over n*hw terms: scale the absolute tolerance with the count.
    const atol = k.startsWith('dgamma') || k.startsWith('dbeta') ? TOL.atol * s.n * s.hw : TOL.atol;
    assertClose(nat[k]!, ref[k]!, { atol, rtol: TOL.rtol }, `${k} [${s.n},${s.c},${s.hw}] affine=${affine} relu=${relu} seed=${seed}`);
  }
}

test('batchnorm: case table, native vs ref, without and with the fused ReLU', () => {
  CASES.forEach(([n, c, hw], i) => {
    compareBackends({ n, c, hw }, 100 + i, true);
    compareBackends({ n, c, hw }, 200 + i, false);
    compareBackends({ n, c, hw }, 300 + i, true, true);
  });
});

test('batchnorm with fused ReLU is bit-identical to BatchNorm then ReLU (forward and backward, both modes, dx = dy too)', () => {
  for (const s of [{ n: 3, c: 5, hw: 49 }, { n: 8, c: 16, hw: 1024 }]) {
    const inp = inputs(s, 17);
    for (let i = 0; i < inp.x.length; i++) inp.x[i]! -= 3;
    const len = s.n * s.c * s.hw;
    const fused = runAll(nativeBackend, s, inp, true, true);
    const plain = runAll(nativeBackend, s, inp, true, false);
    for (const [yKey, dxKey, dgKey, dbKey, train] of [['y', 'dx', 'dgamma', 'dbeta', true], ['yEval', 'dxEval', 'dgammaEval', 'dbetaEval', false]] as const) {
      const z = plain[yKey]!;
      const y = new Float32Array(len);
      nativeBackend.unaryFwd({ op: 0, len, x: z, y, alpha: 0, beta: 0 });
      assertBitEqual(fused[yKey]!, y, `${yKey}: relu(BN(x))`);
      const dz = new Float32Array(len);
      nativeBackend.unaryBwd({ op: 0, len, x: z, y, dy: inp.dy, dx: dz, alpha: 0, beta: 0 });
      const dx = new Float32Array(len), dg = new Float32Array(s.c), db = new Float32Array(s.c);
      const o = plain;
      if (train) nativeBackend.batchNormBwdTrain({ ...s, dy: dz, y: null, x: inp.x, saveMean: o.saveMean!, saveInvstd: o.saveInvstd!, gamma: inp.gamma, dx, dgamma: dg, dbeta: db });
      else nativeBackend.batchNormBwdEval({ ...s, dy: dz, y: null, x: inp.x, runningMean: inp.rm, runningVar: inp.rv, eps: 1e-5, gamma: inp.gamma, dx, dgamma: dg, dbeta: db });
      assertBitEqual(fused[dxKey]!, dx, `${dxKey}`);
      assertBitEqual(fused[dgKey]!, dg, `${dgKey}`);
      assertBitEqual(fused[dbKey]!, db, `${dbKey}`);
      const inPlace = inp.dy.slice();
      if (train) nativeBackend.batchNormBwdTrain({ ...s, dy: inPlace, y: fused[yKey]!, x: inp.x, saveMean: fused.saveMean!, saveInvstd: fused.saveInvstd!, gamma: inp.gamma, dx: inPlace, dgamma: null, dbeta: null });
      else nativeBackend.batchNormBwdEval({ ...s, dy: inPlace, y: fused[yKey]!, x: inp.x, runningMean: inp.rm, runningVar: inp.rv, eps: 1e-5, gamma: inp.gamma, dx: inPlace, dgamma: null, dbeta: null });
      assertBitEqual(inPlace, dx, `${dxKey} in place`);
    }
    assert.throws(() => nativeBackend.batchNormBwdEval({ ...s, dy: inp.dy, y: fused.yEval!, x: inp.x, runningMean: inp.rm, runningVar: inp.rv, eps: 1e-5, gamma: null, dx: fused.yEval!, dgamma: null, dbeta: null }),
      /must be different buffers/);
  }
});

test('batchnorm: seeded random shapes, native vs ref', () => {
  const seed = 4242;
  const rng = new Rng(seed);
  for (let t = 0; t < 12; t++) {
    const s = { n: 1 + (rng.uint32() % 6), c: 1 + (rng.uint32() % 9), hw: 1 + (rng.uint32() % 70) };
    if (s.n * s.hw === 1) s.hw = 2;
    compareBackends(s, seed + t, t % 2 === 0);
  }
});

test('batchnorm backward in place (dx = dy) equals the out-of-place result, both backends', () => {
  const s = { n: 3, c: 5, hw: 49 };
  const inp = inputs(s, 91);
  for (const b of [nativeBackend, refBackend]) {
    const o = runAll(b, s, inp, true);
    const train = inp.dy.slice();
    const dg = new Float32Array(s.c);
    const db = new Float32Array(s.c);
    b.batchNormBwdTrain({ ...s, dy: train, y: null, x: inp.x, saveMean: o.saveMean!, saveInvstd: o.saveInvstd!, gamma: inp.gamma, dx: train, dgamma: dg, dbeta: db });
    assertBitEqual(train, o.dx!, `${b.name} train dx`);
    assertBitEqual(dg, o.dgamma!, `${b.name} train dgamma`);
    const ev = inp.dy.slice();
    b.batchNormBwdEval({ ...s, dy: ev, y: null, x: inp.x, runningMean: inp.rm, runningVar: inp.rv, eps: 1e-5, gamma: inp.gamma, dx: ev, dgamma: dg, dbeta: db });
    assertBitEqual(ev, o.dxEval!, `${b.name} eval dx`);
    assertBitEqual(dg, o.dgammaEval!, `${b.name} eval dgamma`);
    // With the fused ReLU too: dx = dy in place while dgamma and dbeta are summed from the same dy.
    const f = runAll(b, s, inp, true, true);
    const evr = inp.dy.slice();
    b.batchNormBwdEval({ ...s, dy: evr, y: f.yEval!, x: inp.x, runningMean: inp.rm, runningVar: inp.rv, eps: 1e-5, gamma: inp.gamma, dx: evr, dgamma: dg, dbeta: db });
    assertBitEqual(evr, f.dxEval!, `${b.name} eval dx, fused ReLU`);
    assertBitEqual(dg, f.dgammaEval!, `${b.name} eval dgamma, fused ReLU`);
    assertBitEqual(db, f.dbetaEval!, `${b.name} eval dbeta, fused ReLU`);
  }
});

test('batchnorm: training statistics and running update against a direct computation', () => {
  for (const b of [nativeBackend, refBackend]) {
    const s = { n: 3, c: 4, hw: 11 };
    const inp = inputs(s, 77);
    const o = runAll(b, s, inp, true);
    const m = s.n * s.hw;
    for (let ch = 0; ch < s.c; ch++) {
      const vals: number[] = [];
      for (let i = 0; i < s.n; i++) for (let j = 0; j < s.hw; j++) vals.push(inp.x[(i * s.c + ch) * s.hw + j]!);
      const mean = vals.reduce((a, v) => a + v, 0) / m;
      const varSum = vals.reduce((a, v) => a + (v - mean) ** 2, 0);
      const what = `${b.name} channel ${ch}`;
      assertClose([o.saveMean[ch]!], [mean], { atol: 1e-6, rtol: 1e-6 }, `${what} mean`);
      assertClose([o.saveInvstd[ch]!], [1 / Math.sqrt(varSum / m + 1e-5)], { atol: 1e-6, rtol: 1e-6 }, `${what} invstd`);
      assertClose([o.rm[ch]!], [0.9 * inp.rm[ch]! + 0.1 * mean], { atol: 1e-6, rtol: 1e-6 }, `${what} running mean`);
      // unbiased variance (m - 1) in the running update
      assertClose([o.rv[ch]!], [0.9 * inp.rv[ch]! + 0.1 * (varSum / (m - 1))], { atol: 1e-6, rtol: 1e-6 }, `${what} running var`);
    }
  }
});

test('batchnorm: reference backward matches float64 finite differences', () => {
  const s = { n: 2, c: 3, hw: 5 };
  const len = s.n * s.c * s.hw;
  const inp = inputs(s, 9);
  const x = Float64Array.from(inp.x);
  const w = Float64Array.from(inp.dy); // loss = sum(y * w), so dy = w
  const gamma = Float64Array.from(inp.gamma);
  const beta = Float64Array.from(inp.beta);
  const loss = (xs: Float64Array) => {
    const y = new Float64Array(len);
    refBackend.batchNormFwdTrain({ ...s, x: xs, gamma, beta, eps: 1e-5, momentum: 0.1, runningMean: null, runningVar: null, relu: false, y, saveMean: new Float64Array(s.c), saveInvstd: new Float64Array(s.c) });
    return y.reduce((a, v, i) => a + v * w[i]!, 0);
  };
  const sm = new Float64Array(s.c);
  const si = new Float64Array(s.c);
  refBackend.batchNormFwdTrain({ ...s, x, gamma, beta, eps: 1e-5, momentum: 0.1, runningMean: null, runningVar: null, relu: false, y: new Float64Array(len), saveMean: sm, saveInvstd: si });
  const dx = new Float64Array(len);
  const dg = new Float64Array(s.c);
  refBackend.batchNormBwdTrain({ ...s, dy: w, y: null, x, saveMean: sm, saveInvstd: si, gamma, dx, dgamma: dg, dbeta: null });
  const num = new Float64Array(len);
  const h = 1e-6;
  for (let i = 0; i < len; i++) {
    const xp = x.slice(); xp[i]! += h;
    const xm = x.slice(); xm[i]! -= h;
    num[i] = (loss(xp) - loss(xm)) / (2 * h);
  }
  assertClose(dx, num, { atol: 1e-6, rtol: 1e-5 }, 'dx vs finite differences');
  const numG = new Float64Array(s.c);
  for (let ch = 0; ch < s.c; ch++) {
    const y = new Float64Array(len);
    refBackend.batchNormFwdTrain({ ...s, x, gamma: null, beta: null, eps: 1e-5, momentum: 0.1, runningMean: null, runningVar: null, relu: false, y, saveMean: sm, saveInvstd: si });
    for (let i = 0; i < s.n; i++) for (let j = 0; j < s.hw; j++) numG[ch]! += y[(i * s.c + ch) * s.hw + j]! * w[(i * s.c + ch) * s.hw + j]!;
  }
  assertClose(dg, numG, { atol: 1e-9, rtol: 1e-9 }, 'dgamma = sum(dy * xhat)');
});

test('batchnorm: null outputs are skipped', () => {
  const s = { n: 2, c: 3, hw: 4 };
  const inp = inputs(s, 5);
  const full = runAll(nativeBackend, s, inp, true);
  const dg = new Float32Array(s.c);
  nativeBackend.batchNormBwdTrain({ ...s, dy: inp.dy, y: null, x: inp.x, saveMean: full.saveMean!, saveInvstd: full.saveInvstd!, gamma: inp.gamma, dx: null, dgamma: dg, dbeta: null });
  assertBitEqual(dg, full.dgamma!, 'dgamma alone');
  const dx = new Float32Array(s.n * s.c * s.hw);
  nativeBackend.batchNormBwdEval({ ...s, dy: inp.dy, y: null, x: inp.x, runningMean: inp.rm, runningVar: inp.rv, eps: 1e-5, gamma: inp.gamma, dx, dgamma: null, dbeta: null });
  assertBitEqual(dx, full.dxEval!, 'eval dx alone');
});

test('batchnorm: bit-identical for 1 and 4 threads', () => {
  for (const [n, c, hw] of [[16, 16, 1024], [64, 3, 256], [9, 5, 33]] as const) {
    const s = { n, c, hw };
    const inp = inputs(s, 31);
    for (const relu of [false, true]) {
      const one = withThreads(1, () => runAll(nativeBackend, s, inp, true, relu));
      const four = withThreads(4, () => runAll(nativeBackend, s, inp, true, relu));
      for (const k of Object.keys(one)) assertBitEqual(four[k]!, one[k]!, `${k} [${n},${c},${hw}] relu=${relu} threads 4 vs 1`);
    }
  }
});

test('batchnorm: bad inputs throw GranqError', () => {
  const s = { n: 2, c: 3, hw: 4 };
  const x = new Float32Array(24);
  const c3 = () => new Float32Array(3);
  const base = { ...s, x, gamma: null, beta: null, eps: 1e-5, momentum: 0.1, runningMean: null, runningVar: null, relu: false, y: new Float32Array(24), saveMean: c3(), saveInvstd: c3() };
  assert.throws(() => nativeBackend.batchNormFwdTrain({ ...base, x: new Float32Array(23) }), GranqError);
  assert.throws(() => nativeBackend.batchNormFwdTrain({ ...base, x: new Float64Array(24) as unknown as Buf }), GranqError);
  assert.throws(() => nativeBackend.batchNormFwdTrain({ ...base, gamma: new Float32Array(2) }), GranqError);
  assert.throws(() => nativeBackend.batchNormFwdTrain({ ...base, runningMean: c3() }), GranqError); // one of the pair
  assert.throws(() => nativeBackend.batchNormFwdEval({ ...s, x, gamma: null, beta: null, runningMean: c3(), runningVar: null as unknown as Buf, eps: 1e-5, relu: false, y: new Float32Array(24) }), GranqError);
  assert.throws(() => nativeBackend.batchNormBwdTrain({ ...s, dy: x, y: null, x, saveMean: c3(), saveInvstd: c3(), gamma: null, dx: new Float32Array(25), dgamma: null, dbeta: null }), GranqError);
  assert.throws(() => nativeBackend.batchNormBwdTrain({ ...s, dy: x, y: new Float32Array(23), x, saveMean: c3(), saveInvstd: c3(), gamma: null, dx: null, dgamma: c3(), dbeta: null }), GranqError);
  assert.throws(() => nativeBackend.batchNormFwdEval({ ...s, c: 0, x, gamma: null, beta: null, runningMean: c3(), runningVar: c3(), eps: 1e-5, relu: false, y: x }), GranqError);
  assert.throws(() => nativeBackend.batchNormFwdEval({ ...s, x, gamma: null, beta: null, runningMean: c3(), runningVar: c3(), eps: 1e-5, relu: 1 as unknown as boolean, y: new Float32Array(24) }), /relu: expected a boolean/);
});

test('channel statistics: case table native vs ref, thread-independent, bad input', () => {
  const run = (b: Backend, s: BatchNormShape, x: Float32Array, dstats: Float32Array) => {
    const stats = new Float32Array(2 * s.c);
    const dx = new Float32Array(x.length);
    b.channelStatsFwd({ ...s, x, stats });
    b.channelStatsBwd({ ...s, x, stats, dstats, dx });
    return { stats, dx };
  };
  CASES.forEach(([n, c, hw], i) => {
    const s = { n, c, hw };
    const x = randomNormal(n * c * hw, 300 + i, 2);
    const dstats = randomFloats(2 * c, 400 + i);
    const nat = run(nativeBackend, s, x, dstats);
    const ref = run(refBackend, s, x, dstats);
    assertClose(nat.stats, ref.stats, { atol: 1e-5, rtol: 1e-5 }, `stats [${n},${c},${hw}]`);
    assertClose(nat.dx, ref.dx, { atol: 1e-5, rtol: 1e-4 }, `dx [${n},${c},${hw}]`);
    const one = withThreads(1, () => run(nativeBackend, s, x, dstats));
    const four = withThreads(4, () => run(nativeBackend, s, x, dstats));
    assertBitEqual(four.stats, one.stats, 'stats threads');
    assertBitEqual(four.dx, one.dx, 'dx threads');
  });
  assert.throws(() => nativeBackend.channelStatsFwd({ n: 2, c: 3, hw: 4, x: new Float32Array(23), stats: new Float32Array(6) }), GranqError);
  assert.throws(() => nativeBackend.channelStatsFwd({ n: 2, c: 3, hw: 4, x: new Float32Array(24), stats: new Float32Array(5) }), GranqError);
});
