/** Loss parity with PyTorch (../shared/fixtures/granq_pipeline.safetensors), and the generator's shapes. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as F from '../../src/autograd/index.js';
import { loadStateDictFile } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/load.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Generator } from '../../src/zsq/generator.js';
import {
  agreementLoss, BnsLoss, disagreementLoss, entropyKdLoss, FeatureKdLoss, klKdLoss, marginLoss,
} from '../../src/zsq/losses.js';
import { BatchNorm2d, Conv2d, Sequential } from '../../src/nn/layers.js';
import { assertClose } from '../kit/compare.js';
import { FIXTURES, noShared, SHARED_MODEL } from '../kit/shared.js';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

describe('ZSQ losses vs PyTorch', { skip: noShared }, () => {
  const fx = () => loadStateDictFile(path.join(FIXTURES, 'granq_pipeline.safetensors'));
  const inputs = () => {
    const f = fx();
    const y = Int32Array.from(f.get('loss.y')!.data);
    return { f, t: f.get('loss.t')!, s: f.get('loss.s')!, y };
  };

  test('margin, ds, as, entropy KD (T=20) and KL KD (T=20) within 1e-4 relative', () => {
    const { f, t, s, y } = inputs();
    const cases: [string, Tensor][] = [
      ['loss.margin', marginLoss(t, s)],
      ['loss.ds', disagreementLoss(t, s, y)],
      ['loss.as', agreementLoss(t, s, y)],
      ['loss.kd_entropy_T20', entropyKdLoss(t, s, 20)],
      ['loss.kl_T20_gdfq', klKdLoss(t, s, 20)],
    ];
    for (const [key, value] of cases) {
      const want = f.get(key)!.item();
      assert.ok(rel(value.item(), want) < 1e-4, `${key}: ${value.item()} vs PyTorch ${want}`);
    }
  });

  test('losses do not depend on a fixed batch size (released margin loss hard-coded 200)', () => {
    const { t, s, y } = inputs();
    const half = (x: Tensor) => new Tensor(x.data.slice(0, 4 * x.shape[1]!), [4, x.shape[1]!]);
    assert.ok(Number.isFinite(marginLoss(half(t), half(s)).item()));
    assert.ok(Number.isFinite(disagreementLoss(half(t), half(s), y.slice(0, 4)).item()));
  });

  test('BNS loss of the teacher on the fixture inputs and its input gradient', () => {
    const first8 = loadStateDictFile(path.join(FIXTURES, 'resnet20_cifar10_first8.safetensors'), { integers: 'skip' });
    const { f } = inputs();
    const { model } = loadModel(SHARED_MODEL);
    const bns = new BnsLoss(model);
    assert.equal(bns.layers, 19);
    const x = first8.get('input')!.clone().requireGrad();
    bns.reset();
    model.forward(x);
    const loss = bns.value();
    assert.ok(rel(loss.item(), f.get('bns.value')!.item()) < 1e-4, `bns ${loss.item()} vs ${f.get('bns.value')!.item()}`);
    loss.backward();
    const want = f.get('bns.grad_input')!.data;
    let scale = 0;
    for (const v of want) scale = Math.max(scale, Math.abs(v));
    assertClose(x.grad!.data, want, { atol: 1e-4 * scale, rtol: 1e-4 }, 'bns.grad_input');
    bns.detach();
  });
});

test('generator: output shape, BN(3, no affine) statistics, deterministic for a seed', () => {
  const make = () => {
    const rng = new Rng(9);
    const g = new Generator(10, { rng });
    return { g, out: g.sample(16, rng) };
  };
  const { g, out } = make();
  assert.deepEqual(out.images.shape, [16, 3, 32, 32]);
  assert.equal(out.labels.length, 16);
  // Training-mode BN without affine at the end: each channel has batch mean 0 and variance var / (var + eps), just
  // under 1 (tanh outputs of a fresh generator have a small variance, so eps = 1e-5 shows at the 1e-3 level).
  const mean = F.mean(out.images, [0, 2, 3]).toArray();
  const sq = F.mean(F.mul(out.images, out.images), [0, 2, 3]).toArray();
  mean.forEach((m, c) => {
    assert.ok(Math.abs(m) < 1e-4, `channel ${c} mean ${m}`);
    assert.ok(Math.abs(sq[c]! - m * m - 1) < 5e-3, `channel ${c} variance ${sq[c]! - m * m}`);
  });
  assert.deepEqual(make().out.images.toArray(), out.images.toArray());
  const keys = [...g.stateDict().keys()];
  for (const k of ['label_emb.weight', 'l1.0.weight', 'conv_blocks0.0.running_var', 'conv_blocks1.1.weight', 'conv_blocks2.3.weight']) {
    assert.ok(keys.includes(k), k);
  }
  assert.ok(!keys.includes('conv_blocks2.5.weight'), 'the last BN has no affine parameters');
});

test('feature KD: the BN-input loss and its weight gradient by hand; zero for an equal student; hooks removed', () => {
  // One 1x1 conv (no bias) into a BatchNorm with known running variances and scales: with a_c = |γ_c| / σ_c,
  // loss = mean((a_c (Ws − Wt)x)²), d loss / d Ws[c,k] = 2 / N · Σ_{n,h,w} d[n,c,h,w] · a_c · x[n,k,h,w], d = a_c (Ws − Wt)x.
  const [n, k, c, hw] = [2, 3, 4, 5];
  const net = (scale: number) => {
    const conv = new Conv2d(k, c, 1, { bias: false, rng: new Rng(3) });
    conv.weight.data.forEach((v, i) => { conv.weight.data[i] = Math.fround(v * scale); });
    const bn = new BatchNorm2d(c);
    bn.runningVar.data.set([0.5, 1, 2, 4]);
    bn.weight!.data.set([1, -0.5, 2, 0.25]);
    const m = new Sequential(conv, bn);
    m.eval();
    return { m, conv, bn };
  };
  const teacher = net(1);
  const student = net(0.7);
  const x = Tensor.empty([n, k, hw, hw]);
  new Rng(5).fillUniform(x.data, -1, 1);
  const fk = new FeatureKdLoss(teacher.m, student.m);
  fk.record('teacher', () => F.noGrad(() => teacher.m.forward(x)));
  fk.record('student', () => student.m.forward(x));
  const loss = fk.value();
  loss.backward();

  const wt = teacher.conv.weight.data;
  const ws = student.conv.weight.data;
  const a = [0.5, 1, 2, 4].map((v, o) => [1, 0.5, 2, 0.25][o]! / Math.sqrt(v + 1e-5));
  let expected = 0;
  const grad = new Float64Array(c * k);
  const N = n * c * hw * hw;
  for (let b = 0; b < n; b++) for (let o = 0; o < c; o++) for (let p = 0; p < hw * hw; p++) {
    let diff = 0;
    for (let i = 0; i < k; i++) diff += (ws[o * k + i]! - wt[o * k + i]!) * x.data[(b * k + i) * hw * hw + p]!;
    const d = diff * a[o]!;
    expected += (d * d) / N;
    for (let i = 0; i < k; i++) grad[o * k + i]! += (2 / N) * d * a[o]! * x.data[(b * k + i) * hw * hw + p]!;
  }
  assert.ok(rel(loss.item(), expected) < 1e-5, `loss ${loss.item()} vs ${expected}`);
  assertClose(student.conv.weight.grad!.data, grad, { rtol: 1e-4, atol: 1e-7 }, 'd loss / d student weight');
  assert.equal(teacher.conv.weight.grad, null, 'the teacher got a gradient');

  // A student equal to the teacher: zero loss.
  const same = net(1);
  const fk0 = new FeatureKdLoss(teacher.m, same.m);
  fk0.record('teacher', () => F.noGrad(() => teacher.m.forward(x)));
  fk0.record('student', () => same.m.forward(x));
  assert.equal(fk0.value().item(), 0);
  // Unrecorded passes are ignored; a missing pass is an error; detach() removes the hooks.
  student.m.forward(x);
  const fresh = new FeatureKdLoss(teacher.m, student.m);
  fresh.record('student', () => student.m.forward(x));
  assert.throws(() => fresh.value(), /recorded 0 teacher and 1 student BatchNorm inputs/);
  for (const f of [fk, fk0, fresh]) f.detach();
  assert.equal(teacher.bn.inputHooks.length, 0);
  assert.equal(student.bn.inputHooks.length, 0);
  assert.throws(() => new FeatureKdLoss(teacher.m, new Sequential(new Conv2d(k, c, 1))), /same BatchNorm2d layers, got 1 and 0/);
});
