/** Figure 5's data: histograms (binning, edges, density), moments, channel extraction from NCHW. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GranqError } from '../../src/errors.js';
import { channelValues, histogram, moments, pixelHistograms } from '../../src/report/pixels.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';

test('histogram: equal bins over [lo, hi], hi in the last bin, outside values in the end bins, density integrates to 1', () => {
  const v = Float32Array.from([0, 0.49, 0.5, 1, 1.5, 2, -7, 9]);
  const h = histogram(v, 0, 2, 4); // bins [0,.5) [.5,1) [1,1.5) [1.5,2]
  const width = 0.5;
  assert.deepEqual([...h].map((d) => Math.round(d * v.length * width)), [3, 1, 1, 3]);
  assert.ok(Math.abs(h.reduce((s, d) => s + d * width, 0) - 1) < 1e-12);
  assert.throws(() => histogram(v, 1, 1, 4), GranqError);
  assert.throws(() => histogram(v, 0, 1, 0), GranqError);
});

test('moments against a direct float64 computation; a symmetric set has zero skew, a constant zero std and skew', () => {
  const v = Float32Array.from([1, 2, 3, 4, 10]);
  const mean = 4;
  const d = [...v].map((x) => x - mean);
  const m2 = d.reduce((s, x) => s + x * x, 0) / 5;
  const m3 = d.reduce((s, x) => s + x * x * x, 0) / 5;
  const m = moments(v);
  assert.equal(m.mean, mean);
  assert.ok(Math.abs(m.std - Math.sqrt(m2)) < 1e-12);
  assert.ok(Math.abs(m.skewness - m3 / m2 ** 1.5) < 1e-12);
  assert.ok(m.skewness > 1); // a long right tail
  assert.ok(Math.abs(moments(Float32Array.from([-2, -1, 0, 1, 2])).skewness) < 1e-12);
  assert.deepEqual(moments(Float32Array.from([3, 3, 3])), { mean: 3, std: 0, skewness: 0 });
});

test('channelValues gathers one channel of every image of an NCHW tensor', () => {
  const x = new Tensor(Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i), [2, 3, 1, 2]);
  assert.deepEqual([...channelValues(x, 1)], [2, 3, 8, 9]);
  assert.throws(() => channelValues(x, 3), GranqError);
});

test('pixelHistograms: 3 channels x 2 sources x bins, a common range, moments in the labels', () => {
  const rng = new Rng(1);
  const real = Tensor.randn([4, 3, 8, 8], rng);
  const gen = Tensor.randn([2, 3, 8, 8], rng);
  const { points, moments: m } = pixelHistograms(real, gen, 10);
  assert.equal(points.length, 3 * 2 * 10);
  for (const ch of ['R', 'G', 'B']) {
    const xs = points.filter((p) => p.channel === ch);
    assert.deepEqual(xs.filter((p) => p.source === 'generator').map((p) => p.x), xs.filter((p) => p.source === 'real test images').map((p) => p.x));
  }
  const realG = moments(channelValues(real, 1));
  assert.deepEqual(m['real test images']![1], realG);
  const label = points.find((p) => p.channel === 'G' && p.source === 'real test images')!.label;
  assert.equal(label, `real test images: mean ${realG.mean.toFixed(2)}, std ${realG.std.toFixed(2)}, skew ${realG.skewness.toFixed(2)}`);
});
