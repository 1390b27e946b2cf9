/**
 * Integer inference of quantized students (quant/int-model.ts) on the default teacher: every conv that reads an
 * activation quantizer's output runs on codes, each such layer equal to the float conv of the same dequantized
 * input and fake-quant weight within float rounding (1e-5 of the output's scale); the whole model's logits equal the
 * fake-quant student's within 1e-4 relative except where an activation code flips at a rounding boundary, and its
 * predictions agree; for granq rows, slice and channel weights, static per-channel and per-tensor activations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/autograd/index.js';
import { GranqError } from '../../src/errors.js';
import { DEFAULT_TEACHER } from '../../src/models/default-teacher.js';
import { loadModel } from '../../src/models/load.js';
import { Module } from '../../src/nn/module.js';
import { BatchNorm2d, Conv2d } from '../../src/nn/layers.js';
import { actQuantizers, ChannelWeightQuantizer, describeIntLayers, GranqActQuantizer, IntActQuantizer, integerModel, IntConv2d, IntegerModel, QuantConv2d, quantizeModel, type QuantPolicy } from '../../src/quant/index.js';
import { assertBitEqual } from '../kit/compare.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import path from 'node:path';
import { assertOneLineError, granq, lastJson } from '../kit/cli.js';
import { ptqRunDir } from '../kit/run-dir.js';
import { CIFAR10_DIR, noShared } from '../kit/shared.js';

const { model: teacher } = loadModel(DEFAULT_TEACHER);

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

function images(n: number, seed: number): Tensor {
  const rng = new Rng(seed);
  return new Tensor(Float32Array.from({ length: n * 3 * 32 * 32 }, () => rng.normal()), [n, 3, 32, 32]);
}

/** The student of `policy`, its static activation ranges (if any) observed on one batch. */
function student(policy: QuantPolicy): Module {
  const { student: s } = quantizeModel(teacher, policy, { warn: () => {} });
  s.eval();
  const acts = actQuantizers(s);
  for (const [, q] of acts) q.observing = true;
  F.noGrad(() => s.forward(images(16, 99)));
  for (const [, q] of acts) q.observing = false;
  return s;
}

const POLICIES: QuantPolicy[] = [
  { wbits: 4, abits: 4, act: 'granq', weight: 'channel' },
  { wbits: 4, abits: 4, act: 'granq', weight: 'slice' },
  { wbits: 3, abits: 3, act: 'granq', weight: 'channel', weightClip: 'mse' },
  { wbits: 4, abits: 4, act: 'channel-static', weight: 'channel' },
  { wbits: 8, abits: 8, act: 'layer', weight: 'channel' },
  { wbits: 5, abits: 5, act: 'layer', weight: 'tensor' },
];

for (const policy of POLICIES) {
  const label = `${policy.act}/${policy.weight}${policy.weightClip ? `+${policy.weightClip}` : ''} W${policy.wbits}A${policy.abits}`;
  test(`integer inference ${label}: each layer on codes = float conv of its input within 1e-5; logits within 1e-4 but for code flips; predictions agree`, () => {
    const s = student(policy);
    const { model, layers } = integerModel(s);
    model.eval();
    // Each integer conv, on the very input it gets, against the float conv of that dequantized input.
    let checked = 0;
    for (const [, layer] of layers) {
      if (!(layer instanceof IntConv2d)) continue;
      const forward = layer.forward.bind(layer);
      const conv = (layer as unknown as { conv: { weight: Tensor; bias: Tensor | null; stride: number; padding: number; wq: { quantize(w: Tensor): Tensor } } }).conv;
      layer.forward = (x: Tensor) => {
        const before = layer.counts.int;
        const y = forward(x);
        if (layer.counts.int > before) {
          const conved = F.conv2d(x, conv.wq.quantize(conv.weight), conv.bias, { stride: conv.stride, padding: conv.padding });
          const want = layer.folded ? layer.folded.bn.forward(conved, layer.folded.relu) : conved;
          const scale = maxAbs(want.data);
          let worst = 0;
          for (let i = 0; i < want.size; i++) worst = Math.max(worst, Math.abs(y.data[i]! - want.data[i]!));
          assert.ok(worst <= 1e-5 * scale, `${label}: a layer differs by ${worst / scale} of its scale`);
          checked++;
        }
        return y;
      };
    }
    const x = images(24, 5);
    const want = F.noGrad(() => s.forward(x));
    const got = F.noGrad(() => model.forward(x));
    assert.ok(checked >= 19, `${label}: ${checked} layers ran on codes; ${describeIntLayers(layers)}`);
    // Every integer conv of this ResNet-20 feeds a BatchNorm alone: all folded (by the first forward).
    assert.equal((model as IntegerModel).foldedBatchNorms, layers.filter(([, l]) => l.folded).length);
    assert.ok(layers.filter(([, l]) => l.folded).length >= 19, `${label}: ${describeIntLayers(layers)}`);
    const k = want.shape[1]!;
    let within = 0, agree = 0;
    for (let i = 0; i < 24; i++) {
      const a = want.data.subarray(i * k, (i + 1) * k), b = got.data.subarray(i * k, (i + 1) * k);
      const m = maxAbs(a);
      const d = Math.max(...a.map((v, j) => Math.abs(v - b[j]!)));
      if (d <= 1e-4 * m) within++;
      if (a.indexOf(Math.max(...a)) === b.indexOf(Math.max(...b))) agree++;
    }
    assert.ok(within >= 18, `${label}: ${within} of 24 images within 1e-4`);
    assert.ok(agree >= 23, `${label}: ${agree} of 24 predictions agree`);
  });
}

