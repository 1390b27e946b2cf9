/**
 * `granq report` from the command line: bad inputs are one stderr line and exit 1 before any computation; a report
 * from a run folder alone draws what that run allows and says how to get the figures it lacks. (The full report,
 * opened in a real browser, is test/report/browser.test.ts.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fakeRunFiles, fakeRunWithGenerator } from '../kit/run-dir.js';
import { CIFAR10_DIR, noShared, SHARED, SHARED_MODEL } from '../kit/shared.js';
import { granq } from '../kit/cli.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'granq-report-cli-'));

test('bad inputs: one line on stderr, exit 1, no report written', () => {
  const dir = tmp();
  const run = path.join(dir, 'run');
  fakeRunFiles(run, '/nonexistent/teacher.safetensors');
  const badJson = path.join(dir, 'bench.json');
  fs.writeFileSync(badJson, '| batch |\n{"bits": 3, "rows": [');
  const out = path.join(dir, 'r.html');
  // Unfinished runs (log and checkpoint, no result.json): the teacher comes from the checkpoint's settings.
  const unfinished = path.join(dir, 'unfinished');
  fakeRunFiles(unfinished, '/unused');
  fs.rmSync(path.join(unfinished, 'result.json'));
  fakeRunWithGenerator(unfinished, 2, '/nonexistent/from-checkpoint.safetensors');
  const anonymous = path.join(dir, 'anonymous');
  fakeRunFiles(anonymous, '/unused');
  fs.rmSync(path.join(anonymous, 'result.json'));
  const cases: [string[], RegExp][] = [
    [[unfinished], /--model: the runs' teacher \/nonexistent\/from-checkpoint\.safetensors does not exist here/],
    [[anonymous], /--model: no run names its teacher \(no result\.json, no checkpoint\); pass --model FILE/],
    [[], /RUN_DIR: give at least one granq quantize output folder \(or --demo\)/],
    [[path.join(dir, 'missing')], /RUN_DIR: expected a granq quantize output folder, got .*missing \(not a directory\)/],
    [[dir], /RUN_DIR: .* holds no log\.jsonl/],
    [[run, '--bench', badJson], /bench\.json: not valid JSON/],
    [[run, '--bench', path.join(dir, 'none.json')], /--bench: no such file/],
    [[run, '--analyze', badJson], /bench\.json: not valid JSON/],
    [[run], /--model: the runs' teacher \/nonexistent\/teacher\.safetensors does not exist here; pass --model FILE/],
    [[run, '--published', path.join(dir, 'none.md')], /--published: no such file/],
    [[run, '--demo'], /--demo: makes its own inputs/],
  ];
  for (const [args, re] of cases) {
    const r = granq('report', ...args, '--out', out);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, re);
    assert.ok(!fs.existsSync(out));
  }
});

describe('granq report on one run folder', { skip: noShared }, () => {
  test('draws activation maps, pixels, curves and the accuracy table; latency and layer error say what they need', () => {
    const dir = tmp();
    const run = path.join(dir, 'w3a3-fake');
    fakeRunFiles(run, SHARED_MODEL);
    fakeRunWithGenerator(run, 2);
    const out = path.join(dir, 'report.html');
    const png = path.join(dir, 'png');
    const r = granq('report', run, '--out', out, '--png', png, '--data', CIFAR10_DIR, '--images', '2', '--channels', '0,5', '--pixel-images', '16');
    assert.equal(r.code, 0, r.stderr);
    const html = fs.readFileSync(out, 'utf8');
    const drawn = [...html.matchAll(/data-figure="([a-z-]+)" data-drawn="(true|false)"/g)].map((m) => `${m[1]}:${m[2]}`);
    assert.deepEqual(drawn, ['activation-maps:true', 'latency:false', 'layer-error:false', 'pixels:true', 'curves:true']);
    assert.match(html, /Not drawn: pass --bench FILE/);
    assert.match(html, /Not drawn: pass --analyze FILE/);
    assert.match(html, /image 1 layer 0\.\d{3} \/ granq 0\.\d{3}/); // the caption
    assert.equal([...html.matchAll(/>error 0\.\d{3}</g)].length, 4); // column headers: 2 images x (layer, granq)
    // Our run (FP 90.00, final 87.00: -3.00) and the published table of the shared report (AdaDFQ W3A3 84.89, -9.00).
    assert.match(html, /<td>90\.00<\/td><td>85\.00 \(−5\.00\)<\/td><td>87\.00 \(−3\.00\)<\/td>/);
    if (fs.existsSync(path.join(SHARED, 'research', 'zsq-report.md'))) assert.match(html, /<td>AdaDFQ<\/td><td>84\.89 \(−9\.00\)/);
    assert.deepEqual(fs.readdirSync(png).sort(), ['activation-maps.png', 'curves.png', 'pixels.png']);
    for (const f of fs.readdirSync(png)) assert.deepEqual([...fs.readFileSync(path.join(png, f)).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], f);
  });
});
