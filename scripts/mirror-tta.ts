#!/usr/bin/env node
/**
 * A measurement, not a command: a model's CIFAR test top-1 alone and with flip test-time augmentation (its logits
 * averaged over each image and the image mirrored left to right), the target that `granq quantize --kd-mirror`
 * distils. docs/results.md has what it gave.
 * node dist/scripts/mirror-tta.js [MODEL] [--data DIR]   (MODEL: weights with a sidecar, default the default teacher)
 */
import { noGrad } from '../src/autograd/index.js';
import { batches } from '../src/data/cifar.js';
import { countHits, forwardChunked, type EvalCounts } from '../src/models/evaluate.js';
import { loadModel } from '../src/models/load.js';
import { resolveModelArg } from '../src/models/default-teacher.js';
import { findTestSet } from '../src/zsq/test-set.js';
import { mirrorAveraged } from '../src/zsq/trainer.js';

const argv = process.argv.slice(2);
const di = argv.indexOf('--data');
const modelArg = argv.find((a, i) => !a.startsWith('--') && i !== di + 1);
const { model, sidecar, path } = loadModel(resolveModelArg(modelArg));
const found = findTestSet(di >= 0 ? argv[di + 1] : undefined, sidecar.numClasses);
if (!found) throw new Error('no CIFAR test set found (--data DIR)');
model.eval();
const plain: EvalCounts = { images: 0, correct: 0, correct5: 0 };
const averaged: EvalCounts = { images: 0, correct: 0, correct5: 0 };
for (const { x, y } of batches(found.data, { batchSize: 500, mean: sidecar.mean, std: sidecar.std })) {
  noGrad(() => {
    const a = forwardChunked(model, x);
    countHits(a, y, plain);
    countHits(mirrorAveraged(model, a, x), y, averaged); // the very target --kd-mirror gives the student
  });
}
const pct = (c: EvalCounts) => ((100 * c.correct) / c.images).toFixed(2);
console.log(`${path}: test top-1 ${pct(plain)} alone, ${pct(averaged)} with its logits averaged over each image and its mirror (${plain.images} images)`);
