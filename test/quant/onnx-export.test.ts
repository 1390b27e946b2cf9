/**
 * exportOnnx against onnxruntime-node, in process: a graph using every composite of the importer (MaxPool, Pad,
 * Concat) and a dense head, run at a batch size other than the traced one; a full-precision model with BatchNorm;
 * static activation ranges with clamped per-channel weights. The W4A4 granq round trip on the full test set is in
 * test/cli/onnx.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import * as F from '../../src/autograd/index.js';
import { batches, loadCifarSplit } from '../../src/data/cifar.js';
import { decodeModel, encodeModel, floatTensorProto, int64TensorProto, makeNode, valueInfo } from '../../src/io/onnx-proto.js';
import { loadModel } from '../../src/models/load.js';
import { graphFromProto } from '../../src/models/onnx-import.js';
import type { Module } from '../../src/nn/module.js';
import { exportOnnx, preparePtq, QuantConv2d, QuantLinear, quantizeModel } from '../../src/quant/index.js';
import { createModel } from '../../src/models/registry.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { maxAbsDiff } from '../kit/compare.js';
import { MOBILENET_INPUT, mobileNetV2Onnx } from '../kit/mobilenet-onnx.js';
import { CIFAR10_DIR, noShared, SHARED_MODEL } from '../kit/shared.js';

async function runOrt(model: Module, input: [number, number, number], x: Tensor): Promise<Float32Array> {
  const ex = exportOnnx(model, { input });
  const session = await ort.InferenceSession.create(encodeModel(ex.model));
  const out = await session.run({ input: new ort.Tensor('float32', x.data, [...x.shape]) });
  return out['logits']!.data as Float32Array;
}

describe('ONNX export vs onnxruntime', () => {
  test('an imported graph with MaxPool, asymmetric Pad, Concat, LeakyRelu and Gemm, at another batch size than traced', async () => {
    const rng = new Rng(3);
    const t = (shape: number[]) => Tensor.randn(shape, rng);
    const init = (name: string, v: Tensor) => floatTensorProto(name, v.shape, v.data);
    const bytes = encodeModel({
      irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'g',
        node: [
          makeNode('Conv', ['x', 'c.weight', 'c.bias'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
          makeNode('LeakyRelu', ['c'], ['l'], 'leaky', { alpha: { float: 0.1 } }),
          makeNode('MaxPool', ['l'], ['m'], 'pool', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
          makeNode('Pad', ['m', 'pads'], ['p'], 'pad'),
          makeNode('Relu', ['p'], ['r'], 'relu'),
          makeNode('Concat', ['p', 'r'], ['cat'], 'cat', { axis: 1 }),
          makeNode('GlobalAveragePool', ['cat'], ['gap'], 'gap'),
          makeNode('Flatten', ['gap'], ['f'], 'flat'),
          makeNode('Gemm', ['f', 'fc.weight', 'fc.bias'], ['y'], 'fc', { transB: 1 }),
        ],
        initializer: [init('c.weight', t([4, 3, 3, 3])), init('c.bias', t([4])), int64TensorProto('pads', [0, 0, 1, 0, 0, 0, 0, 1]),
          init('fc.weight', t([5, 8])), init('fc.bias', t([5]))],
        input: [valueInfo('x', ['N', 3, 9, 9])],
        output: [valueInfo('y', ['N', 5])],
      },
    });
    const g = graphFromProto(decodeModel(bytes, 'g.onnx'), 'g.onnx').eval();
    const x = Tensor.randn([3, 3, 9, 9], new Rng(4));
    const ours = F.noGrad(() => g.forward(x)).data;
    assert.ok(maxAbsDiff(await runOrt(g, [3, 9, 9], x), ours) < 1e-5);
  });

  test('a MobileNetV2-style graph (depthwise Conv, Clip(0, 6)), FP and W4A4: Conv keeps its group, ReLU6 is a Clip', async () => {
    const g = graphFromProto(decodeModel(mobileNetV2Onnx(), 'mbv2.onnx'), 'mbv2.onnx').eval();
    const x = Tensor.randn([2, ...MOBILENET_INPUT], new Rng(6));
    const ex = exportOnnx(g, { input: MOBILENET_INPUT });
    const convs = (ex.model as { graph: { node: { opType: string; attribute: { name: string; i: number }[] }[] } }).graph.node.filter((n) => n.opType === 'Conv');
    assert.deepEqual(convs.map((n) => n.attribute.find((a) => a.name === 'group')?.i ?? 1), [1, 24, 1, 1, 16, 1]);
    assert.equal(ex.ops['Clip'], 4);
    assert.ok(maxAbsDiff(await runOrt(g, MOBILENET_INPUT, x), F.noGrad(() => g.forward(x)).data) < 1e-4);
    // The exported graph imports again and gives the same logits.
    const again = graphFromProto(decodeModel(encodeModel(ex.model), 'again.onnx'), 'again.onnx').eval();
    assert.ok(maxAbsDiff(F.noGrad(() => again.forward(x)).data, F.noGrad(() => g.forward(x)).data) < 1e-5);
    const { student } = quantizeModel(g, { wbits: 4, abits: 4, act: 'granq', weight: 'slice' }, { warn: () => {} });
    const q = exportOnnx(student, { input: MOBILENET_INPUT });
    assert.equal(q.weights.length, 7);
    const ours = F.noGrad(() => student.forward(x)).data;
    const theirs = await runOrt(student, MOBILENET_INPUT, x);
    process.stderr.write(`# mbv2 W4A4 export: max |granq - onnxruntime| ${maxAbsDiff(ours, theirs)}\n`);
    assert.ok(maxAbsDiff(ours, theirs) < 1e-3, `W4A4: ${maxAbsDiff(ours, theirs)}`);
  });

  test('a full-precision model with BatchNorm (the .bn.onnx graph) exports as standard operators and gives its logits', { skip: noShared }, async () => {
    const { model } = loadModel(SHARED_MODEL.replace(/\.safetensors$/, '.bn.onnx'));
    const x = Tensor.randn([4, 3, 32, 32], new Rng(5));
    const ex = exportOnnx(model, { input: [3, 32, 32] });
    assert.equal(ex.ops['BatchNormalization'], 19);
    assert.equal(ex.weights.length, 0);
    assert.ok(maxAbsDiff(await runOrt(model, [3, 32, 32], x), F.noGrad(() => model.forward(x)).data) < 1e-4);
  });

  test('static ranges (layer activations, clamped per-channel weights): same predictions on 256 test images', { skip: noShared }, async () => {
    const { model, sidecar } = loadModel(SHARED_MODEL);
    const { student } = preparePtq(model, { wbits: 4, abits: 4, act: 'layer', weight: 'channel' },
      { dataDir: CIFAR10_DIR, format: 'cifar10', mean: sidecar.mean, std: sidecar.std, batch: 256, calib: 1, warn: () => {} });
    const ex = exportOnnx(student, { input: [3, 32, 32] });
    assert.ok(ex.ops['Clip']! > 0 && !ex.ops['ReduceMin'], JSON.stringify(ex.ops));
    const { x } = [...batches(loadCifarSplit(CIFAR10_DIR, { format: 'cifar10', split: 'test', limit: 256 }), { batchSize: 256, mean: sidecar.mean, std: sidecar.std })][0]!;
    const ours = F.noGrad(() => student.forward(x)).data;
    const theirs = await runOrt(student, [3, 32, 32], x);
    const argmax = (d: Float32Array, i: number) => d.subarray(i * 10, i * 10 + 10).reduce((b, v, j, a) => (v > a[b]! ? j : b), 0);
    let agree = 0;
    for (let i = 0; i < 256; i++) agree += Number(argmax(ours, i) === argmax(theirs, i));
    assert.ok(agree >= 254, `top-1 agrees on ${agree} of 256`);
  });

  test('clipped weights (channel+mse): every weight has codes, and (code + z) / s is the student\'s weight bit for bit', () => {
    const { student } = quantizeModel(createModel('resnet20-b', 10), { wbits: 3, abits: 3, act: 'granq', weight: 'channel', weightClip: 'mse' });
    const ex = exportOnnx(student, { input: [3, 32, 32] });
    const qs = student.namedModules().filter(([, m]) => m instanceof QuantConv2d || m instanceof QuantLinear) as [string, QuantConv2d | QuantLinear][];
    assert.equal(ex.weights.length, qs.length);
    let clipped = 0;
    for (const [path, m] of qs) {
      const name = `${path}.weight`;
      const q = ex.codes.get(`${name}.codes`)!.data as Int8Array;
      const sc = ex.codes.get(`${name}.scale`)!.data as Float32Array;
      const z = ex.codes.get(`${name}.zero_point`)!.data as Float32Array;
      const want = F.noGrad(() => m.wq.forward(m.weight)).data;
      const cols = want.length / sc.length;
      for (let i = 0; i < want.length; i++) {
        const r = Math.floor(i / cols);
        assert.ok(q[i]! >= -4 && q[i]! <= 3, `${name}[${i}]: a 3-bit code`);
        assert.equal(Math.fround(Math.fround(q[i]! + z[r]!) / sc[r]!), want[i], `${name}[${i}]`);
      }
      if (m.wq.rowRanges(m.weight).maxs.some((v, r) => v < Math.max(...m.weight.data.subarray(r * cols, (r + 1) * cols)))) clipped++;
    }
    assert.ok(clipped > qs.length / 2, `most layers have clipped rows (${clipped}/${qs.length})`);
  });
});
