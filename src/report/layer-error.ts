/**
 * Figure 4 of the paper, relative quantization error per layer, from `granq analyze error --json` files (one for
 * real test images, one for a generator's synthetic images): 19 quantizers, layer vs granq, per input kind.
 */
import { GranqError } from '../errors.js';
import { DASH_LEGEND, METHOD_COLORS, type Spec } from './charts.js';
import type { ErrorAnalysis } from './inputs.js';

export interface ErrorPoint { index: number; name: string; method: 'layer' | 'granq'; inputs: 'real' | 'synthetic'; error: number; series: string }

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/**
 * One point per (analysis, quantizer, method). The analyses must agree on bits and on the quantizers (same names in
 * the same order) and be of different input kinds. Series are labelled with their mean error over the layers.
 */
export function errorPoints(analyses: readonly ErrorAnalysis[]): ErrorPoint[] {
  if (!analyses.length) throw new GranqError('error figure: no analyze error JSON given');
  const [first] = analyses as [ErrorAnalysis];
  const kinds = new Set<string>();
  for (const a of analyses) {
    if (a.bits !== first.bits) throw new GranqError(`--analyze: the files are at different bit widths (${first.bits} and ${a.bits})`);
    const names = a.layers.map((l) => l.name).join(',');
    if (names !== first.layers.map((l) => l.name).join(',')) throw new GranqError('--analyze: the files name different quantizers (not the same model?)');
    if (kinds.has(a.inputs)) throw new GranqError(`--analyze: two files of ${a.inputs} inputs; give at most one real and one synthetic`);
    kinds.add(a.inputs);
  }
  return analyses.flatMap((a) => (['layer', 'granq'] as const).flatMap((method) => {
    const series = `${method}, ${a.inputs} inputs (mean ${mean(a.layers.map((l) => l[method])).toFixed(4)})`;
    return a.layers.map((l) => ({ index: l.index, name: l.name, method, inputs: a.inputs, error: l[method], series }));
  }));
}

export function errorSpec(analyses: readonly ErrorAnalysis[]): Spec {
  const points = errorPoints(analyses);
  const series = [...new Set(points.map((p) => p.series))];
  const images = analyses.map((a) => `${a.inputs}: ${a.images ?? '?'} images`).join(', ');
  return {
    title: { text: `Relative quantization error per activation quantizer (${analyses[0]!.bits}-bit)`, subtitle: `||x - Q(x)|| / ||x|| on FP activations, each layer alone; ${images}` },
    width: 620, height: 320,
    data: { values: points },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'index', type: 'ordinal', title: 'activation quantizer (0 = after the stem conv, 18 = last block)', axis: { labelAngle: 0 } },
      y: { field: 'error', type: 'quantitative', title: 'relative error', scale: { zero: true } },
      color: { field: 'series', type: 'nominal', title: 'quantizer, inputs', scale: { domain: series, range: series.map((s) => METHOD_COLORS[s.split(',')[0]!]!) } },
      strokeDash: { field: 'inputs', type: 'nominal', title: 'inputs', scale: { domain: ['real', 'synthetic'], range: [[1, 0], [5, 3]] }, legend: DASH_LEGEND },
      tooltip: [{ field: 'name' }, { field: 'method' }, { field: 'inputs' }, { field: 'error', format: '.4f' }],
    },
  } as Spec;
}
