/**
 * Every primitive op: a case table run twice, as a float64 gradient check on the reference backend and as a
 * native-vs-reference comparison of forward and backward. A meta-test fails when an op has no case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/autograd/index.js';
import { OP_REGISTRY } from '../../src/autograd/index.js';
import { refBackend, withBackend } from '../../src/backend/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { Shape } from '../../src/tensor/shape.js';
import { compareBackends, gradcheck, type Fn } from '../kit/gradcheck.js';
import { fakeQuantChannelLoop, fakeQuantGroups, fakeQuantLearned, fakeQuantRows, STE_OP_NAMES } from '../../src/quant/fake-quant.js';

let seed = 100;
/** Normal values kept at least `gap` away from zero (kinks of relu, leaky relu). */
function randn(shape: Shape, gap = 0): Tensor {
  const t = Tensor.randn(shape, new Rng(seed++));
  if (gap > 0) for (let i = 0; i < t.size; i++) t.data[i] = Math.sign(t.data[i]! || 1) * (gap + Math.abs(t.data[i]!));
  return t;
}
/** Normal values times `scale`, moved at least `gap` away from each kink in `kinks` (hardtanh's bounds). */
function awayFrom(shape: Shape, kinks: number[], scale = 1, gap = 0.05): Tensor {
  const t = Tensor.randn(shape, new Rng(seed++));
  for (let i = 0; i < t.size; i++) {
    let v = t.data[i]! * scale;
    for (const k of kinks) if (Math.abs(v - k) < gap) v = k + (v >= k ? gap : -gap);
    t.data[i] = v;
  }
  return t;
}
function positive(shape: Shape): Tensor {
  return Tensor.uniform(shape, new Rng(seed++), 0.5, 2);
}

interface Case {
  op: string;
  name: string;
  f: Fn;
  inputs: Tensor[];
  skip?: number[];
  /** native-vs-ref tolerance */
  atol?: number;
}

const bnRunning = (c: number) => ({ mean: Tensor.uniform([c], new Rng(5), -0.5, 0.5).data, var: Tensor.uniform([c], new Rng(6), 0.5, 1.5).data });
const bnEval = bnRunning(5);

