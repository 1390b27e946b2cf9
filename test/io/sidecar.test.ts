import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { GranqError } from '../../src/errors.js';
import {
  normalizeArchitecture, parseSidecar, readSidecar, readSidecarFor, sidecarPathFor, writeSidecar, type ModelSidecar,
} from '../../src/io/sidecar.js';
import { noShared, SHARED } from '../kit/shared.js';
import { leftoverTemps } from '../kit/files.js';

const WEIGHTS = path.join(SHARED, 'models', 'resnet20_cifar10_akamaster.safetensors');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-sc-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const GOOD = {
  model: 'm',
  architecture: 'resnet20-optionB',
  num_classes: 100,
  input: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], layout: 'NCHW' },
  measured_top1: 0.7,
  extra: { kept: true },
};

function invalid(json: unknown, pattern: RegExp): void {
  assert.throws(() => parseSidecar(json, 'm.json'), (e: unknown) => {
    assert.ok(e instanceof GranqError, String(e));
    assert.match(e.message, /^m\.json: /);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('sidecar', () => {
  test('sidecarPathFor replaces the last extension', () => {
    assert.equal(sidecarPathFor('/a/b/resnet20_cifar10_akamaster.safetensors'), '/a/b/resnet20_cifar10_akamaster.json');
    assert.equal(sidecarPathFor('w.v1.safetensors'), 'w.v1.json');
    assert.equal(sidecarPathFor('/a/noext'), '/a/noext.json');
  });

  test('architecture aliases map to registry names', () => {
    assert.equal(normalizeArchitecture('resnet20-optionA'), 'resnet20-a');
    assert.equal(normalizeArchitecture('resnet20-a'), 'resnet20-a');
    assert.equal(normalizeArchitecture('resnet20-optionB'), 'resnet20-b');
    assert.equal(normalizeArchitecture('resnet20-b'), 'resnet20-b');
    assert.throws(() => normalizeArchitecture('vgg16'), /architecture: expected resnet<6n\+2>-a\|b\|optionA\|optionB .* got "vgg16"/);
  });

  test('parses a valid object', () => {
    const sc = parseSidecar(GOOD, 'm.json');
    assert.equal(sc.model, 'm');
    assert.equal(sc.architecture, 'resnet20-b');
    assert.equal(sc.numClasses, 100);
    assert.deepEqual(sc.mean, [0.5, 0.5, 0.5]);
    assert.deepEqual(sc.std, [0.25, 0.25, 0.25]);
    assert.equal(sc.measuredTop1, 0.7);
    const { measured_top1: _, model: __, ...rest } = GOOD;
    const bare = parseSidecar(rest, '/x/fallback.json');
    assert.equal(bare.model, 'fallback', 'model defaults to the file name');
    assert.equal(bare.measuredTop1, undefined);
  });

  test('invalid sidecars name the field', () => {
    invalid([], /expected a JSON object/);
    invalid({ ...GOOD, architecture: undefined }, /architecture: expected resnet<6n\+2>-a/);
    invalid({ ...GOOD, architecture: 'resnet56' }, /got "resnet56"/);
    invalid({ ...GOOD, num_classes: 0 }, /num_classes: expected a positive integer, got 0/);
    invalid({ ...GOOD, num_classes: '10' }, /num_classes/);
    invalid({ ...GOOD, input: undefined }, /input: expected an object with mean and std/);
    invalid({ ...GOOD, input: { mean: [0.5, 0.5], std: [1, 1, 1] } }, /input\.mean: expected 3 finite numbers/);
    invalid({ ...GOOD, input: { mean: [0.5, 0.5, 0.5], std: [1, 0, 1] } }, /input\.std: expected 3 positive numbers/);
    invalid({ ...GOOD, input: { mean: [0.5, 'a', 0.5], std: [1, 1, 1] } }, /input\.mean/);
    invalid({ ...GOOD, measured_top1: 91.73 }, /measured_top1: expected a fraction in \[0, 1\], got 91\.73/);
    invalid({ ...GOOD, model: 3 }, /model: expected a non-empty string/);
  });

  test('a missing sidecar says where it should be and what it must give', () => {
    const weights = path.join(tmp, 'lonely.safetensors');
    assert.throws(() => readSidecarFor(weights), (e: unknown) => e instanceof GranqError &&
      e.message === `no sidecar ${path.join(tmp, 'lonely.json')} next to ${weights}; it must give architecture, num_classes and input mean/std`);
  });

  test('invalid JSON in a file names the file', () => {
    const p = path.join(tmp, 'broken.json');
    fs.writeFileSync(p, '{"model": ');
    assert.throws(() => readSidecar(p), (e: unknown) => e instanceof GranqError && e.message.startsWith(`${p}: expected JSON`));
  });

  test('write → read round trip keeps unknown fields and the file\'s architecture spelling', () => {
    const p = path.join(tmp, 'm.json');
    fs.writeFileSync(p, JSON.stringify(GOOD));
    const sc = readSidecar(p);
    writeSidecar(p, { ...sc, measuredTop1: 0.71 });
    assert.deepEqual(leftoverTemps(p), []);
    const json = JSON.parse(fs.readFileSync(p, 'utf8')) as typeof GOOD;
    assert.equal(json.architecture, 'resnet20-optionB');
    assert.equal(json.measured_top1, 0.71);
    assert.deepEqual(json.extra, { kept: true });
    assert.equal(json.input.layout, 'NCHW');
    const changed: ModelSidecar = { ...readSidecar(p), architecture: 'resnet20-a', measuredTop1: undefined, std: [0.2, 0.3, 0.4] };
    writeSidecar(p, changed);
    const back = readSidecar(p);
    assert.equal(back.architecture, 'resnet20-a');
    assert.equal((back.raw as { architecture: string }).architecture, 'resnet20-a');
    assert.deepEqual(back.std, [0.2, 0.3, 0.4]);
    assert.equal(back.measuredTop1, undefined);
  });

  test('writeSidecar refuses an invalid sidecar and leaves the old file', () => {
    const p = path.join(tmp, 'keep.json');
    fs.writeFileSync(p, JSON.stringify(GOOD));
    const sc = readSidecar(p);
    assert.throws(() => writeSidecar(p, { ...sc, numClasses: -1 }), GranqError);
    assert.equal(readSidecar(p).numClasses, 100);
  });
});

describe('shared model sidecar', { skip: noShared }, () => {
  test('resnet20_cifar10_akamaster.json', () => {
    assert.equal(sidecarPathFor(WEIGHTS), path.join(SHARED, 'models', 'resnet20_cifar10_akamaster.json'));
    const sc = readSidecarFor(WEIGHTS);
    assert.equal(sc.model, 'resnet20_cifar10_akamaster');
    assert.equal(sc.architecture, 'resnet20-a');
    assert.equal(sc.numClasses, 10);
    assert.deepEqual(sc.mean, [0.485, 0.456, 0.406]);
    assert.deepEqual(sc.std, [0.229, 0.224, 0.225]);
    assert.equal(sc.measuredTop1, 0.9173);
    assert.equal(sc.raw['test_set'], 'test_batch.bin');
  });
});
