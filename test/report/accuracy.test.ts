/** The accuracy table: our runs in %, the published numbers as drops from each paper's own FP teacher. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dropFrom, publishedRows, runRows } from '../../src/report/accuracy.js';
import type { RunFolder, RunResult } from '../../src/report/inputs.js';
import { parsePublished } from '../../src/report/published.js';

const result = {
  model: 'm', teacher: { path: '/t', model: 't' }, policy: { wbits: 3, abits: 3, act: 'granq', weight: 'slice' }, preset: 'quick', seed: 2,
  epochs: 20, iterations: 1000, test: { dataset: 'cifar10-test', images: 10000 },
  fp_top1: 0.9173, ptq_top1: 0.8662, final_top1: 0.8901, best_epoch: { epoch: 20, top1: 0.8901 }, wall_seconds: 375,
} satisfies RunResult;
const folder = (name: string, r: RunResult | null): RunFolder => ({ dir: name, name, log: [], result: r, hasCheckpoint: true });

test('runRows: finished runs only, top-1 in % rounded to 2 decimals', () => {
  const rows = runRows([folder('a', result), folder('b', null)]);
  assert.deepEqual(rows, [{ run: 'a', bits: 'W3A3', method: 'granq / slice', preset: 'quick', epochs: 20, divergedAt: null, fp: 91.73, ptq: 86.62, final: 89.01, best: { epoch: 20, top1: 89.01 }, bitsPerWeight: null, vsFp: null }]);
  // A result with storage accounting (quant/bits.ts): both forms' bits per weight.
  const bits = { 'f32': { bits_per_weight: 10.63, bytes: 1, fp32_bytes: 2 }, 'int-zp': { bits_per_weight: 7.66, bytes: 1, fp32_bytes: 2 } };
  assert.deepEqual(runRows([folder('c', { ...result, bits })])[0]!.bitsPerWeight, { f32: 10.63, intZp: 7.66 });
  // A result with the paired comparison against FP (zsq/measure.ts vsFp).
  const vs_fp = { images: 10000, student_only: 59, fp_only: 64, mcnemar_p: 0.7184 };
  assert.deepEqual(runRows([folder('d', { ...result, vs_fp })])[0]!.vsFp, { studentOnly: 59, fpOnly: 64, p: 0.7184 });
  // A run that diverged (zsq/run.ts): the epoch it stopped in.
  const diverged = { epoch: 12, iteration: 7, reason: 'epoch 12, iteration 7: loss student NaN' };
  assert.equal(runRows([folder('e', { ...result, final_top1: 0, diverged })])[0]!.divergedAt, 12);
  assert.equal(dropFrom(91.73, 89.01), 2.72);
  assert.equal(dropFrom(null, 89.01), null);
});

test('publishedRows: only the runs\' bit widths, drops from the paper\'s FP, missing numbers null', () => {
  const md = '## C. x\n- [A] = a.\n### C.1 ResNet-20, CIFAR-10 (FP 93.89)\n| Method | W3A3 | W4A4 |\n|---|---|---|\n| AdaDFQ | 84.89 [A,S] | 92.31 [A,S] |\n| HAST | – | 92.36 [S] |\n';
  const got = publishedRows(parsePublished(md, 'md'), 'CIFAR-10', ['W3A3'])!;
  assert.equal(got.table.fp, 93.89);
  assert.deepEqual(got.rows, [
    { method: 'AdaDFQ', values: { W3A3: { top1: 84.89, drop: 9, sources: ['A', 'S'], text: '84.89 [A,S]' } } },
    { method: 'HAST', values: { W3A3: null } },
  ]);
  assert.equal(publishedRows(parsePublished(md, 'md'), 'CIFAR-100', ['W3A3']), null);
});
