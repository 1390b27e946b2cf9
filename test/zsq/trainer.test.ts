/** The zero-shot QAT loop: finite losses, warm-up, and bit-identical resume from saved state. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/models/load.js';
import { presetConfig } from '../../src/zsq/config.js';
import { ZsqTrainer } from '../../src/zsq/trainer.js';
import { assertBitEqual } from '../kit/compare.js';
import { noShared, SHARED_MODEL } from '../kit/shared.js';

function makeTrainer() {
  const cfg = { ...presetConfig('tiny'), epochs: 3, itersPerEpoch: 2, batch: 4 };
  // An FP student (a second copy of the teacher) exercises the loop; quantized students plug in the same way.
  return new ZsqTrainer(loadModel(SHARED_MODEL).model, loadModel(SHARED_MODEL).model, 10, cfg);
}

describe('ZSQ trainer', { skip: noShared }, () => {
  test('losses are finite; the student is frozen during warm-up', () => {
    const tr = makeTrainer();
    const before = tr.student.parameters().map((p) => p.data.slice());
    const warm = tr.runEpoch();
    assert.ok(warm.every((l) => l.student === null && Number.isFinite(l.generator) && Number.isFinite(l.bns)));
    tr.student.parameters().forEach((p, i) => assertBitEqual(p.data, before[i]!, `warm-up changed parameter ${i}`));
    const next = tr.runEpoch();
    assert.ok(next.every((l) => l.student !== null && Number.isFinite(l.student)));
    tr.dispose();
  });

  test('an interrupted run resumed from its state ends bit-identical to an uninterrupted one', () => {
    const straight = makeTrainer();
    for (let e = 0; e < 3; e++) straight.runEpoch();

    // Interrupted in the middle of the second epoch (as Ctrl-C does), then resumed from the saved state.
    const first = makeTrainer();
    first.runEpoch();
    first.runEpoch(undefined, () => true);
    assert.deepEqual([first.epoch, first.iter], [1, 1]);
    const saved = first.state();
    const copy = { tensors: new Map([...saved.tensors].map(([k, v]) => [k, v.slice()])), meta: structuredClone(saved.meta) };
    first.dispose();

    const resumed = makeTrainer();
    resumed.restore(copy.tensors, copy.meta);
    resumed.runEpoch();
    resumed.runEpoch();
    assert.equal(resumed.iter, 0);
    assert.equal(resumed.epoch, 3);
    const a = straight.state().tensors;
    const b = resumed.state().tensors;
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [k, v] of a) assertBitEqual(b.get(k)!, v, k);
    straight.dispose();
    resumed.dispose();
  });
});
