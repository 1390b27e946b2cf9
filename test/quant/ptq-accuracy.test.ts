/**
 * PTQ top-1 on the full CIFAR-10 test set against PyTorch 1.13 (option-A teacher, W4A4, granq activations).
 * Expected counts: `scripts/torch-reference/resnet20_ptq.py` on this project's machine, and issue 3's figures.
 * Issue 3's "released rules" figures (86.76 / 90.95 / 91.59) are PyTorch's with the final Linear weight left in full
 * precision; with the Linear quantized as the fixtures' qlogits are (and as the released code does), PyTorch gives
 * 86.64 / 91.04 / 91.58. Both are checked within ±0.05 points (5 images): engines whose convolutions differ by
 * float32 rounding flip a handful of near-tie predictions each way (see parity.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCifarSplit } from '../../src/data/cifar.js';
import { loadModel } from '../../src/models/load.js';
import { runPtq, type QuantPolicy } from '../../src/quant/index.js';
import { CIFAR10_DIR, noShared, SHARED_MODEL } from '../kit/shared.js';

const CASES: { policy: QuantPolicy; torch: number; source: string }[] = [
  { policy: { wbits: 4, abits: 4, act: 'granq', weight: 'slice' }, torch: 9104, source: 'torch-reference --bits 4' },
  { policy: { wbits: 4, abits: 4, act: 'granq', weight: 'slice', skip: ['linear'] }, torch: 9095, source: 'issue 3; torch-reference --bits 4 --linear-fp' },
  { policy: { wbits: 4, abits: 4, act: 'granq', weight: 'channel' }, torch: 8972, source: 'issue 3; torch-reference --bits 4 --weight channel' },
];

describe('PTQ accuracy vs PyTorch on the 10,000 test images', { skip: noShared }, () => {
  const { model, sidecar } = noShared ? ({} as ReturnType<typeof loadModel>) : loadModel(SHARED_MODEL);
  const test10k = noShared ? undefined : loadCifarSplit(CIFAR10_DIR, { format: 'cifar10', split: 'test' });
  for (const c of CASES) {
    const label = `W4A4 granq/${c.policy.weight}${c.policy.skip ? ' (linear FP)' : ''}`;
    test(`${label}: within 5 images of PyTorch's ${c.torch} (${c.source})`, () => {
      const r = runPtq(model, c.policy, {
        dataDir: CIFAR10_DIR, format: 'cifar10', mean: sidecar.mean, std: sidecar.std, batch: 500, calib: 1, test: test10k, warn: () => {},
      });
      assert.equal(r.counts.images, 10000);
      process.stderr.write(`ptq ${label}: ${r.counts.correct} correct (PyTorch ${c.torch})\n`);
      assert.ok(Math.abs(r.counts.correct - c.torch) <= 5, `${r.counts.correct} vs PyTorch ${c.torch}`);
    });
  }
});
