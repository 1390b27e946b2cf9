/** A run folder's generator: loaded from its checkpoint bit for bit, and its held-out images drawn as the run draws them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadRunGenerator, runSyntheticImages } from '../../src/zsq/checkpoint.js';
import { heldOutImages, HELD_OUT_SEED_OFFSET } from '../../src/zsq/measure.js';
import { GranqError } from '../../src/errors.js';
import { fakeRunWithGenerator } from '../kit/run-dir.js';

test('loadRunGenerator: the saved generator bit for bit and the run seed; runSyntheticImages = its held-out stream', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-ck-'));
  const gen = fakeRunWithGenerator(dir, 5);
  const { generator, seed } = loadRunGenerator(dir, 'RUN_DIR');
  assert.equal(seed, 5);
  assert.equal(generator.numClasses, 10);
  for (const [k, t] of gen.stateDict()) assert.deepEqual(generator.stateDict().get(k)!.data, t.data, k);
  const x = runSyntheticImages(dir, 5, 2, 'RUN_DIR');
  assert.deepEqual(x.shape, [5, 3, 32, 32]);
  const ref = heldOutImages(gen, 5, 2, 5 + HELD_OUT_SEED_OFFSET);
  assert.deepEqual(x.data, Float32Array.from(ref.flatMap((t) => [...t.data])));
});

test('loadRunGenerator: a folder without a checkpoint is a one-line error naming the flag', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-ck-'));
  assert.throws(() => loadRunGenerator(dir, '--synthetic'), (e: unknown) => e instanceof GranqError && /^--synthetic: no checkpoint at /.test(e.message));
});
