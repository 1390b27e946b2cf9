/**
 * ONNX import on small graphs built here with the protobuf library (every supported operator at least once, each
 * checked against values computed independently in the test), the errors for what is not supported, quantizeModel
 * on an imported graph, and the shared ResNet-20 graphs against the safetensors model.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/autograd/index.js';
import {
  decodeModel, encodeModel, floatTensorProto, int64TensorProto, makeNode, valueInfo, type AttrValue, type NodeProto, type TensorProto,
} from '../../src/io/onnx-proto.js';
import { loadModel } from '../../src/models/load.js';
import { FixedConv2d, OnnxGraph } from '../../src/models/onnx-graph.js';
import { graphFromProto, ONNX_OPS } from '../../src/models/onnx-import.js';
import { BatchNorm2d, Conv2d, LeakyReLU, Linear, ReLU } from '../../src/nn/layers.js';
import { formatSummary, quantizeModel, WEIGHT_QUANTIZERS } from '../../src/quant/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, assertBitEqual, maxAbsDiff } from '../kit/compare.js';
import { noShared, SHARED_MODEL } from '../kit/shared.js';

let seed = 7;
const randn = (shape: number[]) => Tensor.randn(shape, new Rng(seed++));
const init = (name: string, t: Tensor) => floatTensorProto(name, t.shape, t.data);
const node = (op: string, inputs: string[], output: string, attrs: Record<string, AttrValue> = {}, name = output) => makeNode(op, inputs, [output], name, attrs);

/** A one-input one-output model, encoded and decoded again so the protobuf path is exercised. */
function build(nodes: NodeProto[], inits: TensorProto[], inputShape: number[], output = 'y'): OnnxGraph {
  const bytes = encodeModel({
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 't', node: nodes, initializer: inits, input: [valueInfo('x', inputShape)], output: [valueInfo(output, [])] },
  });
  return graphFromProto(decodeModel(bytes, 'test.onnx'), 'test.onnx').eval();
}
const run = (g: OnnxGraph, x: Tensor) => F.noGrad(() => g.forward(x));
const at = (t: Tensor, ...idx: number[]) => {
  let o = 0;
  for (let i = 0; i < idx.length; i++) o = o * t.shape[i]! + idx[i]!;
  return t.data[o]!;
};

