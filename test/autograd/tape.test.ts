/** The tape itself: gradient accumulation, shared gradient arrays, recycled buffers, no-grad mode. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/autograd/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../kit/compare.js';

test('a gradient array passed to two inputs is never summed into in place', () => {
  // L = sum(w1 * (a + b)) + sum(w2 * a), a = 2p, b = 3p: add hands the same array to a and b, and a later also
  // receives w2; dL/dp = 2 (w1 + w2) + 3 w1. Large tensors so the recycling path is taken; repeated so recycled
  // buffers are reused.
  const rng = new Rng(1);
  const n = 4096;
  const w1 = Tensor.randn([n], rng);
  const w2 = Tensor.randn([n], rng);
  const want = w1.data.map((v, i) => 5 * v + 2 * w2.data[i]!);
  for (let round = 0; round < 3; round++) {
    const p = Tensor.randn([n], rng).requireGrad();
    const a = F.scale(p, 2);
    const b = F.scale(p, 3);
    // relu(x + 100) is the identity here but makes the gradient of (a + b) a fresh, owned array.
    const s = F.addScalar(F.relu(F.addScalar(F.add(a, b), 100)), -100);
    F.add(F.sum(F.mul(s, w1)), F.sum(F.mul(a, w2))).backward();
    assertClose(p.grad!.data, want, { atol: 1e-4, rtol: 1e-5 }, `round ${round}`);
  }
});

test('leaf gradients accumulate across backward calls; noGrad records nothing', () => {
  const x = Tensor.from([1, 2, 3]).requireGrad();
  F.sum(F.mul(x, x)).backward();
  F.sum(F.scale(x, 3)).backward();
  assert.deepEqual(x.grad!.toArray(), [5, 7, 9]);
  const y = F.noGrad(() => F.mul(x, x));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
});
