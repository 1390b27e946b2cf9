/** writeFileAtomic: whole files only, and two processes writing one file at once never break each other's write. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../src/io/atomic.js';
import { leftoverTemps } from '../kit/files.js';

const ATOMIC = new URL('../../src/io/atomic.js', import.meta.url).href;

/** A child process that writes `file` `n` times with writeFileAtomic, each time `tag` repeated (a few KiB). */
function writer(file: string, tag: string, n: number): Promise<{ code: number | null; stderr: string }> {
  const src = `const { writeFileAtomic } = await import(${JSON.stringify(ATOMIC)});
    const body = Buffer.from(${JSON.stringify(tag)}.repeat(4096));
    for (let i = 0; i < ${n}; i++) writeFileAtomic(${JSON.stringify(file)}, [body]);`;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', src], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

test('two processes writing one file at once: both finish, the file is one whole write, no temporary file left', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-atomic-'));
  const file = path.join(dir, 'sweep.json');
  // Each write is open, write, fsync, rename: 300 of them from each side overlap many times over.
  const [a, b] = await Promise.all([writer(file, 'a', 300), writer(file, 'b', 300)]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text === 'a'.repeat(4096) || text === 'b'.repeat(4096), 'the file is one writer\'s whole content');
  assert.deepEqual(leftoverTemps(file), []);
});

test('a write that fails leaves the old file and no temporary file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-atomic-'));
  const file = path.join(dir, 'x.json');
  writeFileAtomic(file, [Buffer.from('old')]);
  // A directory where the file's rename must land: the rename fails after the bytes were written.
  const blocked = path.join(dir, 'd');
  fs.mkdirSync(path.join(blocked, 'inside'), { recursive: true });
  assert.throws(() => writeFileAtomic(blocked, [Buffer.from('new')]), /could not write the file/);
  assert.deepEqual(leftoverTemps(blocked), []);
  assert.equal(fs.readFileSync(file, 'utf8'), 'old');
});