describe('ONNX import: every supported operator', () => {
  test('Conv with initializers -> Conv2d named after the weight (stride 2, pad 1, bias)', () => {
    const w = randn([4, 3, 3, 3]);
    const b = randn([4]);
    const g = build([node('Conv', ['x', 'c1.weight', 'c1.bias'], 'y', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })],
      [init('c1.weight', w), init('c1.bias', b)], [2, 3, 7, 7]);
    const x = randn([2, 3, 7, 7]);
    assert.ok(g.children().some(([n, m]) => n === 'c1' && m instanceof Conv2d));
    assert.deepEqual(g.namedParameters().map(([k]) => k).sort(), ['c1.bias', 'c1.weight']);
    assertBitEqual(run(g, x).data, F.conv2d(x, w, b, { stride: 2, padding: 1 }).data);
  });

  test('BatchNormalization -> BatchNorm2d (eval: running statistics, epsilon)', () => {
    const [sc, bi, mu] = [randn([3]), randn([3]), randn([3])];
    const va = Tensor.uniform([3], new Rng(3), 0.5, 2);
    const g = build([node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], 'y', { epsilon: { float: 1e-3 } })],
      [init('s', sc), init('b', bi), init('m', mu), init('v', va)], [2, 3, 4, 5]);
    assert.ok(g.children()[0]![1] instanceof BatchNorm2d);
    const x = randn([2, 3, 4, 5]);
    const y = run(g, x);
    const want = x.data.map((v, i) => {
      const c = Math.floor(i / 20) % 3;
      return (v - mu.data[c]!) / Math.sqrt(va.data[c]! + 1e-3) * sc.data[c]! + bi.data[c]!;
    });
    assertClose(y.data, want, { atol: 1e-5 });
  });

  test('Relu, LeakyRelu, Add of two values, Mul by a broadcast initializer, Identity', () => {
    const k = randn([1, 3, 1, 1]);
    const g = build([
      node('Relu', ['x'], 'r'),
      node('LeakyRelu', ['x'], 'l', { alpha: { float: 0.2 } }),
      node('Add', ['r', 'l'], 'a'),
      node('Mul', ['a', 'k'], 'm'),
      node('Identity', ['m'], 'y'),
    ], [init('k', k)], [2, 3, 2, 2]);
    assert.ok(g.children().some(([, m]) => m instanceof ReLU) && g.children().some(([, m]) => m instanceof LeakyReLU && m.slope === Math.fround(0.2)));
    const x = randn([2, 3, 2, 2]);
    const want = x.data.map((v, i) => {
      const slope = Math.fround(0.2);
      return Math.fround(Math.fround(Math.max(v, 0) + (v > 0 ? v : Math.fround(slope * v))) * k.data[Math.floor(i / 4) % 3]!);
    });
    assertClose(run(g, x).data, want, { atol: 1e-6 });
  });

  test('GlobalAveragePool, AveragePool, MaxPool (padding never wins), Flatten', () => {
    const x = F.addScalar(randn([1, 2, 5, 5]), -10); // all negative: a zero from padding would win a max
    const gap = run(build([node('GlobalAveragePool', ['x'], 'p'), node('Flatten', ['p'], 'y', { axis: 1 })], [], [1, 2, 5, 5]), x);
    assert.deepEqual(gap.shape, [1, 2]);
    for (let c = 0; c < 2; c++) assertClose([gap.data[c]!], [x.data.slice(c * 25, c * 25 + 25).reduce((s, v) => s + v, 0) / 25], { atol: 1e-5 });
    const avg = run(build([node('AveragePool', ['x'], 'y', { kernel_shape: [2, 2], strides: [2, 2] })], [], [1, 2, 5, 5]), x);
    assert.deepEqual(avg.shape, [1, 2, 2, 2]);
    assertClose([at(avg, 0, 1, 1, 0)], [(at(x, 0, 1, 2, 0) + at(x, 0, 1, 2, 1) + at(x, 0, 1, 3, 0) + at(x, 0, 1, 3, 1)) / 4], { atol: 1e-5 });
    const mp = run(build([node('MaxPool', ['x'], 'y', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })], [], [1, 2, 5, 5]), x);
    assert.deepEqual(mp.shape, [1, 2, 3, 3]);
    for (let c = 0; c < 2; c++) for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      let m = -Infinity;
      for (let di = -1; di <= 1; di++) for (let dj = -1; dj <= 1; dj++) {
        const r = 2 * i + di;
        const s = 2 * j + dj;
        if (r >= 0 && r < 5 && s >= 0 && s < 5) m = Math.max(m, at(x, 0, c, r, s));
      }
      assert.equal(at(mp, 0, c, i, j), m, `max pool at ${c},${i},${j}`);
    }
  });

  test('Reshape by a Constant shape (0 copies a dim, -1 is inferred), Gemm (transB 0, alpha, beta), MatMul', () => {
    const b = randn([6, 4]);
    const c = randn([4]);
    const w2 = randn([4, 5]);
    const g = build([
      node('Constant', [], 'shape', { value: int64TensorProto('', [0, -1]) }),
      node('Reshape', ['x', 'shape'], 'f'),
      node('Gemm', ['f', 'B', 'C'], 'h', { alpha: { float: 0.5 }, beta: { float: 2 } }),
      node('MatMul', ['h', 'W'], 'y'),
    ], [init('B', b), init('C', c), init('W', w2)], [2, 6, 1, 1]);
    assert.equal(g.children().filter(([, m]) => m instanceof Linear).length, 2);
    const x = randn([2, 6, 1, 1]);
    const y = run(g, x);
    assert.deepEqual(y.shape, [2, 5]);
    const h = Array.from({ length: 8 }, (_, i) => {
      const [n, o] = [Math.floor(i / 4), i % 4];
      let s = 0;
      for (let k = 0; k < 6; k++) s += x.data[n * 6 + k]! * b.data[k * 4 + o]!;
      return 0.5 * s + 2 * c.data[o]!;
    });
    const want = Array.from({ length: 10 }, (_, i) => {
      const [n, o] = [Math.floor(i / 5), i % 5];
      let s = 0;
      for (let k = 0; k < 4; k++) s += h[n * 4 + k]! * w2.data[k * 5 + o]!;
      return s;
    });
    assertClose(y.data, want, { atol: 1e-4 });
  });

  test('Pad (channels and asymmetric spatial, zeros) and Concat on channels', () => {
    const x = randn([1, 2, 3, 3]);
    const g = build([
      node('Pad', ['x', 'pads'], 'p', { mode: 'constant' }),
      node('Relu', ['x'], 'r'),
      node('Pad', ['r', 'pads'], 'q'),
      node('Concat', ['p', 'q'], 'y', { axis: 1 }),
    ], [int64TensorProto('pads', [0, 1, 1, 2, 0, 0, 2, 1])], [1, 2, 3, 3]);
    const y = run(g, x);
    assert.deepEqual(y.shape, [1, 6, 6, 6]);
    for (let c = 0; c < 6; c++) for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) {
      const src = c % 3 === 0 ? null : [c % 3 - 1, i - 1, j - 2];
      const inside = src && src[1]! >= 0 && src[1]! < 3 && src[2]! >= 0 && src[2]! < 3;
      const v = inside ? at(x, 0, src[0]!, src[1]!, src[2]!) : 0;
      assert.equal(at(y, 0, c, i, j), c >= 3 ? Math.max(v, 0) : v, `at ${c},${i},${j}`);
    }
  });

  test('a Conv whose weight is a Constant is a FixedConv2d with buffers, not parameters', () => {
    const sel = Tensor.zeros([4, 2, 1, 1]);
    sel.data[1 * 2 + 0] = 1;
    sel.data[2 * 2 + 1] = 1;
    const g = build([node('Constant', [], 'w', { value: init('', sel) }), node('Conv', ['x', 'w'], 'y', { strides: [2, 2] })], [], [1, 2, 4, 4]);
    const [, conv] = g.children()[0]!;
    assert.ok(conv instanceof FixedConv2d && conv.isSelection());
    assert.deepEqual(g.namedParameters(), []);
    const x = randn([1, 2, 4, 4]);
    const y = run(g, x);
    assert.deepEqual(y.shape, [1, 4, 2, 2]);
    assert.equal(at(y, 0, 1, 1, 1), at(x, 0, 0, 2, 2));
    assert.equal(at(y, 0, 0, 1, 1), 0);
  });

  test('the operator table holds exactly the operators of the issue', () => {
    assert.deepEqual(Object.keys(ONNX_OPS).sort(), ['Add', 'AveragePool', 'BatchNormalization', 'Concat', 'Conv', 'Flatten', 'Gemm',
      'GlobalAveragePool', 'Identity', 'LeakyRelu', 'MatMul', 'MaxPool', 'Mul', 'Pad', 'Relu', 'Reshape'].sort());
  });
});

