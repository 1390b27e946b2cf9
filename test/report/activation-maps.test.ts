/** Figure 1's data: per-image relative errors and the heat-map cells (normalised by the FP map's maximum). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GranqError } from '../../src/errors.js';
import { imageErrors, mapCells } from '../../src/report/activation-maps.js';
import { Tensor } from '../../src/tensor/tensor.js';

// 2 images, 2 channels, 2x2 maps.
const fp = new Tensor(Float32Array.from([0, 1, 2, 4, /* ch1 */ 0, 0, 0, 0, /* image 1 */ 1, 1, 1, 1, /* ch1 */ 3, 0, 0, 6]), [2, 2, 2, 2]);
const q = new Tensor(Float32Array.from([0, 1, 2, 4, 0, 0, 0, 0, 1, 1, 1, 1, 3, 0, 0, 3]), [2, 2, 2, 2]);

test('imageErrors: ||x - q|| / ||x|| over each image alone', () => {
  const e = imageErrors(fp, q, fp, ['cat', 'dog']);
  assert.deepEqual(e.map((x) => [x.image, x.label, x.granq]), [[0, 'cat', 0], [1, 'dog', 0]]);
  assert.equal(e[0]!.layer, 0);
  assert.ok(Math.abs(e[1]!.layer - 3 / Math.sqrt(4 + 9 + 36)) < 1e-7);
});

test('mapCells: h*w cells per (image, variant, channel), divided by the FP maximum of that (image, channel)', () => {
  const cells = mapCells(fp, q, fp, [0, 1], (i, v) => `${i}/${v}`);
  assert.equal(cells.length, 2 * 3 * 2 * 4);
  const get = (row: string, channel: number, x: number, y: number) => cells.find((c) => c.row === row && c.channel === `channel ${channel}` && c.x === x && c.y === y)!.v;
  assert.equal(get('0/0', 0, 1, 1), 1); // 4 / max 4
  assert.equal(get('0/0', 0, 1, 0), 0.25);
  assert.equal(get('0/1', 1, 0, 0), 0); // an all-zero FP channel stays 0
  assert.equal(get('1/1', 1, 1, 1), 0.5); // layer's 3 over the FP maximum 6
  assert.equal(get('1/2', 1, 1, 1), 1);
  assert.equal(mapCells(fp, q, fp, [1], () => 'r').length, 2 * 3 * 4);
  assert.throws(() => mapCells(fp, q, fp, [2], () => 'r'), GranqError);
});
