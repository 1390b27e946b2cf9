/**
 * ONNX import on small graphs built here with the protobuf library (every supported operator at least once, each
 * checked against values computed independently in the test), the errors for what is not supported, quantizeModel
 * on an imported graph, a MobileNetV2-style graph (grouped/depthwise Conv, Clip, Dropout) against onnxruntime and the
 * reference backend, and the shared ResNet-20 graphs against the safetensors model.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import * as F from '../../src/autograd/index.js';
import { refBackend, withBackend } from '../../src/backend/index.js';
import {
  decodeModel, encodeModel, floatTensorProto, int64TensorProto, makeNode, valueInfo, type AttrValue, type NodeProto, type TensorProto,
} from '../../src/io/onnx-proto.js';
import { loadModel } from '../../src/models/load.js';
import { FixedConv2d, OnnxGraph } from '../../src/models/onnx-graph.js';
import { graphFromProto, ONNX_OPS } from '../../src/models/onnx-import.js';
import { BatchNorm2d, Conv2d, Hardtanh, LeakyReLU, Linear, ReLU } from '../../src/nn/layers.js';
import { formatSummary, quantizeModel, quantizers, WEIGHT_QUANTIZERS } from '../../src/quant/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, assertBitEqual, maxAbsDiff } from '../kit/compare.js';
import { MOBILENET_INPUT, mobileNetV2Onnx } from '../kit/mobilenet-onnx.js';
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

  test('Conv with group: grouped (2 groups) and depthwise (multiplier 2, stride 2) -> Conv2d with groups', () => {
    const wg = randn([6, 2, 3, 3]);
    const wd = randn([12, 1, 3, 3]);
    const bd = randn([12]);
    const g = build([
      node('Conv', ['x', 'g.weight'], 'h', { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 2 }),
      node('Conv', ['h', 'd.weight', 'd.bias'], 'y', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 6 }),
    ], [init('g.weight', wg), init('d.weight', wd), init('d.bias', bd)], [2, 4, 7, 7]);
    const convs = g.children().map(([, m]) => m as Conv2d);
    assert.deepEqual(convs.map((c) => [c.inChannels, c.outChannels, c.groups]), [[4, 6, 2], [6, 12, 6]]);
    const x = randn([2, 4, 7, 7]);
    const y = run(g, x);
    assert.deepEqual(y.shape, [2, 12, 4, 4]);
    // Independently: each group of the first conv is a dense conv of its channel slice.
    const slice = (t: Tensor, c0: number, c1: number) => {
      const [n, c, hh, ww] = t.shape as [number, number, number, number];
      const out = Tensor.zeros([n, c1 - c0, hh, ww]);
      for (let b = 0; b < n; b++) out.data.set(t.data.subarray((b * c + c0) * hh * ww, (b * c + c1) * hh * ww), b * (c1 - c0) * hh * ww);
      return out;
    };
    const h = F.noGrad(() => F.conv2d(x, wg, null, { padding: 1, groups: 2 }));
    for (const gi of [0, 1]) {
      const dense = F.noGrad(() => F.conv2d(slice(x, 2 * gi, 2 * gi + 2), Tensor.from(wg.data.subarray(gi * 54, gi * 54 + 54), [3, 2, 3, 3]), null, { padding: 1 }));
      assertClose(slice(h, 3 * gi, 3 * gi + 3).data, dense.data, { atol: 1e-5 }, `group ${gi}`);
    }
    // Depthwise: output channel o reads input channel o / 2 only.
    const dw = F.noGrad(() => F.conv2d(h, wd, bd, { stride: 2, padding: 1, groups: 6 }));
    for (const o of [0, 5, 11]) {
      const one = F.noGrad(() => F.conv2d(slice(h, o >> 1, (o >> 1) + 1), Tensor.from(wd.data.subarray(o * 9, o * 9 + 9), [1, 1, 3, 3]), Tensor.from([bd.data[o]!], [1]), { stride: 2, padding: 1 }));
      assertClose(slice(dw, o, o + 1).data, one.data, { atol: 1e-5 }, `depthwise channel ${o}`);
    }
    assertBitEqual(y.data, dw.data);
  });

  test('Clip: bounds as inputs (initializer, Constant, one left out) and as opset-6 attributes -> Hardtanh; Dropout is the identity', () => {
    const g = build([
      node('Constant', [], 'hi', { value: init('', Tensor.from([0.5], [])) }),
      node('Clip', ['x', 'lo', 'hi'], 'a'),
      node('Clip', ['x', '', 'hi'], 'b'),
      node('Clip', ['x'], 'c', { min: { float: -0.25 }, max: { float: 0.25 } }),
      node('Add', ['a', 'b'], 'ab'),
      node('Add', ['ab', 'c'], 'abc'),
      node('Dropout', ['abc'], 'y'),
    ], [init('lo', Tensor.from([-0.5], []))], [3, 7]);
    const clips = g.children().map(([, m]) => m as Hardtanh);
    assert.ok(clips.every((m) => m instanceof Hardtanh));
    assert.deepEqual(clips.map((m) => [m.minVal, m.maxVal]), [[-0.5, 0.5], [-Infinity, 0.5], [-0.25, 0.25]]);
    const x = Tensor.from(randn([3, 7]).data.map((v) => v * 2), [3, 7]);
    const want = x.data.map((v) => Math.fround(Math.fround(Math.min(Math.max(v, -0.5), 0.5) + Math.min(v, 0.5)) + Math.min(Math.max(v, -0.25), 0.25)));
    assertBitEqual(run(g, x).data, want);
  });

  test('the operator table holds exactly the operators of the issue', () => {
    assert.deepEqual(Object.keys(ONNX_OPS).sort(), ['Add', 'AveragePool', 'BatchNormalization', 'Clip', 'Concat', 'Conv', 'Dropout', 'Flatten',
      'Gemm', 'GlobalAveragePool', 'Identity', 'LeakyRelu', 'MatMul', 'MaxPool', 'Mul', 'Pad', 'Relu', 'Reshape'].sort());
  });
});

describe('ONNX import: errors', () => {
  test('an unsupported operator names itself and its node', () => {
    assert.throws(() => build([node('Softmax', ['x'], 'y', {}, 'head/softmax')], [], [1, 4]),
      (e: Error) => /unsupported ONNX operator 'Softmax' in node 'head\/softmax'/.test(e.message) && e.name === 'GranqError');
  });
  test('unsupported attributes of a supported operator, and a graph out of order', () => {
    const w = init('w', randn([3, 1, 3, 3]));
    assert.throws(() => build([node('Conv', ['x', 'w'], 'y', { group: 2 }, 'dw')], [w], [1, 2, 5, 5]), /node 'dw' \(Conv\): group=2 must be a positive divisor of the 3 output channels/);
    assert.throws(() => build([node('Clip', ['x', 'x'], 'y', {}, 'clip')], [], [1, 2]), /node 'clip' \(Clip\): min 'x' must be an initializer or a Constant/);
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

describe('ONNX import: a MobileNetV2-style graph (depthwise and grouped Conv, Clip(0, 6), Dropout)', () => {
  const bytes = mobileNetV2Onnx();
  const graph = () => graphFromProto(decodeModel(bytes, 'mbv2.onnx'), 'mbv2.onnx').eval();
  const x = Tensor.randn([3, ...MOBILENET_INPUT], new Rng(21));

  test('granq (native and reference backends) agrees with onnxruntime within 1e-4', async () => {
    const g = graph();
    const convs = g.namedModules().filter(([, m]) => m instanceof Conv2d).map(([p, m]) => [p, (m as Conv2d).groups]);
    assert.deepEqual(convs, [['b1.expand', 1], ['b1.dw', 24], ['b1.project', 1], ['b2.expand', 1], ['b2.dw', 16], ['b2.project', 1]]);
    assert.equal(g.namedModules().filter(([, m]) => m instanceof Hardtanh).length, 4);
    const ours = run(g, x);
    const session = await ort.InferenceSession.create(bytes);
    const theirs = (await session.run({ x: new ort.Tensor('float32', x.data, [...x.shape]) }))['y']!.data as Float32Array;
    assert.deepEqual(ours.shape, [3, 5]);
    assert.ok(maxAbsDiff(ours.data, theirs) < 1e-4, `granq vs onnxruntime: ${maxAbsDiff(ours.data, theirs)}`);
    const ref = withBackend(refBackend, () => run(graph(), x));
    assert.ok(maxAbsDiff(ours.data, ref.data) < 1e-4, `native vs ref: ${maxAbsDiff(ours.data, ref.data)}`);
    // Both ends of the clips are reached on this input (the test exercises Clip, not the identity).
    const clipped = { low: 0, high: 0 };
    const probe = graph();
    for (const [, m] of probe.namedModules()) {
      if (!(m instanceof Hardtanh)) continue;
      const fwd = m.forward.bind(m);
      m.forward = (t: Tensor) => {
        clipped.low += t.data.filter((v) => v < 0).length;
        clipped.high += t.data.filter((v) => v > 6).length;
        return fwd(t);
      };
    }
    run(probe, x);
    assert.ok(clipped.low > 0 && clipped.high > 0, JSON.stringify(clipped));
  });

  test('quantizeModel: every conv (depthwise too) gets a weight quantizer, every Clip(0, 6) an activation quantizer; forward runs', () => {
    for (const weight of ['slice', 'channel', 'tensor'] as const) {
      const { student, summary } = quantizeModel(graph(), { wbits: 4, abits: 4, act: 'granq', weight }, { warn: () => {} });
      assert.equal(summary.convs, 6, weight);
      assert.equal(summary.linears, 1, weight);
      assert.equal(summary.acts, 4, weight);
      assert.deepEqual(summary.rows.filter((r) => r.kind === 'act').map((r) => [r.path, r.notes]),
        ['b1.relu1', 'b1.relu2', 'b2.relu1', 'b2.relu2'].map((p) => [p, 'after clip [0, 6]']));
      assert.match(summary.rows.find((r) => r.path === 'b2.dw')!.quant, new RegExp(`^${weight} W4 \\[32,1,3,3\\]$`));
      assert.equal(quantizers(student).length, 6 + 1 + 4);
      const y = run(student as OnnxGraph, x);
      assert.deepEqual(y.shape, [3, 5]);
      assert.ok(y.data.every(Number.isFinite));
      assert.ok(maxAbsDiff(y.data, run(graph(), x).data) > 0, `${weight}: quantization changes the logits`);
    }
  });

  test('slice weights of a depthwise conv: one range per output channel (its 3x3 kernel)', () => {
    const { student } = quantizeModel(graph(), { wbits: 3, abits: 8, act: 'granq', weight: 'slice' }, { warn: () => {} });
    const dw = student.namedModules().find(([p]) => p === 'b2.dw')![1] as unknown as { weight: Tensor; wq: { forward(w: Tensor): Tensor } };
    const q = F.noGrad(() => dw.wq.forward(dw.weight));
    // Each output channel's kernel quantized on its own gives the same values: the ranges are per output channel.
    for (let o = 0; o < 32; o++) {
      const alone = F.noGrad(() => WEIGHT_QUANTIZERS.slice(3).forward(Tensor.from(dw.weight.data.slice(o * 9, o * 9 + 9), [1, 1, 3, 3])));
      assertBitEqual(q.data.subarray(o * 9, o * 9 + 9), alone.data, `channel ${o}`);
      assert.ok(new Set(alone.data).size > 1, `channel ${o} is quantized to more than one level`);
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