const CASES: Case[] = [
  { op: 'relu', name: 'relu [2,3,5,7]', f: (x) => F.relu(x), inputs: [randn([2, 3, 5, 7], 0.05)] },
  { op: 'leaky_relu', name: 'leakyRelu 0.2', f: (x) => F.leakyRelu(x, 0.2), inputs: [randn([3, 17], 0.05)] },
  { op: 'tanh', name: 'tanh', f: (x) => F.tanh(x), inputs: [randn([33])] },
  { op: 'exp', name: 'exp', f: (x) => F.exp(x), inputs: [randn([7, 3])] },
  { op: 'log', name: 'log', f: (x) => F.log(x), inputs: [positive([17])] },
  { op: 'sqrt', name: 'sqrt', f: (x) => F.sqrt(x), inputs: [positive([9])] },
  { op: 'hardtanh', name: 'hardtanh [-0.5, 0.75]', f: (x) => F.hardtanh(x, -0.5, 0.75), inputs: [awayFrom([3, 17], [-0.5, 0.75])] },
  { op: 'hardtanh', name: 'relu6 [2,3,4,5]', f: (x) => F.relu6(x), inputs: [awayFrom([2, 3, 4, 5], [0, 6], 4)] },
  { op: 'affine', name: 'affine 1.5x-0.25', f: (x) => F.affine(x, 1.5, -0.25), inputs: [randn([4, 4])] },
  { op: 'add', name: 'add same shape', f: (a, b) => F.add(a, b), inputs: [randn([2, 3, 4, 5]), randn([2, 3, 4, 5])] },
  { op: 'add_relu', name: 'relu(a + b)', f: (a, b) => F.addRelu(a, b), inputs: [randn([2, 3, 4, 5]), randn([2, 3, 4, 5])] },
  { op: 'add_relu', name: 'relu(a + a): one input twice', f: (a) => F.addRelu(a, a), inputs: [randn([3, 7])] },
  { op: 'add', name: 'add per-channel broadcast', f: (a, b) => F.add(a, b), inputs: [randn([2, 3, 4, 5]), randn([1, 3, 1, 1])] },
  { op: 'sub', name: 'sub row broadcast', f: (a, b) => F.sub(a, b), inputs: [randn([4, 6]), randn([4, 1])] },
  { op: 'mul', name: 'mul scalar broadcast', f: (a, b) => F.mul(a, b), inputs: [randn([3, 7]), randn([1])] },
  { op: 'mul', name: 'mul both broadcast', f: (a, b) => F.mul(a, b), inputs: [randn([3, 1]), randn([1, 5])] },
  { op: 'div', name: 'div', f: (a, b) => F.div(a, b), inputs: [randn([2, 9]), positive([2, 9])] },
  { op: 'div', name: 'div broadcast denominator', f: (a, b) => F.div(a, b), inputs: [randn([2, 3, 4]), positive([3, 1])] },
  { op: 'reduce_sum', name: 'sum all', f: (x) => F.sum(x), inputs: [randn([3, 4, 5])] },
  { op: 'reduce_sum', name: 'sum over N,H,W keepdims', f: (x) => F.sum(x, [0, 2, 3], true), inputs: [randn([2, 3, 4, 5])] },
  { op: 'reduce_sum', name: 'mean over axis 1', f: (x) => F.mean(x, 1), inputs: [randn([4, 7])] },
  { op: 'reduce_max', name: 'max over axis 1', f: (x) => F.max(x, 1), inputs: [randn([5, 6])] },
  { op: 'reduce_min', name: 'min all', f: (x) => F.min(x), inputs: [randn([17])] },
  { op: 'reshape', name: 'reshape', f: (x) => F.mul(F.reshape(x, [6, -1]), F.reshape(x, [6, -1])), inputs: [randn([2, 3, 4])] },
  { op: 'pad_channels', name: 'pad channels 2+2', f: (x) => F.padChannels(x, 2, 2), inputs: [randn([2, 3, 4, 4])] },
  { op: 'conv2d', name: 'conv2d 3x3 s1 p1 bias', f: (x, w, b) => F.conv2d(x, w, b, { stride: 1, padding: 1 }), inputs: [randn([2, 3, 7, 7]), randn([4, 3, 3, 3]), randn([4])], atol: 1e-4 },
  { op: 'conv2d', name: 'conv2d 3x3 s2 p1', f: (x, w) => F.conv2d(x, w, null, { stride: 2, padding: 1 }), inputs: [randn([2, 5, 9, 9]), randn([3, 5, 3, 3])], atol: 1e-4 },
  { op: 'upsample_conv2d', name: 'upsampleConv2d 3x3 bias', f: (x, w, b) => F.upsampleConv2d(x, w, b), inputs: [randn([2, 3, 4, 5]), randn([4, 3, 3, 3]), randn([4])], atol: 1e-4 },
  { op: 'upsample_conv2d', name: 'upsampleConv2d 3x3 [1,16,8,8] (direct kernels)', f: (x, w) => F.upsampleConv2d(x, w), inputs: [randn([1, 16, 8, 8]), randn([8, 16, 3, 3])], atol: 1e-4 },
  { op: 'conv2d', name: 'conv2d 1x1 s2 p0', f: (x, w) => F.conv2d(x, w, null, { stride: 2, padding: 0 }), inputs: [randn([1, 4, 6, 6]), randn([7, 4, 1, 1])], atol: 1e-4 },
  { op: 'conv2d', name: 'conv2d depthwise 3x3 s1 p1 bias', f: (x, w, b) => F.conv2d(x, w, b, { stride: 1, padding: 1, groups: 4 }), inputs: [randn([2, 4, 6, 6]), randn([4, 1, 3, 3]), randn([4])], atol: 1e-4 },
  { op: 'conv2d', name: 'conv2d depthwise multiplier 2, 3x3 s2 p1', f: (x, w) => F.conv2d(x, w, null, { stride: 2, padding: 1, groups: 3 }), inputs: [randn([2, 3, 7, 7]), randn([6, 1, 3, 3])], atol: 1e-4 },
  { op: 'conv2d', name: 'conv2d 2 groups 3x3 s1 p1 bias', f: (x, w, b) => F.conv2d(x, w, b, { stride: 1, padding: 1, groups: 2 }), inputs: [randn([2, 4, 5, 5]), randn([6, 2, 3, 3]), randn([6])], atol: 1e-4 },
  { op: 'linear', name: 'linear with bias', f: (x, w, b) => F.linear(x, w, b), inputs: [randn([5, 7]), randn([3, 7]), randn([3])], atol: 1e-4 },
  { op: 'matmul', name: 'matmul', f: (a, b) => F.matmul(a, b), inputs: [randn([4, 6]), randn([6, 5])], atol: 1e-4 },
  {
    op: 'batch_norm', name: 'batchNorm training',
    f: (x, g, b) => F.batchNorm(x, g, b, { training: true, eps: 1e-5, momentum: 0.1, runningMean: null, runningVar: null }),
    inputs: [randn([3, 4, 3, 3]), positive([4]), randn([4])], atol: 1e-4,
  },
  {
    op: 'batch_norm', name: 'batchNorm training without affine',
    f: (x) => F.batchNorm(x, null, null, { training: true, eps: 0.8, momentum: 0.1, runningMean: null, runningVar: null }),
    inputs: [randn([4, 2, 2, 2])], atol: 1e-4,
  },
  {
    op: 'batch_norm', name: 'batchNorm eval',
    f: (x, g, b) => F.batchNorm(x, g, b, { training: false, eps: 1e-5, momentum: 0.1, runningMean: bnEval.mean, runningVar: bnEval.var }),
    inputs: [randn([2, 5, 3, 2]), positive([5]), randn([5])], atol: 1e-4,
  },
  {
    op: 'batch_norm', name: 'batchNorm training with fused ReLU',
    f: (x, g, b) => F.batchNorm(x, g, b, { training: true, eps: 1e-5, momentum: 0.1, runningMean: null, runningVar: null, relu: true }),
    inputs: [randn([3, 4, 3, 3]), positive([4]), randn([4])], atol: 1e-4,
  },
  {
    op: 'batch_norm', name: 'batchNorm eval with fused ReLU',
    f: (x, g, b) => F.batchNorm(x, g, b, { training: false, eps: 1e-5, momentum: 0.1, runningMean: bnEval.mean, runningVar: bnEval.var, relu: true }),
    inputs: [randn([2, 5, 3, 2]), positive([5]), randn([5])], atol: 1e-4,
  },
  { op: 'channel_stats', name: 'channel statistics (mean, biased variance)', f: (x) => F.channelStats(x), inputs: [randn([3, 4, 3, 5])] },
  { op: 'channel_stats', name: 'channel statistics, batch 1, 1x1', f: (x) => F.channelStats(x), inputs: [randn([1, 7, 1, 2])] },
  { op: 'avg_pool2d', name: 'avgPool2d 2x2', f: (x) => F.avgPool2d(x, 2), inputs: [randn([2, 3, 6, 6])] },
  { op: 'avg_pool2d', name: 'global average pool', f: (x) => F.globalAvgPool(x), inputs: [randn([2, 3, 5, 5])] },
  { op: 'avg_pool2d', name: 'subsample stride 2', f: (x) => F.subsample(x, 2), inputs: [randn([2, 3, 7, 7])] },
  { op: 'upsample_nearest', name: 'upsample x2', f: (x) => F.upsampleNearest(x, 2), inputs: [randn([2, 3, 3, 4])] },
  { op: 'softmax', name: 'softmax', f: (x) => F.softmax(x), inputs: [randn([4, 10])] },
  { op: 'log_softmax', name: 'logSoftmax', f: (x) => F.logSoftmax(x), inputs: [randn([3, 7])] },
  { op: 'embedding', name: 'embedding', f: (w) => F.embedding(Int32Array.from([2, 0, 2, 4]), w), inputs: [randn([5, 3])] },
];

