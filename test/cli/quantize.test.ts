/**
 * `granq quantize` and `granq bench iter` end to end through the CLI (tiny settings, --test-limit): the files a run
 * writes, `granq eval` on the saved student, resume after `--epochs 1` and after a real SIGINT (both bit-identical
 * to an uninterrupted run), and one-line errors on bad input.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CIFAR10_DIR, noShared, SHARED_MODEL } from '../kit/shared.js';
import { granq, lastJson, assertOneLineError, interruptAt } from '../kit/cli.js';
import { configFromOptions, policyFromOptions, type QuantizeCliOptions } from '../../src/cli/quantize.js';


const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'granq-quantize-'));
const readLines = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));


// Two epochs of 6 iterations at batch 8 (epoch 1 = warm-up), 64 test images, 32 held-out synthetic images.
const RUN = ['quantize', '--model', SHARED_MODEL, '--wbits', '4', '--abits', '4', '--preset', 'tiny', '--epochs', '2', '--iters', '6',
  '--data', CIFAR10_DIR, '--test-limit', '64', '--eval-batch', '64', '--agree-images', '32'];

test('--student-schedule multistep over a preset\'s cosine: the student follows --student-milestones (or --milestones)', () => {
  const o = { preset: 'plus-cifar10', nesterov: true } as QuantizeCliOptions;
  assert.equal(configFromOptions(o).studentSchedule, 'cosine');
  const c = configFromOptions({ ...o, studentSchedule: 'multistep', studentMilestones: [20, 40, 60] });
  assert.equal(c.studentSchedule, undefined);
  assert.deepEqual([c.studentMilestones, c.milestones], [[20, 40, 60], [100, 200, 300]]);
});

test('--preset plus-frozen-cifar10: its training settings, and channel weights with learned ranges unless --weight or --weight-clip say otherwise', () => {
  const o = { preset: 'plus-frozen-cifar10', nesterov: true, wbits: 3, abits: 3, act: 'granq' } as QuantizeCliOptions;
  const c = configFromOptions(o);
  assert.deepEqual([c.generatorEpochs, c.augment, c.lrStudent, c.studentSchedule, c.alphaDs, c.alphaAs, c.marginLower, c.marginUpper, c.epochs],
    [50, 4, 2.5e-5, 'cosine', 0, 0, 0, 1, 200]);
  const pol = (extra: Partial<QuantizeCliOptions>) => { const p = policyFromOptions({ ...o, ...extra }); return [p.weight, p.weightClip]; };
  assert.deepEqual(pol({}), ['channel', 'learned']);
  assert.deepEqual(pol({ weightClip: 'mse' }), ['channel', 'mse']);
  assert.deepEqual(pol({ weight: 'tensor' }), ['tensor', undefined]);
  assert.deepEqual(pol({ preset: 'quick' }), ['slice', undefined]);
});

describe('granq quantize', { skip: noShared }, () => {
  let straight = '';
  before(() => {
    straight = tmp();
    const r = granq(...RUN, '--out', straight, '--json');
    assert.equal(r.code, 0, r.stderr);
  });

  test('writes log.jsonl, result.json, student.safetensors + sidecar; granq eval reloads the quantized student', () => {
    const log = readLines(path.join(straight, 'log.jsonl'));
    assert.equal(log.length, 2);
    for (const l of log) for (const k of ['epoch', 'iters', 'lr_s', 'lr_g', 'test_top1', 'wall_s']) assert.equal(typeof l[k], 'number', k);
    assert.equal(log[0].loss.student, null); // warm-up
    assert.equal(typeof log[1].loss.student, 'number');
    const res = JSON.parse(fs.readFileSync(path.join(straight, 'result.json'), 'utf8'));
    for (const k of ['fp_top1', 'ptq_top1', 'final_top1', 'wall_seconds', 'seed']) assert.equal(typeof res[k], 'number', k);
    assert.equal(res.test.images, 64);
    assert.equal(res.final_top1, log[1].test_top1);
    assert.match(res.best_epoch.note, /test-set model selection/);
    assert.ok(res.best_epoch.top1 >= res.final_top1);
    for (const k of ['ptq', 'final']) assert.ok(res.agreement[k] >= 0 && res.agreement[k] <= 1, k);
    assert.deepEqual(res.policy, { wbits: 4, abits: 4, act: 'granq', weight: 'slice' });
    assert.equal(res.settings.config.itersPerEpoch, 6);
    const sc = JSON.parse(fs.readFileSync(path.join(straight, 'student.json'), 'utf8'));
    assert.deepEqual(sc.quantization, res.policy);
    assert.equal(sc.zsq.config.epochs, 2);
    assert.equal(sc.architecture, 'resnet20-optionA');
    const ev = granq('eval', '--model', path.join(straight, 'student.safetensors'), '--data', CIFAR10_DIR, '--limit', '64', '--batch', '64', '--json');
    assert.equal(ev.code, 0, ev.stderr);
    const j = lastJson(ev.stdout);
    assert.deepEqual(j.policy, res.policy);
    assert.equal(j.top1, res.final_top1);
    // vs_fp: the student against its teacher image by image; the accuracy difference is exactly its discordant split.
    assert.equal(res.vs_fp.images, 64);
    assert.equal(Math.round(64 * (res.final_top1 - res.fp_top1)), res.vs_fp.student_only - res.vs_fp.fp_only);
    assert.ok(res.vs_fp.mcnemar_p > 0 && res.vs_fp.mcnemar_p <= 1);
    // granq eval --vs gives the same split from the saved student and the teacher's file.
    const vs = granq('eval', '--model', path.join(straight, 'student.safetensors'), '--vs', res.teacher.path, '--data', CIFAR10_DIR, '--limit', '64', '--json');
    assert.equal(vs.code, 0, vs.stderr);
    const v = lastJson(vs.stdout).vs;
    assert.deepEqual([v.this_only, v.vs_only, v.mcnemar_p, v.top1], [res.vs_fp.student_only, res.vs_fp.fp_only, res.vs_fp.mcnemar_p, res.fp_top1]);
    assert.match(vs.stdout, /^vs {7}.*this model right where that one is wrong: \d+ images, the reverse: \d+ \(exact McNemar p = /m);
    assertOneLineError(granq('eval', '--model', path.join(straight, 'student.safetensors'), '--data', CIFAR10_DIR, '--wbits', '4', '--abits', '4'),
      1, /^granq: --wbits\/--abits: .* is already quantized/);
  });

  test('--epochs 1, then --resume --epochs 2: the same student bit for bit, the same log', () => {
    const out = tmp();
    assert.equal(granq(...RUN, '--epochs', '1', '--out', out).code, 0);
    const r = granq(...RUN, '--out', out, '--resume');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resuming .* at epoch 2/);
    assert.ok(fs.readFileSync(path.join(out, 'student.safetensors')).equals(fs.readFileSync(path.join(straight, 'student.safetensors'))));
    const strip = (f: string) => readLines(f).map((l) => ({ ...l, wall_s: 0 }));
    assert.deepEqual(strip(path.join(out, 'log.jsonl')), strip(path.join(straight, 'log.jsonl')));
  });

  test('SIGINT during epoch 2: checkpoint, resume hint, exit 130; resuming ends bit-identical', async () => {
    const out = tmp();
    const { code, stderr } = await interruptAt([...RUN, '--out', out], 2, 3);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted at epoch 2, iteration 3\/6; checkpoint /);
    assert.match(stderr, /resume with: granq quantize .* --resume/);
    const r = granq(...RUN, '--out', out, '--resume');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resuming .* at epoch 2, iteration 4/);
    assert.ok(fs.readFileSync(path.join(out, 'student.safetensors')).equals(fs.readFileSync(path.join(straight, 'student.safetensors'))));
  });

  test('--calib-source generator: a layer student starts from generator images although real data is there', () => {
    const out = tmp();
    const r = granq('quantize', '--model', SHARED_MODEL, '--wbits', '4', '--abits', '4', '--act', 'layer', '--preset', 'tiny', '--epochs', '1', '--iters', '2',
      '--data', CIFAR10_DIR, '--test-limit', '32', '--eval-batch', '32', '--calib', '1', '--agree-images', '16', '--calib-source', 'generator', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8'));
    assert.match(res.calibration, /^--calib-source generator: 32 images of an untrained generator/);
    assert.equal(res.settings.calibSource, 'generator');
    assertOneLineError(granq('quantize', '--model', SHARED_MODEL, '--wbits', '4', '--abits', '4', '--calib-source', 'test', '--out', tmp()), 2, /--calib-source.*Allowed choices are real, generator/);
  });

  test('bad input: one-line errors', () => {
    const base = ['quantize', '--model', SHARED_MODEL, '--wbits', '4', '--abits', '4'];
    assertOneLineError(granq(...base), 2, /required option '--out <dir>'/);
    assertOneLineError(granq(...base, '--out', tmp(), '--preset', 'huge'), 1, /^granq: --preset: unknown preset 'huge'; known: .*tiny/);
    assertOneLineError(granq(...base, '--out', tmp(), '--resume'), 1, /^granq: --resume: no checkpoint at /);
    assertOneLineError(granq(...base, '--out', straight), 1, /^granq: --out: .* already holds a checkpoint; pass --resume/);
    assertOneLineError(granq(...RUN, '--out', straight, '--resume', '--batch', '4'), 1, /^granq: --resume: settings differ .*batch: 8 -> 4/);
    assertOneLineError(granq(...base, '--out', tmp(), '--lr-s', '-1'), 2, /--lr-s.*positive number/);
    assertOneLineError(granq(...base, '--out', tmp(), '--preset', 'plus-cifar10', '--student-milestones', '20,40'), 1,
      /^granq: config: studentMilestones .*--student-schedule multistep/);
    const file = path.join(tmp(), 'a-file');
    fs.writeFileSync(file, 'x');
    assertOneLineError(granq(...base, '--out', file), 1, /^granq: --out: .*a-file is a file, expected a directory$/);
    assertOneLineError(granq(...base, '--out', path.join(file, 'run')), 1, /^granq: --out: .* cannot be a directory: .*a-file is a file$/);
  });
});

describe('granq bench iter', { skip: noShared }, () => {
  test('--json: one row per batch size', () => {
    const r = granq('bench', 'iter', '--batch', '2', '--runs', '1', '--warmup', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = lastJson(r.stdout);
    assert.equal(j.rows.length, 1);
    assert.equal(j.rows[0].batch, 2);
    assert.ok(j.rows[0].ms > 0 && j.rows[0].it_per_s > 0);
  });
});
