/**
 * Every fused op equals its composition from primitives, forward and backward, on both backends: add_relu =
 * relu(add), batch_norm with `relu` = relu(batch_norm) in training and in eval mode. FUSED lists them; a meta-test
 * fails when an op whose name says it fuses (another op's name + `_relu`) has no entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/autograd/index.js';
import { OP_REGISTRY } from '../../src/autograd/index.js';
import { nativeBackend, refBackend, withBackend } from '../../src/backend/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';

interface FusedCase {
  op: string;
  name: string;
  fused: (...x: Tensor[]) => Tensor;
  composed: (...x: Tensor[]) => Tensor;
  shapes: number[][];
}

const running = () => ({ mean: Float32Array.from([0.1, -0.2, 0.3, 0, 0.05]), var: Float32Array.from([0.8, 1.2, 0.5, 1, 2]) });
const bn = (training: boolean, relu: boolean) => (x: Tensor, g: Tensor, b: Tensor) => {
  const r = running();
  return F.batchNorm(x, g, b, { training, eps: 1e-5, momentum: 0.1, runningMean: training ? null : r.mean, runningVar: training ? null : r.var, relu });
};

const FUSED: FusedCase[] = [
  { op: 'add_relu', name: 'relu(a + b)', fused: (a, b) => F.addRelu(a!, b!), composed: (a, b) => F.relu(F.add(a!, b!)), shapes: [[2, 3, 4, 5], [2, 3, 4, 5]] },
  { op: 'batch_norm', name: 'BN + ReLU, training', fused: (x, g, b) => bn(true, true)(x!, g!, b!), composed: (x, g, b) => F.relu(bn(true, false)(x!, g!, b!)), shapes: [[3, 5, 4, 3], [5], [5]] },
  { op: 'batch_norm', name: 'BN + ReLU, eval', fused: (x, g, b) => bn(false, true)(x!, g!, b!), composed: (x, g, b) => F.relu(bn(false, false)(x!, g!, b!)), shapes: [[3, 5, 4, 3], [5], [5]] },
];

/** Output and every input's gradient of sum(f(x) * w) for a fixed random w. */
function run(f: (...x: Tensor[]) => Tensor, shapes: number[][], seed: number): Float32Array[] {
  const xs = shapes.map((s, i) => {
    const t = Tensor.randn(s, new Rng(seed + i));
    t.requiresGrad = true;
    return t;
  });
  const y = f(...xs);
  const w = Tensor.randn(y.shape, new Rng(seed + 99));
  F.sum(F.mul(y, w)).backward();
  return [y.data.slice(), ...xs.map((x) => x.grad!.data.slice())];
}

for (const be of [refBackend, nativeBackend]) {
  for (const c of FUSED) {
    test(`${c.op}: ${c.name} equals its composition, forward and backward (${be.name})`, () => {
      withBackend(be, () => {
        const a = run(c.fused, c.shapes, 11);
        const b = run(c.composed, c.shapes, 11);
        assert.deepEqual(a[0], b[0], 'forward: bit-identical');
        for (let i = 1; i < a.length; i++) {
          let worst = 0;
          for (let j = 0; j < a[i]!.length; j++) worst = Math.max(worst, Math.abs(a[i]![j]! - b[i]![j]!) / (1 + Math.abs(b[i]![j]!)));
          assert.ok(worst <= 1e-5, `gradient of input ${i - 1}: worst relative difference ${worst}`);
        }
      });
    });
  }
}

/** upsample_conv2d is conv2d(upsampleNearest(x, 2)) computed on the low-resolution input: the same function, other
 * rounding (the 3x3 taps are summed into 2x2 phase kernels first), so within float32 error, not bit for bit. */
const UPCONV_SHAPES = [[[2, 3, 5, 4], [4, 3, 3, 3], [4]], [[2, 16, 8, 8], [8, 16, 3, 3], [8]], [[2, 8, 16, 16], [4, 8, 3, 3], [4]]];
for (const be of [refBackend, nativeBackend]) {
  for (const shapes of UPCONV_SHAPES) {
    test(`upsample_conv2d equals conv2d(upsampleNearest(x, 2)) within float32 error, x [${shapes[0]}] w [${shapes[1]}] (${be.name})`, () => {
      withBackend(be, () => {
        const a = run((x, w, b) => F.upsampleConv2d(x!, w!, b!), shapes, 21);
        const b = run((x, w, b) => F.conv2d(F.upsampleNearest(x!, 2), w!, b!, { padding: 1 }), shapes, 21);
        ['output', 'input gradient', 'weight gradient', 'bias gradient'].forEach((what, i) => {
          let worst = 0;
          for (let j = 0; j < b[i]!.length; j++) worst = Math.max(worst, Math.abs(a[i]![j]! - b[i]![j]!) / (1 + Math.abs(b[i]![j]!)));
          assert.ok(worst <= 3e-5, `${what}: worst relative difference ${worst}`);  // float32 sums of up to 2,048 products
        });
      });
    });
  }
}

test('every fusing op (another op\'s name + _relu, or batch_norm) has a FUSED case', () => {
  const names = new Set<string>(OP_REGISTRY.keys());
  const fusing = [...names].filter((k) => (k.endsWith('_relu') && names.has(k.slice(0, -5))) || k === 'batch_norm');
  assert.ok(fusing.length >= 2);
  for (const op of fusing) assert.ok(FUSED.some((c) => c.op === op), `${op} has no fused-vs-composed case`);
});