describe('ONNX import: errors', () => {
  test('an unsupported operator names itself and its node', () => {
    assert.throws(() => build([node('Softmax', ['x'], 'y', {}, 'head/softmax')], [], [1, 4]),
      (e: Error) => /unsupported ONNX operator 'Softmax' in node 'head\/softmax'/.test(e.message) && e.name === 'GranqError');
  });
  test('unsupported attributes of a supported operator, and a graph out of order', () => {
    const w = init('w', randn([2, 1, 3, 3]));
    assert.throws(() => build([node('Conv', ['x', 'w'], 'y', { group: 2 }, 'dw')], [w], [1, 2, 5, 5]), /node 'dw' \(Conv\): group=2/);
    assert.throws(() => build([node('Relu', ['z'], 'y'), node('Relu', ['x'], 'z')], [], [1, 2]), /input 'z' is produced by no earlier node/);
    assert.throws(() => decodeModel(Buffer.from('not a model at all'), 'bad.onnx'), /bad.onnx: expected an ONNX model/);
  });
});

describe('quantizeModel on an imported graph', () => {
  const sel = Tensor.zeros([4, 2, 1, 1]);
  sel.data[0] = 1;
  sel.data[3] = 1;
  const graph = () => build([
    node('Conv', ['x', 'a.weight'], 'c', { pads: [1, 1, 1, 1] }, 'conv_a'),
    node('Relu', ['c'], 'r', {}, 'relu_a'),
    node('Constant', [], 'w', { value: init('', sel) }),
    node('Conv', ['r', 'w'], 's', { strides: [2, 2] }, 'shortcut'),
    node('Relu', ['s'], 'y', {}, 'relu_b'),
  ], [init('a.weight', randn([2, 2, 3, 3]))], [2, 2, 4, 4]);

  test('convs and ReLUs are found without special cases; the summary says BN was folded and what stays constant', () => {
    const { student, summary } = quantizeModel(graph(), { wbits: 4, abits: 4, act: 'granq', weight: 'channel' }, { warn: () => {} });
    assert.deepEqual(summary.rows.map((r) => [r.path, r.kind]), [['a', 'conv'], ['relu_a', 'act'], ['shortcut', 'fixed'], ['relu_b', 'act']]);
    assert.equal(summary.batchNorms, 0);
    const text = formatSummary(summary);
    assert.match(text, /no BatchNorm layers: folded into the convs/);
    assert.match(text, /1 constant-weight convs left as they are/);
    const x = randn([2, 2, 4, 4]);
    assert.deepEqual(run(student as OnnxGraph, x).shape, [2, 4, 2, 2]);
  });

  test('a 0/1 weight is exact under every weight rule (so leaving it FP changes nothing)', () => {
    for (const [rule, make] of Object.entries(WEIGHT_QUANTIZERS)) {
      for (const bits of [2, 3, 4, 8]) assertBitEqual(F.noGrad(() => make(bits).forward(sel)).data, sel.data, `${rule} W${bits}`);
    }
  });
});

