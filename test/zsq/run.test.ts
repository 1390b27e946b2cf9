/**
 * runQuantize in process: training improves the student's agreement with the teacher over the PTQ start, the
 * files it writes, a `layer` run interrupted mid-warm-up (EMA ranges still moving) resuming bit for bit, and a
 * diverging run stopping at its first non-finite loss.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { presetConfig } from '../../src/zsq/config.js';
import { CHECKPOINT_FILE, loadCheckpoint } from '../../src/zsq/checkpoint.js';
import { runQuantize, type QuantizeOptions } from '../../src/zsq/run.js';
import { settingsDiff, type ZsqSettings } from '../../src/zsq/settings.js';
import { loadQuantizedModel } from '../../src/quant/index.js';
import { assertBitEqual } from '../kit/compare.js';
import { noShared, SHARED_MODEL } from '../kit/shared.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'granq-zsq-'));
const quiet = { log: () => {} };

function options(out: string, over: Partial<QuantizeOptions> = {}): QuantizeOptions {
  return {
    model: SHARED_MODEL, policy: { wbits: 3, abits: 3, act: 'granq', weight: 'slice' }, preset: 'tiny',
    config: { ...presetConfig('tiny'), epochs: 3, itersPerEpoch: 8, warmupEpochs: 1, milestones: [] },
    out, resume: false, test: false, evalEvery: 1, evalBatch: 64, calib: 1, agreeImages: 256, ...over,
  };
}

describe('granq quantize (in process)', { skip: noShared }, () => {
  test('W3A3 granq: agreement with the teacher on held-out synthetic images improves over the PTQ start', async () => {
    // 2 epochs x 8 student steps at the released lr 1e-4 (the T^2-scaled entropy loss diverges at 1e-3). Seeds 1-3
    // gave +6 to +9 points on this set (41-46% -> 50-54%); the final generator seeks disagreement, so it is hard.
    const out = tmp();
    const r = await runQuantize(options(out), quiet);
    assert.equal(r.status, 'done');
    if (r.status !== 'done') return;
    const a = r.result['agreement'] as { ptq: number; final: number; images: number };
    assert.equal(a.images, 256);
    assert.ok(a.final - a.ptq >= 0.03, `agreement PTQ ${a.ptq} -> final ${a.final}`);

    // Files: three epochs logged, result fields, no test set, a reloadable student that reproduces the agreement.
    const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(log.map((l) => l.epoch), [1, 2, 3]);
    assert.deepEqual(log.map((l) => l.student_trains), [false, true, true]);
    for (const l of log) {
      assert.equal(l.iters, 8);
      assert.equal(l.test_top1, undefined);
      for (const k of ['generator', 'margin', 'ds', 'as', 'bns']) assert.ok(Number.isFinite(l.loss[k]), k);
      for (const k of ['lr_s', 'lr_g', 'wall_s']) assert.equal(typeof l[k], 'number', k);
    }
    const res = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8'));
    assert.equal(res.test, null);
    assert.equal(res.fp_top1, null);
    assert.equal(res.best_epoch, null);
    assert.equal(res.iterations, 24);
    assert.equal(res.seed, 2);
    const { model, policy, sidecar } = loadQuantizedModel(path.join(out, 'student.safetensors'));
    assert.deepEqual(policy, { wbits: 3, abits: 3, act: 'granq', weight: 'slice' });
    assert.equal((sidecar.raw['zsq'] as ZsqSettings).config.itersPerEpoch, 8);
    assert.equal(sidecar.measuredTop1, undefined); // the teacher's accuracy moved under `teacher`
    const ck = loadCheckpoint<unknown>(path.join(out, CHECKPOINT_FILE));
    for (const [k, t] of model.stateDict()) assertBitEqual(t.data, ck.tensors.get(`student.${k}`)!, k);
  });

  test('layer: interrupted during warm-up (ranges still observing) and resumed, ends bit-identical', async () => {
    const over = {
      policy: { wbits: 3, abits: 3, act: 'layer', weight: 'channel' } as const,
      config: { ...presetConfig('tiny'), epochs: 3, itersPerEpoch: 3, batch: 4, warmupEpochs: 2, milestones: [2] },
      agreeImages: 16, evalBatch: 16,
    };
    const straight = tmp();
    assert.equal((await runQuantize(options(straight, over), quiet)).status, 'done');
    const cut = tmp();
    let n = 0;
    const first = await runQuantize(options(cut, over), { ...quiet, interrupted: () => ++n >= 4 });
    assert.deepEqual(first.status === 'interrupted' ? [first.epoch, first.iter] : first.status, [1, 1]);
    assert.equal((await runQuantize(options(cut, { ...over, resume: true }), quiet)).status, 'done');
    assert.ok(fs.readFileSync(path.join(straight, 'student.safetensors')).equals(fs.readFileSync(path.join(cut, 'student.safetensors'))));
    const strip = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => ({ ...JSON.parse(l), wall_s: 0 }));
    assert.deepEqual(strip(path.join(cut, 'log.jsonl')), strip(path.join(straight, 'log.jsonl')));
  });

  test('a diverging run (student lr 10) stops at its first non-finite loss: result.json says where, no student file', async () => {
    const out = tmp();
    const r = await runQuantize(options(out, { config: { ...options(out).config, lrStudent: 10 }, agreeImages: 64 }), quiet);
    assert.equal(r.status, 'done');
    if (r.status !== 'done') return;
    const d = r.result['diverged'] as { epoch: number; iteration: number; reason: string };
    assert.equal(d.epoch, 2, 'the first epoch that trains the student');
    assert.ok(d.iteration >= 1 && d.iteration < 8, `iteration ${d.iteration}`);
    assert.match(d.reason, new RegExp(`^epoch 2, iteration ${d.iteration}: loss .*NaN`));
    assert.equal(r.result['final_epoch'], 2);
    assert.equal((r.result['agreement'] as { final: number }).final, 0, 'a NaN student predicts nothing');
    assert.equal(fs.existsSync(path.join(out, 'student.safetensors')), false);
    const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(log.map((l) => [l.epoch, l.iters]), [[1, 8], [2, d.iteration]], 'the diverged epoch logged as far as it went');
    assert.equal(log[1].loss.student, null, 'NaN means are written as null');
    assert.equal(loadCheckpoint<unknown>(path.join(out, CHECKPOINT_FILE)).meta.epoch, 1, 'the last checkpoint is the last finite epoch\'s');
  });

  test('settingsDiff: epochs and evalEvery may change, the rest may not', () => {
    const base: ZsqSettings = {
      teacher: { path: '/a', model: 'm', sha256: 'x' }, policy: { wbits: 4, abits: 4, act: 'granq', weight: 'slice' },
      preset: 'tiny', config: presetConfig('tiny'), test: { enabled: true, limit: 10 }, evalEvery: 1, calib: 4, agreeImages: 64,
    };
    assert.deepEqual(settingsDiff(base, { ...base, config: { ...base.config, epochs: 9 }, evalEvery: 3, calib: 2, teacher: { ...base.teacher, path: '/b' } }), []);
    const d = settingsDiff(base, { ...base, config: { ...base.config, batch: 3 }, policy: { ...base.policy, abits: 3 } });
    assert.equal(d.length, 2);
    assert.match(d.join(';'), /policy/);
    assert.match(d.join(';'), /batch: 8 -> 3/);
  });
});
