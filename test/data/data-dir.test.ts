import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { packageRoot, resolveDataDir } from '../../src/data/data-dir.js';
import { GranqError } from '../../src/errors.js';

// Layout: <tmp>/proj/work (a cwd with ../shared/data), <tmp>/pkg/repo (a package root with ../shared/data),
// <tmp>/bare/work (a cwd with nothing), <tmp>/explicit (a --data or GRANQ_DATA folder).
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-datadir-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const p = (...parts: string[]) => path.join(tmp, ...parts);
for (const d of ['proj/work', 'proj/shared/data', 'pkg/repo', 'pkg/shared/data', 'bare/work', 'bare/repo', 'explicit']) {
  fs.mkdirSync(p(d), { recursive: true });
}
fs.writeFileSync(p('not-a-dir'), 'x');

describe('resolveDataDir', () => {
  test('--data wins over GRANQ_DATA, relative to the cwd', () => {
    const r = resolveDataDir({ data: '../../explicit', env: { GRANQ_DATA: p('pkg/shared/data') }, cwd: p('proj/work') });
    assert.deepEqual(r, { dir: p('explicit'), source: 'flag' });
  });

  test('GRANQ_DATA wins over the ../shared/data defaults', () => {
    const r = resolveDataDir({ env: { GRANQ_DATA: p('explicit') }, cwd: p('proj/work'), packageRoot: p('pkg/repo') });
    assert.deepEqual(r, { dir: p('explicit'), source: 'env' });
  });

  test('an empty GRANQ_DATA counts as unset', () => {
    const r = resolveDataDir({ env: { GRANQ_DATA: '' }, cwd: p('proj/work'), packageRoot: p('pkg/repo') });
    assert.equal(r.source, 'cwd');
  });

  test('prefer: a later default place that satisfies it wins over an earlier one that merely exists; else the first', () => {
    const pkgData = p('pkg/shared/data');
    assert.deepEqual(resolveDataDir({ env: {}, cwd: p('proj/work'), packageRoot: p('pkg/repo'), prefer: (d) => d === pkgData }),
      { dir: pkgData, source: 'package' });
    assert.deepEqual(resolveDataDir({ env: {}, cwd: p('proj/work'), packageRoot: p('pkg/repo'), prefer: () => false }),
      { dir: p('proj/shared/data'), source: 'cwd' });
    assert.equal(resolveDataDir({ data: '../../explicit', env: {}, cwd: p('proj/work'), prefer: () => false }).source, 'flag');
  });

  test('../shared/data next to the cwd, then next to the package root', () => {
    assert.deepEqual(resolveDataDir({ env: {}, cwd: p('proj/work'), packageRoot: p('pkg/repo') }),
      { dir: p('proj/shared/data'), source: 'cwd' });
    assert.deepEqual(resolveDataDir({ env: {}, cwd: p('bare/work'), packageRoot: p('pkg/repo') }),
      { dir: p('pkg/shared/data'), source: 'package' });
  });

  test('an explicit folder that does not exist is an error, not a fallback', () => {
    assert.throws(() => resolveDataDir({ data: p('missing'), env: {}, cwd: p('proj/work') }),
      (e: unknown) => e instanceof GranqError && e.message.startsWith('--data: expected an existing directory') && e.message.includes(p('missing')));
    assert.throws(() => resolveDataDir({ env: { GRANQ_DATA: p('not-a-dir') }, cwd: p('proj/work') }),
      (e: unknown) => e instanceof GranqError && e.message.startsWith('GRANQ_DATA: expected an existing directory'));
  });

  test('nothing found: says what to pass and lists what was checked', () => {
    assert.throws(() => resolveDataDir({ env: {}, cwd: p('bare/work'), packageRoot: p('bare/repo') }), (e: unknown) => {
      assert.ok(e instanceof GranqError);
      assert.match(e.message, /^no CIFAR data found: run `granq data fetch cifar10`, or pass --data DIR or set GRANQ_DATA to a folder holding cifar-10-batches-bin\/test_batch\.bin/);
      assert.ok(e.message.includes(`(checked: ${p('bare/shared/data')}, ${p('bare/repo/data')})`), e.message);
      return true;
    });
    assert.throws(() => resolveDataDir({ env: {}, cwd: p('bare/work'), packageRoot: p('explicit') }),
      (e: unknown) => e instanceof GranqError && e.message.includes(`${p('bare/shared/data')}, ${path.join(tmp, 'shared', 'data')}`));
  });

  test("the package's own data/ (granq data fetch's default) comes last", () => {
    fs.mkdirSync(p('bare/repo/data'));
    try {
      assert.deepEqual(resolveDataDir({ env: {}, cwd: p('bare/work'), packageRoot: p('bare/repo') }),
        { dir: p('bare/repo/data'), source: 'fetched' });
      assert.equal(resolveDataDir({ env: {}, cwd: p('proj/work'), packageRoot: p('bare/repo') }).source, 'cwd');
    } finally {
      fs.rmSync(p('bare/repo/data'), { recursive: true });
    }
  });

  test('packageRoot() is the repo root (holds package.json)', () => {
    const root = packageRoot();
    assert.ok(fs.existsSync(path.join(root, 'package.json')), root);
    assert.equal(root, path.resolve('.'), 'tests run from the repo root');
  });
});
