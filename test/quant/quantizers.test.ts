/** Quantizers, estimators, policy and quantizeModel (small tensors and ResNet-20 trees; kernels on the reference backend). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/autograd/index.js';
import { withBackend } from '../../src/backend/index.js';
import { GranqError } from '../../src/errors.js';
import { createModel } from '../../src/models/registry.js';
import { Conv2d } from '../../src/nn/layers.js';
import {
  actQuantizers, ACT_KINDS, calibrate, ChannelStaticActQuantizer, EmaEstimator, fakeQuantGroups, fakeQuantRows, formatSummary,
  LayerActQuantizer, MinMaxEstimator, QuantConv2d, QuantLinear, quantizeModel, quantizers, validatePolicy, WEIGHT_KINDS, batchRanges,
  qparams, GranqActQuantizer, ChannelLoopActQuantizer, SliceWeightQuantizer, ChannelWeightQuantizer, TensorWeightQuantizer,
} from '../../src/quant/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { refBackend } from '../../src/backend/index.js';

const ref = <T>(fn: () => T) => withBackend(refBackend, fn);
const relu = (shape: number[], seed: number) => F.noGrad(() => F.relu(Tensor.randn(shape, new Rng(seed))));

describe('estimators', () => {
  test('EMA: released recursive bias correction overshoots (~3945x at step 21), correct EMA stays at the batch value', () => {
    const rel = new EmaEstimator({ releasedBiasCorrection: true });
    const ok = new EmaEstimator();
    let peak = 0;
    let at = 0;
    for (let t = 1; t <= 50; t++) {
      rel.observeRange(1, 1);
      ok.observeRange(1, 1);
      const v = rel.ranges()!.mins[0]!;
      if (v > peak) { peak = v; at = t; }
      assert.ok(Math.abs(ok.ranges()!.mins[0]! - 1) < 1e-6, `correct EMA at step ${t}: ${ok.ranges()!.mins[0]}`);
    }
    assert.equal(at, 21);
    assert.ok(Math.abs(peak / 3945 - 1) < 0.01, `peak ${peak}`);
    assert.ok(Math.abs(rel.ranges()!.mins[0]! / 489 - 1) < 0.01, `step 50: ${rel.ranges()!.mins[0]}`);
  });

  test('EMA observe switch: frozen estimators ignore batches', () => {
    ref(() => {
      const e = new EmaEstimator();
      e.observe(Tensor.from([0, 2]));
      e.observing = false;
      e.observe(Tensor.from([-5, 9]));
      assert.deepEqual([e.ranges()!.mins[0], e.ranges()!.maxs[0]].map((v) => Math.round(v! * 1e5) / 1e5), [0, 2]);
    });
  });

  test('min-max and static per-channel: running per-channel ranges over (B, H, W)', () => {
    ref(() => {
      const a = relu([2, 3, 4, 4], 1);
      const b = relu([3, 3, 4, 4], 2);
      const e = new MinMaxEstimator(1);
      e.observe(a);
      e.observe(b);
      for (let c = 0; c < 3; c++) {
        let m = Infinity; let M = -Infinity;
        for (const t of [a, b]) for (let n = 0; n < t.shape[0]!; n++) for (let i = 0; i < 16; i++) {
          const v = t.data[(n * 3 + c) * 16 + i]!; m = Math.min(m, v); M = Math.max(M, v);
        }
        assert.equal(e.ranges()!.mins[c], m);
        assert.equal(e.ranges()!.maxs[c], M);
      }
    });
  });
});

describe('quantizers', () => {
  test('granq == channel-loop == estimator-then-groups per (sample, channel), incl. dead and constant channels', () => {
    ref(() => {
      const x = relu([3, 5, 7, 7], 3);
      x.data.fill(0, 1 * 49, 2 * 49); // dead channel
      x.data.fill(0.7, 7 * 49, 8 * 49); // constant channel
      for (const bits of [2, 3, 4, 8]) {
        const g = F.noGrad(() => new GranqActQuantizer(bits).forward(x));
        const l = F.noGrad(() => new ChannelLoopActQuantizer(bits).forward(x));
        const r = batchRanges(F.reshape(x, [15, 49]), 0);
        const s = F.noGrad(() => fakeQuantGroups(F.reshape(x, [15, 49]), bits, [1, 15, 49], r.mins, r.maxs, false));
        assert.deepEqual(Array.from(g.data), Array.from(l.data));
        assert.deepEqual(Array.from(g.data), Array.from(s.data));
      }
    });
  });

  test('quantized values lie on integer levels of the grid', () => {
    ref(() => {
      const w = Tensor.randn([4, 3, 3, 3], new Rng(4));
      for (const [Q, rows] of [[SliceWeightQuantizer, 12], [ChannelWeightQuantizer, 4], [TensorWeightQuantizer, 1]] as const) {
        const y = F.noGrad(() => new Q(3).forward(w));
        const cols = w.size / rows;
        for (let r = 0; r < rows; r++) {
          const seg = w.data.subarray(r * cols, (r + 1) * cols);
          const { scale } = qparams({ mins: Float32Array.of(Math.min(...seg)), maxs: Float32Array.of(Math.max(...seg)) }, 3);
          const levels = new Set(Array.from(y.data.subarray(r * cols, (r + 1) * cols), (v) => Math.round(v * scale[0]!)));
          assert.ok(levels.size <= 8, `${Q.name} row ${r}: ${levels.size} levels`);
          for (let i = 0; i < cols; i++) assert.ok(Math.abs(y.data[r * cols + i]! * scale[0]! - Math.round(y.data[r * cols + i]! * scale[0]!)) < 1e-3);
        }
      }
    });
  });

  test('STE: the gradient through every quantizer equals the incoming gradient', () => {
    ref(() => {
      const mk = (bits: number) => [
        new GranqActQuantizer(bits), new ChannelLoopActQuantizer(bits), new LayerActQuantizer(bits), new ChannelStaticActQuantizer(bits),
        new SliceWeightQuantizer(bits), new ChannelWeightQuantizer(bits), new TensorWeightQuantizer(bits),
      ];
      for (const q of mk(3)) {
        const x = Tensor.randn([2, 3, 4, 4], new Rng(5)).requireGrad();
        const gy = Tensor.randn([2, 3, 4, 4], new Rng(6));
        const y = q.forward(x);
        assert.ok(y.requiresGrad, q.kind);
        y.backward(gy);
        assert.deepEqual(Array.from(x.grad!.data), Array.from(gy.data), `${q.kind}: gradient changed`);
      }
    });
  });

  test('quantize switch off = identity; layer before calibration is a clear error', () => {
    ref(() => {
      const x = relu([2, 3, 4, 4], 7);
      const q = new GranqActQuantizer(3);
      q.quantizing = false;
      assert.equal(q.forward(x), x);
      const l = new LayerActQuantizer(3);
      l.observing = false;
      assert.throws(() => l.forward(x), (e: Error) => e instanceof GranqError && /calibrate/.test(e.message));
    });
  });
});

describe('policy and quantizeModel', () => {
  test('validatePolicy: bits 2..8, known names, no unknown fields', () => {
    const good = { wbits: 4, abits: 3, act: 'granq', weight: 'slice' };
    assert.deepEqual(validatePolicy(good), good);
    const bad: [unknown, RegExp][] = [
      [{ ...good, wbits: 1 }, /wbits must be an integer in 2\.\.8, got 1/],
      [{ ...good, abits: 9 }, /abits must be an integer in 2\.\.8, got 9/],
      [{ ...good, abits: 3.5 }, /abits/],
      [{ ...good, act: 'lsq' }, /act must be one of granq, channel-loop, layer, channel-static, got "lsq"/],
      [{ ...good, weight: 'row' }, /weight must be one of slice, channel, tensor/],
      [{ ...good, skip: 'conv1' }, /skip must be a list/],
      [{ ...good, bits: 4 }, /unknown field\(s\) bits/],
      [{ ...good, releasedEma: true }, /releasedEma applies only to act 'layer'/],
      [{ ...good, weightClip: 'mse' }, /weightClip 'mse' needs clamped weights \(channel or tensor\), got weight 'slice'/],
      [{ ...good, weight: 'channel', weightClip: 'lsq' }, /weightClip must be one of minmax, mse, learned, got "lsq"/],
      [{ ...good, weightClip: 'learned' }, /weightClip 'learned' needs clamped weights \(channel or tensor\), got weight 'slice'/],
      [null, /expected an object/],
    ];
    for (const [p, re] of bad) assert.throws(() => validatePolicy(p), (e: Error) => e instanceof GranqError && re.test(e.message), JSON.stringify(p));
    assert.deepEqual([...ACT_KINDS], ['granq', 'channel-loop', 'layer', 'channel-static']);
    assert.deepEqual([...WEIGHT_KINDS], ['slice', 'channel', 'tensor']);
    // 'minmax' is the default and is not written, so policies (and the runs keyed by them) stay as they were.
    assert.deepEqual(validatePolicy({ ...good, weight: 'channel', weightClip: 'minmax' }), { ...good, weight: 'channel' });
    assert.deepEqual(validatePolicy({ ...good, weight: 'tensor', weightClip: 'mse' }), { ...good, weight: 'tensor', weightClip: 'mse' });
  });

  test('weight clip mse: the groups fake-quant with the searched ranges, inside min/max, less error than min/max at 3 bits', () => {
    const w = Tensor.randn([16, 8, 3, 3], new Rng(41));
    for (const [Q, rows] of [[ChannelWeightQuantizer, 16], [TensorWeightQuantizer, 1]] as const) {
      const mse = new Q(3, 'mse');
      const plain = new Q(3);
      const r = mse.rowRanges(w);
      const p = plain.rowRanges(w);
      assert.equal(r.mins.length, rows);
      const y = F.noGrad(() => mse.forward(w));
      assert.deepEqual([...y.data], [...fakeQuantGroups(w, 3, [1, rows, w.size / rows], r.mins, r.maxs, true).data]);
      const err = (t: Tensor) => t.data.reduce((a, v, i) => a + (v - w.data[i]!) ** 2, 0);
      assert.ok(err(y) < err(F.noGrad(() => plain.forward(w))), `${Q.name}: clipped error below min/max`);
      for (let i = 0; i < rows; i++) assert.ok(r.mins[i]! >= p.mins[i]! && r.maxs[i]! <= p.maxs[i]!, `${Q.name} row ${i} inside min/max`);
    }
    // quantizeModel honours the policy: every weight quantizer of the student clips.
    const { student } = quantizeModel(createModel('resnet20-b', 10), { wbits: 3, abits: 3, act: 'granq', weight: 'channel', weightClip: 'mse' });
    const wqs = student.namedModules().filter(([, m]) => m instanceof QuantConv2d || m instanceof QuantLinear).map(([, m]) => (m as QuantConv2d).wq);
    assert.equal(wqs.length, 22);
    assert.ok(wqs.every((q) => q.clip === 'mse'));
  });

  test('weight clip learned: trained ranges start at the mse ones; LSQ gradients by hand; saved and loaded with the student', () => {
    const w = Tensor.randn([6, 4, 3, 3], new Rng(43));
    const conv = new Conv2d(4, 6, 3, { rng: new Rng(2) });
    conv.weight.data.set(w.data);
    const learned = new QuantConv2d(conv, new ChannelWeightQuantizer(3, 'learned'));
    const mse = new ChannelWeightQuantizer(3, 'mse');
    const wq = learned.wq;
    // Parameters 'lo' and 'hi' of the layer, one per output channel, at the mse ranges: the same forward.
    assert.deepEqual(learned.namedParameters().map(([k]) => k).sort(), ['bias', 'weight', 'wq.hi', 'wq.lo']);
    const r = mse.rowRanges(w);
    assert.deepEqual([...wq.rowRanges(w).mins], [...r.mins]);
    assert.deepEqual([...F.noGrad(() => wq.forward(w)).data], [...F.noGrad(() => mse.forward(w)).data]);
    assert.throws(() => new ChannelWeightQuantizer(3, 'learned').forward(w), /clip 'learned' has no ranges; bind\(\) it to its weight first/);
    assert.throws(() => wq.bind(w), /bound twice/);

    // Gradients: x where its code is inside the range, none where clipped; lo and hi by LSQ's rule (see the op).
    const [lo, hi] = [learned.namedParameters().find(([k]) => k === 'wq.lo')![1], learned.namedParameters().find(([k]) => k === 'wq.hi')![1]];
    const x = w.clone().requireGrad();
    const gy = Tensor.randn([6, 4, 3, 3], new Rng(44));
    wq.forward(x).backward(gy);
    const cols = 36, n = 7, qmin = -4, qmax = 3, g = 1 / Math.sqrt(cols * qmax);
    let clipped = 0;
    const qp = qparams({ mins: lo.data, maxs: hi.data }, 3);
    for (let row = 0; row < 6; row++) {
      const [s, z] = [qp.scale[row]!, qp.zeroPoint[row]!];
      let step = 0, out = 0;
      for (let i = row * cols; i < (row + 1) * cols; i++) {
        const t = Math.fround(Math.fround(s * w.data[i]!) - z);
        const q = Math.round(t) - (Math.round(t) - t === 0.5 && Math.round(t) % 2 !== 0 ? 1 : 0);
        const inside = q >= qmin && q <= qmax;
        assert.equal(x.grad!.data[i], inside ? gy.data[i] : 0, `x gradient ${i}`);
        if (!inside) { clipped++; out += gy.data[i]!; }
        step += gy.data[i]! * (q > qmax ? n : q < qmin ? 0 : q - t);
      }
      assert.ok(Math.abs(hi.grad!.data[row]! - (g * step) / n) <= 1e-6 * (1 + Math.abs(g * step)), `hi gradient, row ${row}`);
      assert.ok(Math.abs(lo.grad!.data[row]! - g * (out - step / n)) <= 1e-6 * (1 + Math.abs(g * out)), `lo gradient, row ${row}`);
    }
    assert.ok(clipped > 0, 'the mse ranges clip some weights at 3 bits');

    // A student with learned ranges: the ranges are student parameters, saved and loaded with it.
    const { student } = quantizeModel(createModel('resnet20-b', 10), { wbits: 3, abits: 3, act: 'granq', weight: 'channel', weightClip: 'learned' });
    const names = student.namedParameters().map(([k]) => k).filter((k) => /\.wq\.(lo|hi)$/.test(k));
    assert.equal(names.length, 44);
    const sd = student.stateDict();
    const { student: again } = quantizeModel(createModel('resnet20-b', 10), { wbits: 3, abits: 3, act: 'granq', weight: 'channel', weightClip: 'learned' });
    for (const k of names) sd.get(k)!.data.forEach((v, i, a) => { a[i] = v * 0.9; });
    again.loadStateDict(sd);
    for (const k of names) assert.deepEqual([...again.stateDict().get(k)!.data], [...sd.get(k)!.data], k);
  });

  test('ResNet-20 option A: 19 act quantizers, 19 convs + 1 linear (no 1x1 convs, no warning)', () => {
    const warnings: string[] = [];
    const { student, summary } = quantizeModel(createModel('resnet20-a', 10), { wbits: 3, abits: 3, act: 'granq', weight: 'slice' }, { warn: (s) => warnings.push(s) });
    assert.equal(summary.acts, 19);
    assert.equal(summary.convs, 19);
    assert.equal(summary.linears, 1);
    assert.equal(actQuantizers(student).length, 19);
    assert.equal(student.namedModules().filter(([, m]) => m instanceof QuantConv2d).length, 19);
    assert.equal(student.namedModules().filter(([, m]) => m instanceof QuantLinear).length, 1);
    assert.deepEqual(warnings, []);
    assert.match(formatSummary(summary), /19 quantized convs, 1 linear, 19 activation quantizers/);
  });

  test('ResNet-20 option B: 19 act quantizers, 21 convs + 1 linear; slice warns once about the two 1x1 convs', () => {
    const warnings: string[] = [];
    const { summary } = quantizeModel(createModel('resnet20-b', 10), { wbits: 3, abits: 3, act: 'layer', weight: 'slice' }, { warn: (s) => warnings.push(s) });
    assert.equal(summary.acts, 19);
    assert.equal(summary.convs, 21);
    assert.equal(summary.linears, 1);
    assert.deepEqual(summary.effectivelyFp, ['features.stage2.unit1.identity_conv.conv', 'features.stage3.unit1.identity_conv.conv']);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /1x1 conv\(s\) features\.stage2\.unit1\.identity_conv\.conv, features\.stage3\.unit1\.identity_conv\.conv .*effectively full precision/);
    const none: string[] = [];
    quantizeModel(createModel('resnet20-b', 10), { wbits: 3, abits: 3, act: 'granq', weight: 'channel' }, { warn: (s) => none.push(s) });
    assert.deepEqual(none, []);
  });

  test('the slice rule leaves 1x1 weights unchanged (effectively FP) and quantizes 3x3 ones', () => {
    ref(() => {
      const w1 = Tensor.randn([8, 4, 1, 1], new Rng(8));
      const w3 = Tensor.randn([8, 4, 3, 3], new Rng(9));
      const q = new SliceWeightQuantizer(3);
      const y1 = F.noGrad(() => q.forward(w1));
      const y3 = F.noGrad(() => q.forward(w3));
      for (let i = 0; i < w1.size; i++) assert.ok(Math.abs(y1.data[i]! - w1.data[i]!) <= 1e-6 * Math.abs(w1.data[i]!) + 1e-7);
      let changed = 0;
      for (let i = 0; i < w3.size; i++) if (Math.abs(y3.data[i]! - w3.data[i]!) > 1e-3) changed++;
      assert.ok(changed > w3.size / 2, `${changed} of ${w3.size} 3x3 weights changed`);
    });
  });

  test('the teacher is not mutated: same modules, same tensors, same values; student tensors are copies', () => {
    ref(() => {
      const teacher = createModel('resnet20-a', 10).eval();
      const before = new Map([...teacher.stateDict()].map(([k, t]) => [k, t.data.slice()]));
      const modsBefore = teacher.namedModules().map(([p, m]) => [p, m.constructor.name]);
      const { student } = quantizeModel(teacher, { wbits: 3, abits: 3, act: 'layer', weight: 'channel' });
      calibrate(student, [{ x: Tensor.randn([2, 3, 32, 32], new Rng(10)) }]);
      const x = Tensor.randn([2, 3, 32, 32], new Rng(11));
      const loss = F.sum(student.train().forward(x));
      loss.backward();
      for (const p of student.parameters()) p.data.fill(0.5);
      assert.deepEqual(teacher.namedModules().map(([p, m]) => [p, m.constructor.name]), modsBefore);
      for (const [k, t] of teacher.stateDict()) {
        assert.deepEqual(t.data, before.get(k), k);
        assert.equal(t.grad, null, `${k} got a gradient`);
      }
      const sk = [...student.stateDict().keys()];
      assert.deepEqual(sk.filter((k) => !k.includes('.wq.')).sort(), [...teacher.stateDict().keys()].sort());
      for (const [k, t] of student.stateDict()) assert.notEqual(t, teacher.stateDict().get(k));
      assert.equal(teacher.training, false);
    });
  });

  test('skip keeps modules FP and unknown skip paths are an error', () => {
    const { student, summary } = quantizeModel(createModel('resnet20-a', 10), { wbits: 4, abits: 4, act: 'granq', weight: 'slice', skip: ['conv1', 'linear', 'layer1.0'] }, { warn: () => {} });
    assert.equal(summary.convs, 19 - 1 - 2);
    assert.equal(summary.linears, 0);
    assert.equal(summary.acts, 19 - 2);
    assert.equal(quantizers(student).filter(([p]) => p.startsWith('layer1.0.')).length, 0);
    assert.throws(() => quantizeModel(createModel('resnet20-a', 10), { wbits: 4, abits: 4, act: 'granq', weight: 'slice', skip: ['nope'] }),
      /skip path 'nope' names no module/);
  });

  test('calibrate: layer and channel-static get frozen ranges; quantizing back on', () => {
    ref(() => {
      for (const act of ['layer', 'channel-static'] as const) {
        const { student } = quantizeModel(createModel('resnet20-a', 10), { wbits: 4, abits: 4, act, weight: 'tensor' });
        const r = calibrate(student, [{ x: Tensor.randn([2, 3, 32, 32], new Rng(12)) }, { x: Tensor.randn([3, 3, 32, 32], new Rng(13)) }]);
        assert.deepEqual(r, { batches: 2, images: 5 });
        for (const [, q] of actQuantizers(student)) {
          assert.equal(q.observing, false);
          assert.equal(q.quantizing, true);
          assert.ok(q.estimator.ranges());
        }
        const y = F.noGrad(() => student.eval().forward(Tensor.randn([1, 3, 32, 32], new Rng(14))));
        assert.ok(y.data.every(Number.isFinite));
      }
    });
  });

  test('fake quant on a 2-D tensor: rows (granq released rule) and per-tensor', () => {
    ref(() => {
      const x = Tensor.randn([3, 10], new Rng(15));
      const y = F.noGrad(() => fakeQuantRows(x, 8));
      for (let i = 0; i < x.size; i++) assert.ok(Math.abs(y.data[i]! - x.data[i]!) < 0.02);
    });
  });
});
