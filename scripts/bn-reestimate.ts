#!/usr/bin/env node
/**
 * A measurement, not a command: BatchNorm re-estimation of a finished zero-shot run's student on its own generator's
 * images (the held-out synthetic stream). The student's running means and variances are reset and re-estimated as a
 * cumulative average over --images synthetic images in batches of --batch (train-mode forwards, every activation
 * observer off), then the test top-1 is measured before and after. docs/results.md has what it gave.
 * node dist/scripts/bn-reestimate.js RUN_DIR [--images 2048] [--batch 64] [--data DIR]
 */
import path from 'node:path';
import { noGrad } from '../src/autograd/index.js';
import { batchNorms } from '../src/nn/layers.js';
import { loadQuantizedModel, withObserversOff } from '../src/quant/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { runSyntheticImages } from '../src/zsq/checkpoint.js';
import { testTop1 } from '../src/zsq/measure.js';
import { findTestSet } from '../src/zsq/test-set.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const runDir = process.argv[2];
if (!runDir || runDir.startsWith('--')) throw new Error('usage: bn-reestimate RUN_DIR [--images N] [--batch B] [--data DIR]');
const n = Number(arg('images', '2048'));
const batch = Number(arg('batch', '64'));
const { model, sidecar } = loadQuantizedModel(path.join(runDir, 'student.safetensors'));
const found = findTestSet(process.argv.includes('--data') ? arg('data', '') : undefined, sidecar.numClasses);
if (!found) throw new Error('no CIFAR test set found (--data DIR)');
const test = { data: found.data, mean: sidecar.mean, std: sidecar.std, batch: 500 };

model.eval();
const before = testTop1(model, test);
const bns = batchNorms(model);
const images = runSyntheticImages(runDir, n, 16, 'RUN_DIR');
for (const bn of bns) {
  bn.runningMean.data.fill(0);
  bn.runningVar.data.fill(1);
}
model.train();
let k = 0;
withObserversOff(model, () => {
  for (let i = 0; i + batch <= n; i += batch, k++) {
    // momentum 1 / (k + 1): the running statistics become the plain average over the k + 1 batches so far.
    for (const bn of bns) Object.defineProperty(bn, 'momentum', { value: 1 / (k + 1), configurable: true });
    const x = new Tensor(images.data.slice(i * 3072, (i + batch) * 3072), [batch, 3, 32, 32]);
    noGrad(() => model.forward(x));
  }
});
model.eval();
const after = testTop1(model, test);
console.log(JSON.stringify({ run: runDir, images: k * batch, batch, test_top1_before: before, test_top1_after: after }));
