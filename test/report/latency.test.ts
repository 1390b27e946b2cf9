/** Figure 3's data: bench quant rows -> six (method, part) series sorted by batch; log-axis domains on whole powers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GranqError } from '../../src/errors.js';
import type { BenchQuant } from '../../src/report/inputs.js';
import { latencyPoints, latencySpec, logDomain } from '../../src/report/latency.js';

const row = (batch: number, k: number) => ({ batch, layer_ms: k + 0.1, loop_ms: k + 0.2, granq_ms: k + 0.3, fwd_layer_ms: k + 0.4, fwd_loop_ms: k + 0.5, fwd_granq_ms: k + 0.6 });
const bench: BenchQuant = { bits: 3, rows: [row(64, 3), row(16, 1), row(32, 2)] };

test('latencyPoints: 6 series x rows, each value from its own JSON key, sorted by batch', () => {
  const p = latencyPoints(bench);
  assert.equal(p.length, 18);
  const series = new Map<string, number[]>();
  for (const x of p) series.set(`${x.method}|${x.part}`, [...(series.get(`${x.method}|${x.part}`) ?? []), x.batch]);
  assert.equal(series.size, 6);
  for (const b of series.values()) assert.deepEqual(b, [16, 32, 64]);
  const at = (method: string, part: string, batch: number) => p.find((x) => x.method === method && x.part === part && x.batch === batch)!.ms;
  assert.equal(at('layer', '19 activation quantizers', 16), 1.1);
  assert.equal(at('channel-loop', '19 activation quantizers', 32), 2.2);
  assert.equal(at('granq', '19 activation quantizers', 64), 3.3);
  assert.equal(at('layer', 'whole forward', 16), 1.4);
  assert.equal(at('channel-loop', 'whole forward', 32), 2.5);
  assert.equal(at('granq', 'whole forward', 64), 3.6);
});

test('logDomain: whole powers of the base enclosing the values; exact powers stay put', () => {
  assert.deepEqual(logDomain([16, 32, 512], 2), [16, 512]);
  assert.deepEqual(logDomain([17, 500], 2), [16, 512]);
  assert.deepEqual(logDomain([1.614, 850.408], 10), [1, 1000]);
  assert.deepEqual(logDomain([1000], 10), [1000, 1000]); // log10(1000) is 2.9999999999999996 in float64
  assert.deepEqual(logDomain([0.042, 0.5], 10), [0.01, 1]);
  assert.throws(() => logDomain([3, 0], 10), GranqError);
  assert.throws(() => logDomain([-1], 2), GranqError);
  assert.throws(() => logDomain([], 2), GranqError);
});

test('latencySpec: log scales on both axes with those domains, batch ticks at the measured sizes', () => {
  const s = latencySpec(bench) as unknown as { encoding: Record<string, { scale: { type?: string; domain?: number[] }; axis?: { values: number[] } }> };
  assert.equal(s.encoding['x']!.scale.type, 'log');
  assert.deepEqual(s.encoding['x']!.scale.domain, [16, 64]);
  assert.deepEqual(s.encoding['x']!.axis!.values, [16, 32, 64]);
  assert.equal(s.encoding['y']!.scale.type, 'log');
  assert.deepEqual(s.encoding['y']!.scale.domain, [1, 10]);
});
