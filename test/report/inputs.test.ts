/** The report's inputs: the last JSON line of a command's stdout, run folders, and one clear error per bad file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GranqError } from '../../src/errors.js';
import { lastJsonLine, parseBenchQuant, parseErrorAnalysis, parseLog, readRunFolder, readRunFolders } from '../../src/report/inputs.js';

test('lastJsonLine: a saved stdout (table, then the JSON) or the JSON alone', () => {
  assert.deepEqual(lastJsonLine('| a | b |\n|---|---|\n{"bits":3}\n\n', 'f'), { bits: 3 });
  assert.deepEqual(lastJsonLine('{"bits":4}', 'f'), { bits: 4 });
  assert.throws(() => lastJsonLine('', 'f'), /f: empty file/);
  assert.throws(() => lastJsonLine('{"bits":', 'f'), /f: not valid JSON/);
  assert.throws(() => lastJsonLine('[1,2]', 'f'), /expected a JSON object/);
});

test('parseBenchQuant / parseErrorAnalysis check every field the figures use', () => {
  const row = { batch: 16, layer_ms: 1, loop_ms: 2, granq_ms: 1, fwd_layer_ms: 9, fwd_loop_ms: 9, fwd_granq_ms: 8 };
  assert.equal(parseBenchQuant({ bits: 3, rows: [row] }, 'f').rows.length, 1);
  assert.throws(() => parseBenchQuant({ bits: 3, rows: [] }, 'f'), GranqError);
  assert.throws(() => parseBenchQuant({ bits: 3, rows: [{ ...row, granq_ms: 0 }] }, 'f'), /rows\[0\]\.granq_ms: expected a positive number, got 0/);
  const layers = [{ index: 0, name: 'relu.1', shape: [8, 16, 32, 32], layer: 0.3, granq: 0.1 }];
  assert.equal(parseErrorAnalysis({ bits: 3, layers }, 'f').inputs, 'real'); // files from before --synthetic
  assert.equal(parseErrorAnalysis({ bits: 3, inputs: 'synthetic', images: 8, layers }, 'f').images, 8);
  assert.throws(() => parseErrorAnalysis({ bits: 3, inputs: 'fake', layers }, 'f'), /inputs: expected "real" or "synthetic"/);
  assert.throws(() => parseErrorAnalysis({ bits: 3, layers: [{ ...layers[0], layer: 'x' }] }, 'f'), /layers\[0\]/);
});

test('readRunFolder: log.jsonl required, result.json optional, bad lines named by file and line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-report-in-'));
  assert.throws(() => readRunFolder(path.join(dir, 'nope')), /RUN_DIR: .*\(not a directory\)/);
  assert.throws(() => readRunFolder(dir), /holds no log\.jsonl/);
  fs.writeFileSync(path.join(dir, 'log.jsonl'), '{"epoch":1,"loss":{"generator":1},"wall_s":1}\n{"epoch":2,"loss":{"generator":1},"test_top1":0.5,"wall_s":1}\n');
  const r = readRunFolder(dir);
  assert.equal(r.log.length, 2);
  assert.equal(r.result, null);
  assert.equal(r.hasCheckpoint, false);
  fs.writeFileSync(path.join(dir, 'result.json'), '{"policy": {"wbits": 3}');
  assert.throws(() => readRunFolder(dir), /result\.json: not valid JSON/);
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({ policy: { wbits: 3, abits: 3, act: 'granq', weight: 'slice' }, fp_top1: 91.7, ptq_top1: null, final_top1: null }));
  assert.throws(() => readRunFolder(dir), /fp_top1: expected a fraction/);
  assert.throws(() => parseLog('{"epoch":1,"loss":{}}\nnot json\n', 'log.jsonl'), /log\.jsonl:2: not valid JSON/);
  assert.throws(() => parseLog('{"epoch":"1","loss":{}}\n', 'log.jsonl'), /log\.jsonl:1: expected an epoch record/);
});

test('readRunFolders: two runs with the same folder name are labelled by their paths', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-report-in-'));
  const dirs = ['a/run', 'b/run', 'c/other'].map((d) => path.join(root, d));
  for (const d of dirs) {
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'log.jsonl'), '{"epoch":1,"loss":{},"wall_s":1}\n');
  }
  assert.deepEqual(readRunFolders(dirs).map((r) => r.name), [dirs[0], dirs[1], 'other']);
});
