/** The default teacher: --model when given, else the repository's models/ file when present, else a one-line error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_TEACHER, locateRecordedTeacher, resolveModelArg } from '../../src/models/default-teacher.js';
import { fileSha256 } from '../../src/io/hash.js';
import { GranqError } from '../../src/errors.js';
import { granq, lastJson } from '../kit/cli.js';
import { resolveDataDir } from '../../src/data/data-dir.js';
import { readSidecarFor } from '../../src/io/sidecar.js';

test('resolveModelArg: the given --model, else the default teacher of the checkout, else an error naming both ways out', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-teacher-'));
  try {
    assert.equal(resolveModelArg('x.safetensors', root), 'x.safetensors');
    assert.throws(() => resolveModelArg(undefined, root),
      (e: unknown) => e instanceof GranqError && e.message.includes(DEFAULT_TEACHER) && e.message.includes('pass --model FILE'));
    const file = path.join(root, DEFAULT_TEACHER);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '');
    assert.equal(resolveModelArg(undefined, root), file);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('locateRecordedTeacher: the recorded path, else the same name and bytes in the checkout\'s models/, never other bytes', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-teacher-'));
  try {
    const gone = path.join(root, 'gone', 'models', 'teacher-x.safetensors');  // a run's path on a machine since replaced
    const here = path.join(root, 'models', 'teacher-x.safetensors');
    fs.mkdirSync(path.dirname(here), { recursive: true });
    fs.writeFileSync(here, 'the teacher\'s bytes');
    const sha256 = fileSha256(here);
    assert.equal(sha256, createHash('sha256').update("the teacher's bytes").digest('hex'));
    assert.equal(locateRecordedTeacher({ path: here, sha256: 'f'.repeat(64) }, root), here, 'an existing recorded path is taken as it is');
    assert.equal(locateRecordedTeacher({ path: gone, sha256 }, root), here);
    assert.equal(locateRecordedTeacher({ path: gone, sha256: 'f'.repeat(64) }, root), null, 'same name, other bytes');
    assert.equal(locateRecordedTeacher({ path: gone }, root), null, 'no sha256 recorded: nothing to check a namesake against');
    assert.equal(locateRecordedTeacher({ path: path.join(root, 'gone', 'other.safetensors'), sha256 }, root), null, 'other name');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** The CIFAR-10 data granq finds by itself (../shared's, or `granq data fetch`'s on a fresh clone), or why there is none. */
const noData: false | string = (() => {
  try {
    resolveDataDir();
    return false;
  } catch (e) {
    return (e as Error).message;
  }
})();

test('the committed default teacher: granq eval without --model or --data gives its sidecar\'s measured top-1, at least 93.0%', { skip: noData }, () => {
  const sidecar = readSidecarFor(path.resolve(DEFAULT_TEACHER));
  assert.equal(sidecar.architecture, 'resnet20-b');
  assert.ok(sidecar.measuredTop1 !== undefined && sidecar.measuredTop1 >= 0.93, `measured_top1 ${sidecar.measuredTop1}`);
  const r = granq('eval', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = lastJson(r.stdout);
  assert.equal(out.images, 10_000);
  assert.equal(out.top1, sidecar.measuredTop1);
});
