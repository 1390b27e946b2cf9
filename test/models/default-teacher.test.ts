/** The default teacher: --model when given, else the repository's models/ file when present, else a one-line error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_TEACHER, resolveModelArg } from '../../src/models/default-teacher.js';
import { GranqError } from '../../src/errors.js';
import { assertOneLineError, granq, lastJson } from '../kit/cli.js';

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

test('granq eval without --model uses the default teacher, or says how to give one', () => {
  const hasDefault = fs.existsSync(path.resolve(DEFAULT_TEACHER));
  if (hasDefault) {
    const r = granq('eval', '--limit', '256', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(lastJson(r.stdout).images, 256);
  } else {
    assertOneLineError(granq('eval', '--limit', '16'), 1, /--model: none given, and this checkout has no default teacher/);
  }
});
