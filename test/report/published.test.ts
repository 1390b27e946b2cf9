/** The published numbers: section C of the research report, parsed cell by cell with their sources. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GranqError } from '../../src/errors.js';
import { findTable, parseCell, parsePublished } from '../../src/report/published.js';
import { noShared, SHARED } from '../kit/shared.js';

const MD = `# Report
## B. Other
| Method | W3A3 |
|---|---|
| X | 1.00 [A] |
## C. Benchmark numbers
- [A] = table one, read visually.
- [Q] = repo q README. [G] = repo g README.
### C.1 ResNet-20, CIFAR-10 (FP 93.89)
| Method | W3A3 | W4A4 |
|---|---|---|
| GDFQ | 75.11† [A,S] | 90.11 [A] |
| Qimera | – | 91.26 [A,S,Q] |
| GranQ | ? | **> 93.89 (claim)** [paper] |
### C.2 ResNet-20, CIFAR-100 (FP 70.33)
| Method | W3A3 | W4A4 |
|---|---|---|
| GDFQ | 47.61† [A,S] | 63.75 [A,S]; README 63.58±0.23 [G] |
### C.3 ImageNet
| Model (FP) | Method | W4A4 |
|---|---|---|
| R18 (71.47) | GDFQ | 60.60 |
## D. Next
`;

test('parseCell: the value and its sources; dashes, question marks and claims have no value', () => {
  assert.deepEqual(parseCell(' 75.11† [A,S] '), { value: 75.11, sources: ['A', 'S'], text: '75.11† [A,S]' });
  assert.deepEqual(parseCell('63.75 [A,S]; README 63.58±0.23 [G]'), { value: 63.75, sources: ['A', 'S'], text: '63.75 [A,S]; README 63.58±0.23 [G]' });
  assert.equal(parseCell('–').value, null);
  assert.equal(parseCell('?').value, null);
  assert.equal(parseCell('**> 93.89 (claim)** [paper]').value, null);
});

test('parsePublished: section C only, tables with their teacher FP, every source abbreviation', () => {
  const p = parsePublished(MD, 'md');
  assert.deepEqual(p.tables.map((t) => [t.title, t.fp, t.bits, t.rows.length]), [
    ['C.1 ResNet-20, CIFAR-10 (FP 93.89)', 93.89, ['W3A3', 'W4A4'], 3],
    ['C.2 ResNet-20, CIFAR-100 (FP 70.33)', 70.33, ['W3A3', 'W4A4'], 1],
  ]);
  assert.deepEqual(p.sources, { A: 'table one, read visually.', Q: 'repo q README.', G: 'repo g README.' });
  assert.equal(p.tables[0]!.rows[1]!.cells['W4A4']!.value, 91.26);
  assert.equal(findTable(p, 'ResNet-20', 'CIFAR-10')!.fp, 93.89);
  assert.equal(findTable(p, 'ResNet-20', 'CIFAR-100')!.fp, 70.33);
  assert.equal(findTable(p, 'ResNet-56', 'CIFAR-10'), null);
  assert.throws(() => parsePublished('# nothing\n## B. x\n', 'md'), GranqError);
});

describe('the shared research report', { skip: noShared }, () => {
  test('C.1 holds the AdaDFQ and SynQ rows the report quotes', () => {
    const p = parsePublished(fs.readFileSync(path.join(SHARED, 'research', 'zsq-report.md'), 'utf8'), 'zsq-report.md');
    const t = findTable(p, 'ResNet-20', 'CIFAR-10')!;
    assert.equal(t.fp, 93.89);
    const row = (m: string) => t.rows.find((r) => r.method === m)!.cells;
    assert.deepEqual([row('AdaDFQ')['W3A3']!.value, row('AdaDFQ')['W4A4']!.value, row('AdaDFQ')['W5A5']!.value], [84.89, 92.31, 93.81]);
    assert.deepEqual(row('SynQ')['W3A3']!.sources, ['S']);
    for (const s of ['A', 'S', 'Q', 'G', 'I']) assert.ok(p.sources[s], `source ${s}`);
  });
});
