/** The tape itself: gradient accumulation, shared gradient arrays, recycled buffers, no-grad mode. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/autograd/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { allocFloats, poolStats, releaseFloats, releasingScope, Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../kit/compare.js';
import { SGD } from '../../src/optim/index.js';

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

test('a training step in steady state allocates nothing new: shared gradient arrays return to the pool too', () => {
  // A residual block: add hands the same gradient array to both branches; once both consumed it, it is recycled.
  const rng = new Rng(2);
  const n = 4096;
  const w = Tensor.randn([n], rng).requireGrad();
  const x = Tensor.randn([n], rng);
  const opt = new SGD([w], { lr: 0 });
  const misses: number[] = [];
  for (let round = 0; round < 4; round++) {
    const before = poolStats().misses;
    const h = F.relu(F.mul(x, w));
    const r = F.add(F.relu(F.scale(h, 2)), F.mul(h, w));
    const loss = F.sum(F.mul(F.add(r, F.relu(r)), x));
    opt.zeroGrad();
    loss.backward();
    F.releaseGraph([loss]);
    misses.push(poolStats().misses - before);
    // dL/dw = x (1 + [r > 0]) (2 [h > 0][2h > 0] x + [h > 0] x w + h), elementwise.
    const want = x.data.map((xi, i) => {
      const wi = w.data[i]!, h = Math.max(0, xi * wi), r = 2 * h + h * wi;
      return xi * (1 + (r > 0 ? 1 : 0)) * ((h > 0 ? 2 * xi + xi * wi : 0) + h);
    });
    assertClose(w.grad!.data, want, { atol: 1e-4, rtol: 1e-4 }, `round ${round}`);
  }
  assert.ok(misses[0]! > 0, 'the first round allocates');
  assert.deepEqual(misses.slice(2), [0, 0], `fresh allocations per round: ${misses.join(', ')}`);
});

test('releasingScope: what fn allocated goes back to the pool once, but the kept result and what fn released itself', () => {
  const n = 5000;
  const pooled = () => poolStats().pooledFloats;
  // Drain the pool of this size so that every allocation below is a distinct array.
  const drained: Float32Array[] = [];
  for (let i = 0; i < 8; i++) drained.push(allocFloats(n));
  const held = allocFloats(n);  // allocated outside: never released by the scope
  const before = pooled();
  let inner: Float32Array[] = [];
  const out = releasingScope(() => {
    inner = [allocFloats(n), allocFloats(n), allocFloats(n)];
    const result = allocFloats(n);
    releaseFloats(inner[0]!);  // released by fn itself: must not be handed back a second time
    releaseFloats(held);  // an outside buffer released inside: once
    return result;
  }, (r) => [r]);
  // In the pool now: inner[0] and held (released inside), inner[1] and inner[2] (by the scope); not the result.
  assert.equal(pooled() - before, 4 * n);
  const again = [allocFloats(n), allocFloats(n), allocFloats(n), allocFloats(n)];
  assert.deepEqual(new Set(again), new Set([inner[0]!, inner[1]!, inner[2]!, held]), 'each once, nothing else');
  assert.ok(!again.includes(out), 'the result stays out of the pool');
  // Nested: the inner result passes to the enclosing scope, which releases it unless it keeps it too.
  let passed: Float32Array | null = null;
  const b2 = pooled();
  const outer = releasingScope(() => {
    const result = allocFloats(n);
    passed = releasingScope(() => { allocFloats(n); return allocFloats(n); }, (r) => [r]);
    return result;
  }, (r) => [r]);
  assert.equal(pooled() - b2, 2 * n, "the inner scope's temporary and its result, released by the outer");
  assert.ok(outer !== passed);
  // If fn throws, nothing is released.
  const b3 = pooled();
  assert.throws(() => releasingScope(() => { allocFloats(3001); throw new Error('boom'); }, () => []), /boom/);
  assert.equal(pooled(), b3);
  for (const a of drained) releaseFloats(a);
});

test('the pool is bounded: a size released last is kept, the sizes least recently released are dropped first', () => {
  const big = 4 << 20;  // 16 MiB each; allocUnsafeSlow touches no page, so this costs no memory
  const bufs = Array.from({ length: 17 }, () => allocFloats(big));
  for (const b of bufs) releaseFloats(b);  // 68M floats: over the 64M bound
  assert.ok(poolStats().pooledFloats <= 64 << 20);
  const other = allocFloats(3 << 20);
  releaseFloats(other);
  assert.ok(poolStats().pooledFloats <= 64 << 20);
  assert.equal(allocFloats(3 << 20), other, 'the last released size is served from the pool');
  assert.equal(allocFloats(big), bufs[16], 'the most recent buffer of the older size is still there');
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

test('withoutGrad: one forward graph serves two backward passes with different targets', () => {
  // y = sum(w2 * relu(q(w1) * x)), q(w1) = 2 w1 standing in for a quantized weight (an op output of a leaf).
  const rng = new Rng(3);
  const n = 2048;
  const x = Tensor.randn([n], rng).requireGrad();
  const w1 = Tensor.randn([n], rng).requireGrad();
  const w2 = Tensor.randn([n], rng).requireGrad();
  const h = F.relu(F.mul(F.scale(w1, 2), x));
  const y = F.sum(F.mul(w2, h));
  F.withoutGrad([w1, w2], () => y.backward());
  assert.equal(w1.grad, null, 'w1 switched off: no gradient, although q(w1) is an op output');
  assert.equal(w2.grad, null);
  const gx = x.grad!.toArray();
  F.withoutGrad([x], () => y.backward());
  assert.deepEqual(x.grad!.toArray(), gx, 'x switched off in the second pass: unchanged');
  assert.equal(w1.requiresGrad && w2.requiresGrad && x.requiresGrad, true, 'flags restored');
  for (let i = 0; i < n; i++) {
    const on = 2 * w1.data[i]! * x.data[i]! > 0;
    assert.equal(gx[i]! + 0, on ? Math.fround(w2.data[i]! * Math.fround(2 * w1.data[i]!)) : 0);
    assert.equal(w2.grad!.data[i], Math.fround(h.data[i]!));
    assert.ok(Math.abs(w1.grad!.data[i]! - (on ? w2.data[i]! * x.data[i]! * 2 : 0)) <= 1e-6 * (1 + Math.abs(w1.grad!.data[i]!)));
  }
  F.withoutGrad([x, w1, w2], () => y.backward()); // nothing left to reach: a no-op, not an error
});

test('releaseGraph recycles the buffers of op outputs, never of leaves or of views of leaves', () => {
  const rng = new Rng(4);
  const w = Tensor.randn([64, 64], rng).requireGrad();
  const wData = w.data.slice();
  const view = F.reshape(w, [4096]); // shares w's buffer
  const h = F.relu(F.mul(view, view));
  const loss = F.sum(h);
  loss.backward();
  const hBuffer = h.data;
  F.releaseGraph([loss]);
  // The next allocations of that size get h's (and the product's) buffers back; w's buffer never comes back.
  const a = F.scale(Tensor.randn([4096], rng), 1);
  const b = F.scale(Tensor.randn([4096], rng), 1);
  assert.ok(a.data === hBuffer || b.data === hBuffer, 'h buffer reused');
  assert.ok(a.data.buffer !== w.data.buffer && b.data.buffer !== w.data.buffer);
  assert.deepEqual(w.data, wData);
});

test('setFiniteCheck: the first NaN or Inf names its op (made in a forward, found in a leaf, made in a backward) or its optimizer step', () => {
  const t = (...v: number[]) => new Tensor(Float32Array.from(v), [v.length]);
  // Off (the default): NaN passes silently, as in PyTorch.
  assert.ok(Number.isNaN(F.log(t(-1, 1)).data[0]!));
  F.setFiniteCheck(true);
  try {
    assert.throws(() => F.log(t(-1, 1)), /^GranqError: finite check: op 'log' forward made NaN \(output \[2\], element 0\) from finite inputs \(\[2\]\)$/);
    assert.throws(() => F.relu(t(1, Number.POSITIVE_INFINITY)), /op 'relu' forward got Infinity in input 0 \(\[2\]; inputs \[2\]\), a leaf/);
    // d(x / y)/dy = -x / y^2 overflows float32 where x / y itself does not: 1e10 / 1e-20 = 1e30, -1e10 / 1e-40 = -Inf.
    const y = t(1e-20, 1).requireGrad();
    const loss = F.sum(F.div(t(1e10, 1), y));
    assert.equal(loss.data[0], Math.fround(1e30), 'the forward is finite (1e30 + 1 rounds to 1e30 in float32)');
    assert.throws(() => loss.backward(), /op 'div' backward made -Infinity in the gradient of input 1 \(\[2\]; output \[2\]\) from a finite upstream gradient/);
    // Finite work is untouched by the check.
    const z = t(1, 2).requireGrad();
    F.sum(F.mul(z, z)).backward();
    assert.deepEqual([...z.grad!.data], [2, 4]);
    // Optimizer steps: a gradient that is already non-finite (a sum of finite op gradients can overflow), and an
    // update that overflows a parameter from a finite gradient.
    const w = t(1, 2).requireGrad();
    w.grad = t(0, Number.NEGATIVE_INFINITY);
    assert.throws(() => new SGD([z, w], { lr: 0.1 }).step(), /finite check: SGD step: the gradient of parameter 1 of 2 \(\[2\]\) holds -Infinity before the update/);
    w.grad = t(3e38, 0);
    assert.throws(() => new SGD([w], { lr: 10 }).step(), /finite check: SGD step made -Infinity in parameter 0 of 1 \(\[2\]\) from a finite gradient \(largest magnitude 3\.00e\+38; lr 10\)/);
  } finally {
    F.setFiniteCheck(false);
  }
});
