/**
 * `granq train` and `granq data fetch` through the CLI on tiny CIFAR files the test writes: the files a run writes,
 * `granq eval` on the trained model, a real SIGINT (checkpoint, resume hint, exit 130) resumed bit-identical, and
 * one-line errors on bad input.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../../src/tensor/rng.js';
import { CLI, granq, assertOneLineError, interruptAt, CLI_ENV } from '../kit/cli.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'granq-train-cli-'));



/** n random records (label byte + 3072 pixel bytes). */
function records(n: number, seed: number): Buffer {
  const rng = new Rng(seed);
  return Buffer.from(Uint8Array.from({ length: n * 3073 }, (_, i) => (i % 3073 === 0 ? rng.randint(0, 10) : rng.randint(0, 256))));
}

const data = tmp();
fs.mkdirSync(path.join(data, 'cifar-10-batches-bin'));
fs.writeFileSync(path.join(data, 'cifar-10-batches-bin', 'data_batch_1.bin'), records(128, 1));
fs.writeFileSync(path.join(data, 'cifar-10-batches-bin', 'test_batch.bin'), records(32, 2));
// Three epochs of 8 iterations at batch 16.
const RUN = ['train', '--data', data, '--epochs', '3', '--batch', '16', '--eval-batch', '32', '--seed', '3'];

describe('granq train', () => {
  let straight = '';
  before(() => {
    straight = tmp();
    const r = granq(...RUN, '--out', straight, '--json');
    assert.equal(r.code, 0, r.stderr);
  });

  test('writes log.jsonl, result.json, model.safetensors + sidecar; granq eval reloads the model', () => {
    const log = fs.readFileSync(path.join(straight, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(log.map((l) => l.iters), [8, 8, 8]);
    for (const l of log) for (const k of ['epoch', 'lr', 'loss', 'train_top1', 'test_top1', 'wall_s']) assert.equal(typeof l[k], 'number', k);
    const res = JSON.parse(fs.readFileSync(path.join(straight, 'result.json'), 'utf8'));
    assert.equal(res.test.images, 32);
    assert.equal(res.config.seed, 3);
    const e = granq('eval', '--model', path.join(straight, 'model.safetensors'), '--data', data, '--json');
    assert.equal(e.code, 0, e.stderr);
    assert.equal(JSON.parse(e.stdout.trim().split('\n').pop()!).top1, res.final_top1);
  });

  test('SIGINT: checkpoint, resume hint, exit 130; resuming ends bit-identical', async () => {
    const out = tmp();
    const { code, stderr } = await interruptAt([...RUN, '--out', out], 2, 5);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted at epoch 2, iteration 5; checkpoint /);
    assert.match(stderr, /resume with: granq train .* --resume/);
    const r = granq(...RUN, '--out', out, '--resume');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resuming .* at epoch 2, iteration 6/);
    assert.ok(fs.readFileSync(path.join(out, 'model.safetensors')).equals(fs.readFileSync(path.join(straight, 'model.safetensors'))));
  });

  test('bad input: one-line errors', () => {
    assertOneLineError(granq('train'), 2, /required option '--out <dir>'/);
    assertOneLineError(granq('train', '--out', tmp(), '--data', path.join(data, 'missing')), 1, /^granq: --data: expected an existing directory/);
    assertOneLineError(granq('train', '--out', tmp(), '--schedule', 'step'), 2, /--schedule.*Allowed choices are cosine, multistep/);
    assertOneLineError(granq('train', '--out', tmp(), '--lr', '0'), 2, /--lr.*positive number/);
    const file = path.join(tmp(), 'a-file');
    fs.writeFileSync(file, 'x');
    assertOneLineError(granq('train', '--out', file, '--data', data), 1, /^granq: --out: .*a-file is a file, expected a directory$/);
    assertOneLineError(granq(...RUN, '--out', straight), 1, /^granq: --out: .* already holds a checkpoint; pass --resume/);
    assertOneLineError(granq(...RUN, '--out', straight, '--resume', '--batch', '8'), 1, /^granq: --resume: settings differ .*batch: 16 -> 8/);
  });
});

describe('granq data fetch', () => {
  test('an unknown dataset, or no npm on PATH: one line, exit 1', () => {
    assertOneLineError(granq('data', 'fetch', 'cifar100', '--to', tmp()), 1, /^granq: dataset: expected cifar10 .*got 'cifar100'/);
    // --to a file: refused before anything is downloaded (PATH without npm would fail later, at the download).
    const file = path.join(tmp(), 'a-file');
    fs.writeFileSync(file, 'x');
    const r0 = spawnSync(process.execPath, [CLI, 'data', 'fetch', 'cifar10', '--to', file], { encoding: 'utf8', env: { ...CLI_ENV, PATH: tmp() } });
    assertOneLineError({ code: r0.status, stdout: r0.stdout, stderr: r0.stderr }, 1, /^granq: --to: .*cifar-10-batches-bin cannot be a directory: .*a-file is a file$/);
    const r = spawnSync(process.execPath, [CLI, 'data', 'fetch', 'cifar10', '--to', tmp()], { encoding: 'utf8', env: { ...CLI_ENV, PATH: tmp() } });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim().split('\n').pop()!, /^granq: npm: not found on PATH/);
  });
});