test('integer inference: the student is left as it was; the image conv and the classifier stay float', () => {
  const s = student(POLICIES[0]!);
  const x = images(4, 3);
  const before = F.noGrad(() => s.forward(x)).data.slice();
  const { model, layers } = integerModel(s);
  F.noGrad(() => model.forward(x));
  assert.deepEqual(F.noGrad(() => s.forward(x)).data, before);
  const floats = layers.filter(([, l]) => l.counts.float > 0).map(([p]) => p).sort();
  assert.deepEqual(floats, ['features.init_block.conv.conv', 'output']);
  assert.match(describeIntLayers(layers), /^20 of 22 conv\/linear layers ran on integer codes/);
});

test('integer inference: buffers reused from one forward to the next change no logit, and earlier outputs stay as they were', () => {
  const { model } = integerModel(student({ wbits: 4, abits: 4, act: 'granq', weight: 'channel' }));
  const inner = (model as IntegerModel).model;
  const xs = [images(7, 11), images(64, 12), images(7, 13), images(64, 14)];
  F.noGrad(() => model.forward(images(2, 10))); // the first forward folds the BatchNorms into the convs
  // Outside IntegerModel.forward every layer writes fresh buffers: the reference.
  const fresh = xs.map((x) => F.noGrad(() => inner.forward(x)).data.slice());
  const outs = xs.map((x) => F.noGrad(() => model.forward(x)));
  outs.forEach((y, i) => assertBitEqual(y.data, fresh[i]!, `forward ${i}`));
  const again = F.noGrad(() => model.forward(xs[0]!));
  assertBitEqual(again.data, fresh[0]!, 'forward 0 repeated');
  outs.forEach((y, i) => assertBitEqual(y.data, fresh[i]!, `forward ${i} after later ones`));
  // Under F.inference (evaluation) too, with plain forwards (pooled buffers) in between: the same logits.
  for (const [i, x] of xs.entries()) {
    const y = F.inference(() => model.forward(x));
    const other = F.inference(() => inner.forward(x));  // fresh buffers, taken from the pool
    assertBitEqual(y.data, fresh[i]!, `forward ${i} under inference`);
    assertBitEqual(other.data, fresh[i]!, `plain forward ${i} under inference`);
  }
  // A model whose output is a quantizer's (a reused buffer) hands out a copy.
  const tail = new IntegerModel(new IntActQuantizer(actQuantizers(student({ wbits: 4, abits: 4, act: 'granq', weight: 'channel' }))[0]![1]));
  const a = F.noGrad(() => tail.forward(xs[0]!));
  const first = a.data.slice();
  F.noGrad(() => tail.forward(xs[2]!));
  assertBitEqual(a.data, first, 'the first output was written over');
});

/**
 * A quantized conv into an eval BatchNorm + ReLU; the conv's output is read by the BatchNorm alone, or also by an add
 * (an op), or also by an activation quantizer (whose integer form calls a kernel, not an op).
 */
class ConvBn extends Module {
  readonly q = this.child('q', new GranqActQuantizer(4));
  readonly conv = this.child('conv', new QuantConv2d(new Conv2d(3, 8, 3, { padding: 1, rng: new Rng(5) }), new ChannelWeightQuantizer(4)));
  readonly bn = this.child('bn', new BatchNorm2d(8));
  readonly q2 = this.child('q2', new GranqActQuantizer(6));

  constructor(readonly shared: 'alone' | 'op' | 'quantizer') {
    super();
    const rng = new Rng(6);
    for (const t of [this.bn.weight!, this.bn.bias!, this.bn.runningMean]) t.data.forEach((_, i, a) => { a[i] = rng.normal(); });
    this.bn.runningVar.data.forEach((_, i, a) => { a[i] = 0.5 + rng.uniform(); });
    this.eval();
  }

  forward(x: Tensor): Tensor {
    const y = this.conv.forward(this.q.forward(x));
    const z = this.bn.forward(y, true);
    return this.shared === 'alone' ? z : F.add(z, this.shared === 'op' ? y : this.q2.forward(y));
  }
}

