/**
 * Every grid in grids/ is the command behind a table in README or docs/results.md, so each must still parse and pass
 * `granq quantize`'s checks with today's flags (a renamed flag or preset would otherwise surface only when someone
 * reruns a table). Grids whose model lives in ../shared are checked where ../shared is.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { quantizeSchema } from '../../src/cli/sweep.js';
import { readGrid } from '../../src/sweep/grid.js';
import { noShared } from '../kit/shared.js';

const DIR = 'grids';
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

test('grids/ holds the repository grids', () => {
  assert.ok(files.length >= 10, `expected the repository's grids in ${DIR}/, found ${files.length}`);
});

for (const f of files) {
  const file = path.join(DIR, f);
  const needsShared = fs.readFileSync(file, 'utf8').includes('../shared/');
  test(`${file} parses and every cell passes quantize's checks`, { skip: needsShared && noShared }, () => {
    const grid = readGrid(file, quantizeSchema());
    assert.equal(grid.name, f.replace(/\.json$/, ''), 'a grid is named after its file (results/<name>/ holds its logs)');
    assert.ok(grid.cells.length > 0);
    for (const c of grid.cells) assert.match(c.id, /^[a-z0-9][a-z0-9.-]*-[0-9a-f]{8}$/, `cell id ${c.id}`);
  });
}
