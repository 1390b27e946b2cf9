/**
 * Optimizer steps: one SGD (Nesterov, weight decay) and one Adam step against numbers worked out by hand, a
 * dampened SGD step, native vs ref on random tensors over several steps, bit-identical results for 1 and 4
 * threads, and bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend, type Backend, type Buf } from '../../src/backend/index.js';
import { GranqError } from '../../src/errors.js';
import { assertBitEqual, assertClose } from '../kit/compare.js';
import { randomFloats } from '../kit/random.js';
import { withThreads } from '../kit/threads.js';

const HAND = { atol: 1e-7, rtol: 1e-6 }; // float32 results against double hand arithmetic

const BOTH: Backend[] = [nativeBackend, refBackend];

test('sgd: Nesterov with weight decay, two steps by hand', () => {
  for (const b of BOTH) {
    const param = new Float32Array([1, -2]);
    const grad = new Float32Array([0.5, 0.25]);
    const buf = new Float32Array(2);
    const hp = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0.1, nesterov: true };
    b.sgdStep({ ...hp, firstStep: true, param, grad, buf });
    // p0: d = 0.5 + 0.1*1 = 0.6; buf = d = 0.6; d = 0.6 + 0.9*0.6 = 1.14; p = 1 - 0.1*1.14 = 0.886
    // p1: d = 0.25 - 0.2 = 0.05; buf = 0.05; d = 0.05 + 0.045 = 0.095; p = -2 - 0.0095 = -2.0095
    assertClose(buf, [0.6, 0.05], HAND, `${b.name} buf after step 1`);
    assertClose(param, [0.886, -2.0095], HAND, `${b.name} param after step 1`);
    b.sgdStep({ ...hp, firstStep: false, param, grad, buf });
    // p0: d = 0.5 + 0.0886 = 0.5886; buf = 0.9*0.6 + 0.5886 = 1.1286; d = 0.5886 + 0.9*1.1286 = 1.60434;
    //     p = 0.886 - 0.160434 = 0.725566
    assertClose(buf.subarray(0, 1), [1.1286], HAND, `${b.name} buf after step 2`);
    assertClose(param.subarray(0, 1), [0.725566], HAND, `${b.name} param after step 2`);
  }
});

test('sgd: dampening, plain momentum, and no momentum', () => {
  for (const b of BOTH) {
    const param = new Float32Array([2]);
    const buf = new Float32Array([3]);
    // buf = 0.5*3 + (1 - 0.5)*(-1) = 1; p = 2 - 0.25*1 = 1.75
    b.sgdStep({ lr: 0.25, momentum: 0.5, dampening: 0.5, weightDecay: 0, nesterov: false, firstStep: false, param, grad: new Float32Array([-1]), buf });
    assert.deepEqual([...buf, ...param], [1, 1.75], `${b.name} dampened`);
    b.sgdStep({ lr: 0.5, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, firstStep: true, param, grad: new Float32Array([1]), buf: null });
    assert.deepEqual([...param], [1.25], `${b.name} plain SGD`);
  }
});

test('adam: two cases by hand (weight decay at step 1; running moments at step 2)', () => {
  for (const b of BOTH) {
    const param = new Float32Array([1, 1]);
    const expAvg = new Float32Array([0, 0.1]);
    const expAvgSq = new Float32Array([0, 0.01]);
    // element 0, step 1, wd 0.1: g = 0.5 + 0.1 = 0.6; m = 0.06; v = 0.001*0.36 = 3.6e-4; bc1 = 0.1, bc2 = 0.001;
    //   denom = sqrt(3.6e-4)/sqrt(0.001) + 1e-8 = 0.60000001; p = 1 - (0.01/0.1)*0.06/0.60000001 = 0.99
    b.adamStep({ lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1, param: param.subarray(0, 1), grad: new Float32Array([0.5]), expAvg: expAvg.subarray(0, 1), expAvgSq: expAvgSq.subarray(0, 1) });
    // element 1, step 2, no wd, g = 0.5: m = 0.9*0.1 + 0.1*0.5 = 0.14; v = 0.999*0.01 + 0.001*0.25 = 0.01024;
    //   bc1 = 1 - 0.81 = 0.19; bc2 = 1 - 0.998001 = 0.001999; step = 0.01/0.19 = 0.0526315789;
    //   denom = sqrt(0.01024)/sqrt(0.001999) + 1e-8 = 2.2633076074; p = 1 - 0.0526315789*0.14/2.2633076074 = 0.9967444014
    b.adamStep({ lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 2, param: param.subarray(1), grad: new Float32Array([0.5]), expAvg: expAvg.subarray(1), expAvgSq: expAvgSq.subarray(1) });
    assertClose(expAvg, [0.06, 0.14], HAND, `${b.name} exp_avg`);
    assertClose(expAvgSq, [3.6e-4, 0.01024], HAND, `${b.name} exp_avg_sq`);
    assertClose(param, [0.99, 0.9967444014], HAND, `${b.name} param`);
  }
});

function trajectory(b: Backend, len: number, seed: number): Float32Array[] {
  const param = randomFloats(len, seed);
  const buf = new Float32Array(len);
  const pa = randomFloats(len, seed);
  const m = new Float32Array(len);
  const v = new Float32Array(len);
  for (let step = 1; step <= 5; step++) {
    const grad = randomFloats(len, seed + step);
    b.sgdStep({ lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 5e-4, nesterov: step % 2 === 0, firstStep: step === 1, param, grad, buf });
    b.adamStep({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, step, param: pa, grad, expAvg: m, expAvgSq: v });
  }
  return [param, buf, pa, m, v];
}

test('optim: five steps on random tensors, native vs ref', () => {
  for (const len of [1, 7, 17, 33, 4097]) {
    const nat = trajectory(nativeBackend, len, len);
    const ref = trajectory(refBackend, len, len);
    nat.forEach((a, i) => assertClose(a, ref[i]!, { atol: 1e-6, rtol: 1e-5 }, `state ${i} len=${len} seed=${len}`));
  }
});

test('optim: bit-identical for 1 and 4 threads', () => {
  const one = withThreads(1, () => trajectory(nativeBackend, 300001, 3));
  const four = withThreads(4, () => trajectory(nativeBackend, 300001, 3));
  one.forEach((a, i) => assertBitEqual(four[i]!, a, `state ${i} threads 4 vs 1`));
});

test('optim: bad inputs throw GranqError', () => {
  const f = new Float32Array(4);
  const sgd = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, firstStep: true, param: f, grad: f, buf: f };
  assert.throws(() => nativeBackend.sgdStep({ ...sgd, grad: new Float32Array(3) }), GranqError);
  assert.throws(() => nativeBackend.sgdStep({ ...sgd, buf: null }), GranqError); // momentum needs a buffer
  assert.throws(() => nativeBackend.sgdStep({ ...sgd, param: new Float64Array(4) as Buf }), GranqError);
  const adam = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1, param: f, grad: f, expAvg: f, expAvgSq: f };
  assert.throws(() => nativeBackend.adamStep({ ...adam, step: 0 }), GranqError);
  assert.throws(() => nativeBackend.adamStep({ ...adam, expAvgSq: new Float32Array(5) }), GranqError);
});
