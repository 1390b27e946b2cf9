/**
 * Storage accounting (quant/bits.ts): each layer's bits counted by hand for the slice, channel and tensor rules on
 * 3x3 and 1x1 convs and a linear layer, with float32 zero points (as exported) and with integer zero points; the
 * integer form is checked to dequantize to the same weights as the fake-quant op.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchNorm2d, Conv2d, Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { qparams, quantCode, rowRange } from '../../src/backend/ref/quant.js';
import { ChannelWeightQuantizer, modelBits, quantizeModel, signedWidth, SliceWeightQuantizer, TensorWeightQuantizer, weightBits, zeroPoints } from '../../src/quant/index.js';
import { rowMinMax } from '../../src/quant/estimators.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';

const rows = (q: { rowsOf(s: readonly number[]): [number, number] }, shape: number[]) => q.rowsOf(shape)[0];

describe('bits accounting', () => {
  test('signed widths', () => {
    for (const [v, w] of [[0, 1], [-1, 1], [1, 2], [4, 4], [-4, 3], [7, 4], [-8, 4], [127, 8], [-128, 8], [128, 9]] as const) assert.equal(signedWidth(v), w, `${v}`);
  });

  test('float32 scale and zero point per row (as exported): counted by hand', () => {
    const slice = new SliceWeightQuantizer(3);
    const channel = new ChannelWeightQuantizer(3);
    const tensor = new TensorWeightQuantizer(4);
    const cases: [string, number, number[], number, number][] = [
      // rule, k, shape, rows, total bits = n*k + rows*64
      ['slice', 3, [2, 3, 3, 3], rows(slice, [2, 3, 3, 3]), 54 * 3 + 6 * 64],   // 10.11 bits/weight: 3 + 64/9
      ['slice', 3, [4, 2, 1, 1], rows(slice, [4, 2, 1, 1]), 8 * 3 + 8 * 64],    // 1x1: 67 bits per weight
      ['channel', 3, [4, 3, 3, 3], rows(channel, [4, 3, 3, 3]), 108 * 3 + 4 * 64], // 3 + 64/27
      ['channel', 3, [4, 2, 1, 1], rows(channel, [4, 2, 1, 1]), 8 * 3 + 4 * 64],
      ['channel', 3, [10, 64], rows(channel, [10, 64]), 640 * 3 + 10 * 64],
      ['tensor', 4, [4, 3, 3, 3], rows(tensor, [4, 3, 3, 3]), 108 * 4 + 64],
    ];
    assert.deepEqual(cases.map((c) => c[3]), [6, 8, 4, 4, 10, 1]);
    for (const [rule, k, shape, r, total] of cases) {
      const b = weightBits('w', rule as 'slice', k, shape, r, [], 'f32');
      assert.equal(b.totalBits, total, `${rule} ${shape}`);
      assert.equal(b.bitsPerWeight, total / shape.reduce((a, x) => a * x, 1));
    }
    assert.ok(Math.abs(weightBits('w', 'slice', 3, [2, 3, 3, 3], 6, [], 'f32').bitsPerWeight - (3 + 64 / 9)) < 1e-12);
  });

  test('integer zero points at the layer\'s smallest width: counted by hand, and exact', () => {
    // Channel rule, k = 3, two output channels of 9 weights: ranges [-1, 1] and [0, 7].
    const w = new Float32Array(18);
    for (let i = 0; i < 9; i++) {
      w[i] = -1 + (2 * i) / 8;
      w[9 + i] = (7 * i) / 8;
    }
    // s = 7/2, z = round(-3.5) + 4 = 0 (half to even); s = 1, z = 0 + 4 = 4: a 4-bit signed integer.
    assert.deepEqual(zeroPoints(rowMinMax(w, 2, 9), 3), [0, 4]);
    const b = weightBits('w', 'channel', 3, [2, 1, 3, 3], 2, zeroPoints(rowMinMax(w, 2, 9), 3), 'int-zp');
    assert.equal(b.zeroBits, 4);
    assert.equal(b.totalBits, 18 * 3 + 2 * (32 + 4));
    // Dequantizing with the integer zero point gives the fake-quant weights bit for bit.
    const q = new ChannelWeightQuantizer(3).quantize(new Tensor(w, [2, 1, 3, 3]));
    for (let r = 0; r < 2; r++) {
      const { s, z } = qparams(...rowRange(w, r * 9, 9), 3);
      assert.ok(Number.isInteger(z));
      for (let i = r * 9; i < (r + 1) * 9; i++) assert.equal(Math.fround(Math.fround(quantCode(w[i]!, s, z, 3, true) + z) / s), q.data[i]);
    }
  });

  test('a model: quantized weights at their bits, every other value at 32 bits, against FP32', () => {
    const rng = new Rng(3);
    const fp = new Sequential(new Conv2d(3, 4, 3, { rng, bias: false }), new BatchNorm2d(4), new ReLU(), new Conv2d(4, 8, 1, { rng, bias: false }), new Linear(8, 10, { rng }));
    const fpValues = [...fp.stateDict().values()].reduce((a, t) => a + t.size, 0);
    for (const weight of ['slice', 'channel'] as const) {
      const { student } = quantizeModel(fp, { wbits: 3, abits: 3, act: 'granq', weight }, { warn: () => {} });
      const b = modelBits(student, 'f32');
      // conv 3x3: 108 weights; conv 1x1: 32; linear: 80. Rows under slice: 12, 32, 10; under channel: 4, 8, 10.
      const rowCount = weight === 'slice' ? 12 + 32 + 10 : 4 + 8 + 10;
      assert.equal(b.quantizedWeights, 108 + 32 + 80);
      assert.equal(b.otherValues, fpValues - 220);
      assert.equal(b.totalBits, 220 * 3 + rowCount * 64 + 32 * (fpValues - 220));
      assert.equal(b.fp32Bytes, 4 * fpValues);
      assert.equal(b.bytes, Math.ceil(b.totalBits / 8));
      const i = modelBits(student, 'int-zp');
      assert.ok(i.totalBits < b.totalBits);
      assert.equal(i.layers.length, 3);
    }
  });
});
