/** A small conv net learns a synthetic separable task (which quadrant of an 8x8 image is bright). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/autograd/index.js';
import { BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential, AvgPool2d } from '../../src/nn/index.js';
import { SGD } from '../../src/optim/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';

function makeBatch(rng: Rng, n: number): { x: Tensor; y: Int32Array } {
  const x = Tensor.randn([n, 1, 8, 8], rng, 0.5);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const q = rng.randint(0, 4);
    y[i] = q;
    const r0 = q < 2 ? 0 : 4;
    const c0 = q % 2 === 0 ? 0 : 4;
    for (let r = r0; r < r0 + 4; r++) for (let c = c0; c < c0 + 4; c++) x.data[i * 64 + r * 8 + c]! += 1;
  }
  return { x, y };
}

test('a small conv net reaches >= 95% training accuracy within 300 steps', () => {
  const rng = new Rng(1);
  const net = new Sequential(
    new Conv2d(1, 8, 3, { padding: 1, rng }), new BatchNorm2d(8), new ReLU(),
    new AvgPool2d(4), new Flatten(), new Linear(8 * 4, 4, { rng }),
  );
  const opt = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
  const train = makeBatch(rng, 512);
  let acc = 0;
  for (let step = 0; step < 300 && acc < 0.95; step++) {
    const idx = Int32Array.from({ length: 64 }, () => rng.randint(0, 512));
    const xb = Tensor.empty([64, 1, 8, 8]);
    const yb = new Int32Array(64);
    idx.forEach((j, i) => {
      xb.data.set(train.x.data.subarray(j * 64, j * 64 + 64), i * 64);
      yb[i] = train.y[j]!;
    });
    opt.zeroGrad();
    F.crossEntropy(net.forward(xb), yb).backward();
    opt.step();
    if (step % 20 === 19) {
      net.eval();
      const logits = F.noGrad(() => net.forward(train.x));
      net.train();
      let correct = 0;
      for (let i = 0; i < 512; i++) {
        const row = Array.from(logits.data.subarray(i * 4, i * 4 + 4));
        if (row.indexOf(Math.max(...row)) === train.y[i]) correct++;
      }
      acc = correct / 512;
    }
  }
  assert.ok(acc >= 0.95, `training accuracy ${acc} < 0.95`);
});