test('integer inference: quantizers that only integer convs read write codes alone; the logits are those of writing both, bit for bit', () => {
  for (const policy of [POLICIES[0]!, POLICIES[4]!]) {
    const s = student(policy);
    const x = images(6, 8);
    const { model } = integerModel(s);
    const { model: both } = integerModel(s);
    const got = F.noGrad(() => model.forward(x));
    F.noGrad(() => both.forward(x)); // plans it (codes-only marked), then codes-only is switched off below
    const quants = (m: Module) => m.namedModules().filter(([, q]) => q instanceof IntActQuantizer).map(([, q]) => q as IntActQuantizer);
    for (const q of quants(both)) q.codesOnly = false;
    const want = F.noGrad(() => both.forward(x));
    assertBitEqual(got.data, want.data, `${policy.act} W${policy.wbits}A${policy.abits}`);
    // ResNet-20 (projection shortcuts): 11 of its 19 quantizers feed integer convs alone; the others also feed a
    // residual add or the pooling.
    assert.equal(quants(model).filter((q) => q.codesOnly).length, 11);
  }
});

test('integer inference: a BatchNorm is folded into the conv before it only when it alone reads the conv\'s output', () => {
  for (const shared of ['alone', 'op', 'quantizer'] as const) {
    const fake = new ConvBn(shared);
    const { model, layers } = integerModel(fake);
    const x = images(5, 21);
    const want = F.noGrad(() => fake.forward(x));
    const got = F.noGrad(() => model.forward(x));
    assert.equal((model as IntegerModel).foldedBatchNorms, shared === 'alone' ? 1 : 0);
    assert.equal(layers[0]![1].folded?.relu, shared === 'alone' ? true : undefined);
    assert.equal(layers[0]![1].counts.int, 2, 'the planning forward and the real one ran on codes');
    // The input quantizer's output is read by the integer conv alone: codes only. q2's (the 'quantizer' variant) by
    // an add; elsewhere q2 does not run.
    const quants = model.namedModules().filter(([, m]) => m instanceof IntActQuantizer).map(([n, m]) => [n.replace(/^model\./, ''), (m as IntActQuantizer).codesOnly] as const);
    assert.deepEqual(quants, [['q', true], ['q2', false]], `shared ${shared}`);
    const scale = maxAbs(want.data);
    for (let i = 0; i < want.size; i++) assert.ok(Math.abs(got.data[i]! - want.data[i]!) <= 1e-5 * scale, `shared ${shared}: element ${i}`);
  }
});

test('integer inference: bad inputs are one-line GranqErrors', () => {
  assert.throws(() => integerModel(teacher), (e: unknown) => e instanceof GranqError && /no activation quantizers/.test(e.message));
  const { model } = integerModel(student({ wbits: 4, abits: 8, act: 'granq', weight: 'channel' }));
  assert.throws(() => F.noGrad(() => model.forward(images(1, 1))), (e: unknown) => e instanceof GranqError && /at most 7 bits/.test(e.message));
});

test('CLI: granq eval --int of a run and of its pack file: the fake-quant predictions within 2 images; errors are one line', { skip: noShared }, () => {
  const run = ptqRunDir(DEFAULT_TEACHER, { wbits: 4, abits: 4, act: 'granq', weight: 'channel' });
  const student = path.join(run, 'student.safetensors');
  const fake = lastJson(granq('eval', '--model', student, '--data', CIFAR10_DIR, '--limit', '300', '--json').stdout);
  const r = granq('eval', '--model', student, '--data', CIFAR10_DIR, '--limit', '300', '--int', '--json');
  assert.equal(r.code, 0, r.stderr);
  const int = lastJson(r.stdout);
  assert.equal(int.engine, 'integer');
  assert.equal(int.int_layers, 20);
  assert.deepEqual(int.float_layers.sort(), ['features.init_block.conv.conv', 'output']);
  assert.ok(Math.abs(int.correct - fake.correct) <= 2, `integer ${int.correct} vs fake-quant ${fake.correct}`);
  assert.match(r.stdout, /^engine   integer/m);
  const file = path.join(run, 'w4.granq');
  assert.equal(granq('pack', run, '--out', file).code, 0);
  const packed = lastJson(granq('eval', '--model', file, '--data', CIFAR10_DIR, '--limit', '300', '--int', '--json').stdout);
  assert.equal(packed.correct, int.correct);
  assertOneLineError(granq('eval', '--data', CIFAR10_DIR, '--limit', '10', '--int'), 1, /--int: integer inference needs a quantized model/);
});

test('CLI: granq bench int prints every policy and batch with positive rates, and its JSON', () => {
  const r = granq('bench', 'int', '--batch', '2', '--runs', '1', '--json');
  assert.equal(r.code, 0, r.stderr);
  const { rows } = lastJson(r.stdout);
  assert.deepEqual(rows.map((x: { policy: string }) => x.policy), ['W8A8 layer/channel', 'W4A4 layer/channel', 'W4A4 granq/channel']);
  for (const x of rows) {
    assert.equal(x.batch, 2);
    for (const k of ['fp_img_s', 'fake_img_s', 'int_img_s', 'ort_img_s']) assert.ok(x[k] > 0, `${x.policy} ${k} = ${x[k]}`);
  }
  assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('| W')).length, 3);
});