/**
 * Fake-quant ops: the forward is a staircase and the backward the identity straight-through estimator, so a
 * finite-difference gradcheck cannot pass by design. They are checked here instead: the gradient must equal the
 * incoming gradient exactly, and the forward must match between backends.
 */
const STE_OPS = new Set<string>(STE_OP_NAMES);
const STE_CASES: Case[] = [
  { op: 'fake_quant_rows', name: 'fakeQuantRows 3 bits [2,3,5,7]', f: (x) => fakeQuantRows(x, 3), inputs: [randn([2, 3, 5, 7])] },
  { op: 'fake_quant_rows', name: 'fakeQuantRows clamp per-tensor [17]', f: (x) => fakeQuantRows(x, 4, [1, 17], true), inputs: [randn([17])] },
  { op: 'fake_quant_channel_loop', name: 'fakeQuantChannelLoop 4 bits [3,5,2,3]', f: (x) => fakeQuantChannelLoop(x, 4), inputs: [randn([3, 5, 2, 3])] },
  {
    op: 'fake_quant_groups', name: 'fakeQuantGroups per-channel [2,3,4]',
    f: (x) => fakeQuantGroups(x, 3, [2, 3, 4], Float32Array.of(-1, -0.5, 0), Float32Array.of(1, 0.5, 2), true), inputs: [randn([2, 3, 4])],
  },
];

