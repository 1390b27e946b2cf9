/** `granq --version`: the package version and the build's commit, from the one record of the build (build-info). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { buildInfo, shortCommit } from '../../src/run/build-info.js';
import { granq } from '../kit/cli.js';

test('granq --version prints package.json version and the commit of the build', () => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  const built = buildInfo();
  assert.equal(built.version, pkg.version);
  const r = granq('--version');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), built.commit ? `${pkg.version} (${shortCommit(built)})` : pkg.version);
});
