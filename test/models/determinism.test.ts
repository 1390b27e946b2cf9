/** Seeded runs are reproducible bit for bit, and do not depend on the number of kernel threads. */
import { test } from 'node:test';
import * as F from '../../src/autograd/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { createModel } from '../../src/models/registry.js';
import { SGD } from '../../src/optim/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertBitEqual } from '../kit/compare.js';
import { withThreads } from '../kit/threads.js';

/** Two SGD steps of a freshly seeded ResNet-20 (option B, 100 classes) on seeded data; returns all parameters. */
function twoSteps(): Float32Array[] {
  manualSeed(3);
  const model = createModel('resnet20-b', 100);
  const rng = new Rng(4);
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  for (let step = 0; step < 2; step++) {
    const x = Tensor.randn([6, 3, 32, 32], rng);
    const y = Int32Array.from({ length: 6 }, () => rng.randint(0, 100));
    opt.zeroGrad();
    F.crossEntropy(model.forward(x), y).backward();
    opt.step();
  }
  return model.parameters().map((p) => p.data.slice());
}

test('seeded training is bit-identical across runs and across 1 and 3 threads', () => {
  const a = withThreads(1, twoSteps);
  const b = withThreads(1, twoSteps);
  const c = withThreads(3, twoSteps);
  a.forEach((p, i) => {
    assertBitEqual(b[i]!, p, `parameter ${i}, run 2 vs run 1`);
    assertBitEqual(c[i]!, p, `parameter ${i}, 3 threads vs 1`);
  });
});
