/** `granq eval` end to end, and its one-line errors on bad input (never a crash or a stack dump). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadStateDictFile, writeSafetensors } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { CIFAR10_DIR, noShared, SHARED_MODEL } from '../kit/shared.js';
import { granq, assertOneLineError } from '../kit/cli.js';




function tmpModelDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-cli-'));
  fs.copyFileSync(SHARED_MODEL.replace(/\.safetensors$/, '.json'), path.join(dir, 'm.json'));
  return dir;
}

describe('granq eval', { skip: noShared }, () => {
  test('full CIFAR-10 test set: top-1 0.9173 (PyTorch and onnxruntime figure)', () => {
    const r = granq('eval', '--model', SHARED_MODEL, '--data', CIFAR10_DIR, '--json');
    assert.equal(r.code, 0, r.stderr);
    const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(last.images, 10000);
    assert.ok(Math.abs(last.correct - 9173) <= 2, `correct ${last.correct}`);
    assert.equal(last.model, 'resnet20_cifar10_akamaster');
    assert.equal(last.dataset, 'cifar10-test');
    for (const k of ['top1', 'top5', 'seconds']) assert.equal(typeof last[k], 'number', k);
    assert.ok(last.top5 >= last.top1);
  });

  test('--vs: a model against itself differs on no image (p = 1); a model with other input normalisation, or no file, is one line', () => {
    const r = granq('eval', '--model', SHARED_MODEL, '--vs', SHARED_MODEL, '--data', CIFAR10_DIR, '--limit', '50', '--json');
    assert.equal(r.code, 0, r.stderr);
    const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.deepEqual(last.vs, { model: SHARED_MODEL, top1: last.top1, this_only: 0, vs_only: 0, mcnemar_p: 1 });
    const dir = tmpModelDir();
    fs.copyFileSync(SHARED_MODEL, path.join(dir, 'm.safetensors'));
    const side = JSON.parse(fs.readFileSync(path.join(dir, 'm.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'm.json'), JSON.stringify({ ...side, input: { ...side.input, mean: [0.5, 0.5, 0.5] } }));
    assertOneLineError(granq('eval', '--model', SHARED_MODEL, '--vs', path.join(dir, 'm.safetensors'), '--data', CIFAR10_DIR, '--limit', '50'), 1,
      /^granq: --vs: .*m\.safetensors normalises its input differently/);
    assertOneLineError(granq('eval', '--model', SHARED_MODEL, '--vs', '/nonexistent/v.safetensors', '--limit', '50'), 1, /^granq: --vs: no such file/);
  });

  test('--limit and --batch: a partial last batch is counted', () => {
    const r = granq('eval', '--model', SHARED_MODEL, '--data', CIFAR10_DIR, '--limit', '100', '--batch', '64', '--json');
    assert.equal(r.code, 0, r.stderr);
    const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(last.images, 100);
  });

  test('missing model file', () => {
    assertOneLineError(granq('eval', '--model', '/nonexistent/m.safetensors'), 1, /^granq: --model: no such file/);
  });

  test('truncated safetensors file', () => {
    const dir = tmpModelDir();
    const bytes = fs.readFileSync(SHARED_MODEL);
    fs.writeFileSync(path.join(dir, 'm.safetensors'), bytes.subarray(0, bytes.length - 1000));
    assertOneLineError(granq('eval', '--model', path.join(dir, 'm.safetensors'), '--data', CIFAR10_DIR), 1, /^granq: .*m\.safetensors/);
  });

  test('corrupted safetensors header', () => {
    const dir = tmpModelDir();
    const bytes = Buffer.from(fs.readFileSync(SHARED_MODEL));
    bytes[10] = 0x7b; // break the JSON header
    bytes[11] = 0x7b;
    fs.writeFileSync(path.join(dir, 'm.safetensors'), bytes);
    assertOneLineError(granq('eval', '--model', path.join(dir, 'm.safetensors'), '--data', CIFAR10_DIR), 1, /^granq: .*m\.safetensors/);
  });

  test('state dict with a wrong shape', () => {
    const dir = tmpModelDir();
    const sd = loadStateDictFile(SHARED_MODEL);
    sd.set('linear.weight', Tensor.zeros([10, 32]));
    writeSafetensors(path.join(dir, 'm.safetensors'), sd);
    assertOneLineError(granq('eval', '--model', path.join(dir, 'm.safetensors'), '--data', CIFAR10_DIR), 1,
      /^granq: .*shape mismatch: linear\.weight \(expected \[10,64\], got \[10,32\]\)/);
  });

  test('missing sidecar', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-cli-'));
    fs.copyFileSync(SHARED_MODEL, path.join(dir, 'm.safetensors'));
    assertOneLineError(granq('eval', '--model', path.join(dir, 'm.safetensors')), 1, /^granq: .*sidecar/);
  });

  test('data file whose size is not a multiple of the record size', () => {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-data-'));
    fs.writeFileSync(path.join(data, 'test_batch.bin'), Buffer.alloc(3073 * 2 + 5));
    assertOneLineError(granq('eval', '--model', SHARED_MODEL, '--data', data), 1, /^granq: .*test_batch\.bin.*3073/);
  });

  test('missing data directory', () => {
    assertOneLineError(granq('eval', '--model', SHARED_MODEL, '--data', '/nonexistent/data'), 1, /^granq: --data/);
  });

  test('--batch 0 and --batch abc are usage errors', () => {
    assertOneLineError(granq('eval', '--model', SHARED_MODEL, '--batch', '0'), 2, /--batch.*positive integer/);
    assertOneLineError(granq('eval', '--model', SHARED_MODEL, '--batch', 'abc'), 2, /--batch.*positive integer/);
  });

  test('unknown command is a usage error', () => {
    const r = granq('frobnicate');
    assert.equal(r.code, 2);
  });
});
