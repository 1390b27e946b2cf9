/** `granq eval` with PTQ options, `granq bench quant`, `granq analyze error`: end to end, short (--limit). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fakeRunWithGenerator } from '../kit/run-dir.js';
import { CIFAR10_DIR, noShared, SHARED_MODEL } from '../kit/shared.js';
import { granq, lastJson } from '../kit/cli.js';



describe('granq eval --wbits/--abits (PTQ)', { skip: noShared }, () => {
  test('granq/slice: policy in the JSON, summary table on stderr, no calibration', () => {
    const r = granq('eval', '--model', SHARED_MODEL, '--data', CIFAR10_DIR, '--limit', '16', '--batch', '16', '--wbits', '4', '--abits', '4', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = lastJson(r.stdout);
    assert.deepEqual(j.policy, { wbits: 4, abits: 4, act: 'granq', weight: 'slice' });
    assert.equal(j.calibration, null);
    assert.equal(j.images, 16);
    assert.match(r.stderr, /19 quantized convs, 1 linear, 19 activation quantizers/);
    assert.match(r.stderr, /layer3\.2\.relu2\s+act\s+granq A4/);
  });

  test('layer: calibrates on the first N training batches and says so', () => {
    const r = granq('eval', '--model', SHARED_MODEL, '--data', CIFAR10_DIR, '--limit', '8', '--batch', '8', '--wbits', '3', '--abits', '3',
      '--act', 'layer', '--weight', 'channel', '--calib', '2', '--released-ema', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = lastJson(r.stdout);
    assert.deepEqual(j.policy, { wbits: 3, abits: 3, act: 'layer', weight: 'channel', releasedEma: true });
    assert.equal(j.calibration.split, 'train');
    assert.equal(j.calibration.images, 16);
    assert.equal(j.calibration.batches, 2);
    assert.equal(j.calibration.ema, 'released');
    assert.match(j.calibration.files[0], /data_batch_1\.bin$/);
    assert.match(r.stderr, /calibration first 16 images of the train split/);
  });

  test('bad quantization options are one-line errors', () => {
    const cases: [string[], RegExp][] = [
      [['--wbits', '4'], /--wbits and --abits: give both/],
      [['--wbits', '9', '--abits', '4'], /bit width in 2\.\.8, got '9'/],
      [['--wbits', '4', '--abits', '4', '--act', 'lsq'], /--act <name>' argument 'lsq' is invalid/],
      [['--act', 'layer'], /--act: only meaningful with --wbits and --abits/],
      [['--wbits', '4', '--abits', '4', '--skip', 'nope'], /skip path 'nope' names no module/],
    ];
    for (const [args, re] of cases) {
      const r = granq('eval', '--model', SHARED_MODEL, '--data', CIFAR10_DIR, '--limit', '8', ...args);
      assert.notEqual(r.code, 0);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, re);
    }
  });
});

describe('granq bench quant / analyze error', { skip: noShared }, () => {
  test('bench quant --json: one row per batch with all six timings', () => {
    const r = granq('bench', 'quant', '--bits', '3', '--batches', '2', '--runs', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = lastJson(r.stdout);
    assert.equal(j.bits, 3);
    assert.equal(j.rows.length, 1);
    for (const k of ['batch', 'layer_ms', 'loop_ms', 'granq_ms', 'fwd_layer_ms', 'fwd_loop_ms', 'fwd_granq_ms']) assert.equal(typeof j.rows[0][k], 'number', k);
  });

  test('analyze error --json: 19 layers, granq error below layer error on average', () => {
    const r = granq('analyze', 'error', '--model', SHARED_MODEL, '--data', CIFAR10_DIR, '--bits', '3', '--batch', '8', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = lastJson(r.stdout);
    assert.equal(j.bits, 3);
    assert.equal(j.inputs, 'real');
    assert.equal(j.images, 8);
    assert.equal(j.layers.length, 19);
    assert.deepEqual(j.layers[0].shape, [8, 16, 32, 32]);
    const mean = (k: string) => j.layers.reduce((s: number, l: Record<string, number>) => s + l[k]!, 0) / 19;
    assert.ok(mean('granq') < mean('layer'), `granq ${mean('granq')} vs layer ${mean('layer')}`);
  });

  test('analyze error --synthetic RUN_DIR: the run generator\'s images, labelled synthetic', () => {
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-analyze-'));
    fakeRunWithGenerator(run, 2);
    const r = granq('analyze', 'error', '--model', SHARED_MODEL, '--bits', '3', '--batch', '4', '--synthetic', run, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = lastJson(r.stdout);
    assert.equal(j.inputs, 'synthetic');
    assert.equal(j.images, 4);
    assert.equal(j.layers.length, 19);
    assert.deepEqual(j.layers[0].shape, [4, 16, 32, 32]);
    assert.match(r.stderr, /4 images of the generator of /);
    const bad = granq('analyze', 'error', '--model', SHARED_MODEL, '--synthetic', path.join(run, 'nope'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr.trim(), /^granq: --synthetic: no checkpoint at .*nope\/checkpoint\.safetensors$/);
  });
});
