/** Figure 4's data: analyze error files -> (method, inputs) series with their means; mismatched files refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GranqError } from '../../src/errors.js';
import type { ErrorAnalysis } from '../../src/report/inputs.js';
import { errorPoints } from '../../src/report/layer-error.js';

const names = ['relu.1', 'layer1.0.relu1.1', 'layer1.0.relu2.1'];
const analysis = (inputs: 'real' | 'synthetic', layer: number[], granq: number[], bits = 3): ErrorAnalysis =>
  ({ bits, inputs, images: 8, layers: names.map((name, index) => ({ index, name, layer: layer[index]!, granq: granq[index]! })) });

test('errorPoints: one point per (file, quantizer, method), values as given, series labelled with their mean', () => {
  const p = errorPoints([analysis('real', [0.3, 0.4, 0.5], [0.1, 0.1, 0.13]), analysis('synthetic', [0.2, 0.2, 0.2], [0.05, 0.1, 0.15])]);
  assert.equal(p.length, 12);
  const series = [...new Set(p.map((x) => x.series))];
  assert.deepEqual(series, [
    'layer, real inputs (mean 0.4000)', 'granq, real inputs (mean 0.1100)',
    'layer, synthetic inputs (mean 0.2000)', 'granq, synthetic inputs (mean 0.1000)',
  ]);
  const one = p.find((x) => x.method === 'granq' && x.inputs === 'synthetic' && x.index === 2)!;
  assert.equal(one.error, 0.15);
  assert.equal(one.name, 'layer1.0.relu2.1');
});

test('errorPoints refuses files that do not belong together', () => {
  const real = analysis('real', [0.3, 0.4, 0.5], [0.1, 0.1, 0.1]);
  assert.throws(() => errorPoints([]), GranqError);
  assert.throws(() => errorPoints([real, analysis('synthetic', [0, 0, 0], [0, 0, 0], 4)]), /different bit widths/);
  assert.throws(() => errorPoints([real, real]), /two files of real inputs/);
  const other = { ...analysis('synthetic', [0, 0, 0], [0, 0, 0]), layers: real.layers.map((l) => ({ ...l, name: `x${l.name}` })) };
  assert.throws(() => errorPoints([real, other]), /different quantizers/);
});