describe('ONNX import: the shared ResNet-20 graphs', { skip: noShared }, () => {
  const x = Tensor.randn([8, 3, 32, 32], new Rng(11));
  const reference = F.noGrad(() => loadModel(SHARED_MODEL).model.forward(x));

  test('.onnx (BN folded, option-A shortcuts as constant convs) gives the safetensors logits', () => {
    const { model, sidecar } = loadModel(SHARED_MODEL.replace(/\.safetensors$/, '.onnx'));
    assert.deepEqual(sidecar.mean, [0.485, 0.456, 0.406]);
    assert.ok(maxAbsDiff(F.noGrad(() => model.forward(x)).data, reference.data) < 1e-4);
  });

  test('.bn.onnx keeps BatchNorm, its layers are named after the PyTorch state dict, and its logits match', () => {
    const { model } = loadModel(SHARED_MODEL.replace(/\.safetensors$/, '.bn.onnx'));
    const keys = [...loadModel(SHARED_MODEL).model.stateDict().keys()].sort();
    assert.deepEqual([...model.stateDict().keys()].filter((k) => !k.includes('/')).sort(), keys);
    assert.equal(model.namedModules().filter(([, m]) => m instanceof BatchNorm2d).length, 19);
    assert.ok(maxAbsDiff(F.noGrad(() => model.forward(x)).data, reference.data) < 1e-5);
  });
});
