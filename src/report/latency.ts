/**
 * Figure 3 of the paper, latency vs batch size, from `granq bench quant --json`: the 19 activation quantizers alone
 * and the whole quantized forward, for layer, channel-loop and granq; both axes logarithmic.
 */
import { GranqError } from '../errors.js';
import { DASH_LEGEND, METHOD_COLORS, type Spec } from './charts.js';
import type { BenchQuant } from './inputs.js';

export const LATENCY_METHODS = ['layer', 'channel-loop', 'granq'] as const;
export const LATENCY_PARTS = ['19 activation quantizers', 'whole forward'] as const;
export interface LatencyPoint { batch: number; method: (typeof LATENCY_METHODS)[number]; part: (typeof LATENCY_PARTS)[number]; ms: number }

// bench quant's JSON keys per (method, part).
const KEYS: Record<(typeof LATENCY_METHODS)[number], [keyof BenchQuant['rows'][number], keyof BenchQuant['rows'][number]]> = {
  layer: ['layer_ms', 'fwd_layer_ms'], 'channel-loop': ['loop_ms', 'fwd_loop_ms'], granq: ['granq_ms', 'fwd_granq_ms'],
};

/** One point per (batch, method, part): 6 series of rows.length points, sorted by batch. */
export function latencyPoints(b: BenchQuant): LatencyPoint[] {
  const rows = [...b.rows].sort((x, y) => x.batch - y.batch);
  return LATENCY_PARTS.flatMap((part, p) => LATENCY_METHODS.flatMap((method) => rows.map((r) => ({ batch: r.batch, method, part, ms: r[KEYS[method][p]] }))));
}

/** The whole powers of `base` that enclose [min, max] of positive values: a log axis that starts and ends on a tick. */
export function logDomain(values: readonly number[], base: number): [number, number] {
  if (!values.length) throw new GranqError('log axis: no values');
  const bad = values.find((v) => !(v > 0 && Number.isFinite(v)));
  if (bad !== undefined) throw new GranqError(`log axis: expected positive finite values, got ${bad}`);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  // Round the exponents before floor/ceil so 1000 is 10^3 exactly, not 10^2.9999999999999996.
  const e = (v: number) => Math.round((Math.log(v) / Math.log(base)) * 1e9) / 1e9;
  return [base ** Math.floor(e(lo)), base ** Math.ceil(e(hi))];
}

export function latencySpec(b: BenchQuant): Spec {
  const points = latencyPoints(b);
  const batches = [...new Set(points.map((p) => p.batch))];
  return {
    title: { text: `Latency vs batch size (ResNet-20, ${b.bits}-bit activations)`, subtitle: 'median ms per forward pass; both axes log scale' },
    width: 560, height: 340,
    data: { values: points },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'batch', type: 'quantitative', title: 'batch size (log scale)', scale: { type: 'log', base: 2, domain: logDomain(batches, 2) }, axis: { values: batches } },
      y: { field: 'ms', type: 'quantitative', title: 'time per forward pass, ms (log scale)', scale: { type: 'log', domain: logDomain(points.map((p) => p.ms), 10) } },
      color: { field: 'method', type: 'nominal', title: 'quantizer', scale: { domain: [...LATENCY_METHODS], range: LATENCY_METHODS.map((m) => METHOD_COLORS[m]!) } },
      strokeDash: { field: 'part', type: 'nominal', title: 'what is timed', scale: { domain: [...LATENCY_PARTS], range: [[2, 2], [1, 0]] }, legend: DASH_LEGEND },
      tooltip: [{ field: 'method' }, { field: 'part' }, { field: 'batch' }, { field: 'ms' }],
    },
  } as Spec;
}
