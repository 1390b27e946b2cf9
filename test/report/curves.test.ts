/** Training-curve data from log.jsonl records: losses without the warm-up nulls, top-1 in % with the PTQ start. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lossPoints, top1Points } from '../../src/report/curves.js';
import type { RunFolder, RunResult } from '../../src/report/inputs.js';

const run = (name: string, ptq: number | null): RunFolder => ({
  dir: `/x/${name}`, name, hasCheckpoint: false,
  log: [
    { epoch: 1, loss: { generator: 3, bns: 1.5, student: null }, wall_s: 1 },
    { epoch: 2, loss: { generator: 2, bns: 1.2, student: -900 }, test_top1: 0.8512, wall_s: 1 },
  ],
  result: ptq === null ? null : ({ ptq_top1: ptq } as RunResult),
});

test('lossPoints: every loss with a value, per run and epoch; the student is absent while it does not train', () => {
  const p = lossPoints([run('a', 0.8), run('b', null)]);
  assert.equal(p.length, 2 * 5);
  assert.equal(p.filter((x) => x.loss === 'student').length, 2);
  assert.deepEqual(p.find((x) => x.run === 'b' && x.loss === 'student'), { run: 'b', epoch: 2, loss: 'student', value: -900 });
});

test('top1Points: evaluated epochs in %, the PTQ start as epoch 0 when result.json has it', () => {
  assert.deepEqual(top1Points([run('a', 0.8)]), [{ run: 'a', epoch: 0, top1: 80 }, { run: 'a', epoch: 2, top1: 85.12 }]);
  assert.deepEqual(top1Points([run('b', null)]), [{ run: 'b', epoch: 2, top1: 85.12 }]);
});