for (const c of STE_CASES) {
  test(`STE (ref): ${c.name} passes the gradient unchanged`, () => {
    withBackend(refBackend, () => {
      const x = c.inputs[0]!.clone().requireGrad();
      const gy = randn([...x.shape]);
      c.f(x).backward(gy);
      assert.deepEqual(Array.from(x.grad!.data), Array.from(gy.data));
    });
  });
  test(`native vs ref: ${c.name}`, () =>
    compareBackends(c.name, c.f, c.inputs, { atol: 0, rtol: 0 }));
}

/**
 * Trained-range fake quantization: LSQ's gradients are estimates, not derivatives of the staircase, so they are
 * checked by hand in test/quant/quantizers.test.ts; here the two backends agree on forward and backward.
 */
const LEARNED_CASES: Case[] = [{
  op: 'fake_quant_learned', name: 'fakeQuantLearned 3 bits [4,6] (some codes clipped)',
  f: (x, lo, hi) => fakeQuantLearned(x, lo, hi, 3, [4, 6]), inputs: [randn([4, 6]), Tensor.from([-1, -0.5, -2, -0.1], [4]), Tensor.from([1, 0.4, 0.5, 2], [4])],
}];
for (const c of LEARNED_CASES) test(`native vs ref: ${c.name}`, () => compareBackends(c.name, c.f, c.inputs, { atol: 0, rtol: 0 }));

test('every primitive op has a case', () => {
  const covered = new Set([...CASES, ...STE_CASES, ...LEARNED_CASES].map((c) => c.op));
  for (const op of STE_OPS) assert.ok(!CASES.some((c) => c.op === op), `${op} is an STE op: it belongs in STE_CASES`);
  const missing = [...OP_REGISTRY.keys()].filter((op) => !covered.has(op));
  assert.deepEqual(missing, [], `ops without a gradient-check case: ${missing.join(', ')}`);
});

for (const c of CASES) {
  test(`gradcheck (ref, float64): ${c.name}`, () => gradcheck(c.name, c.f, c.inputs, { skip: c.skip }));
  test(`native vs ref: ${c.name}`, () => compareBackends(c.name, c.f, c.inputs, { atol: c.atol ?? 1e-5, rtol: 1e-4 }, c.skip));
}
