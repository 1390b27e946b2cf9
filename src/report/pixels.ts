/**
 * Figure 5 of the paper, pixel distributions: per colour channel, the histogram of real test images against that of
 * a run's generator outputs, both in the network's input space (real images normalised with the teacher's mean/std;
 * the generator ends in a non-affine BatchNorm, so it already lives there), with mean / std / skewness in the legend.
 */
import { GranqError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Spec } from './charts.js';

export const CHANNELS = ['R', 'G', 'B'] as const;
export const SOURCES = ['real test images', 'generator'] as const;
const SOURCE_COLORS = ['#1f77b4', '#ff7f0e'];

export interface Moments { mean: number; std: number; skewness: number }
export interface HistogramPoint { channel: (typeof CHANNELS)[number]; source: (typeof SOURCES)[number]; label: string; x: number; density: number }

/** Channel c of an NCHW tensor as one contiguous array (N blocks of H*W copied). */
export function channelValues(x: Tensor, c: number): Float32Array {
  const [n, ch, h, w] = x.shape as [number, number, number, number];
  if (!(c >= 0 && c < ch)) throw new GranqError(`channel ${c} out of range [0, ${ch})`);
  const hw = h * w;
  const out = new Float32Array(n * hw);
  for (let i = 0; i < n; i++) out.set(x.data.subarray((i * ch + c) * hw, (i * ch + c + 1) * hw), i * hw);
  return out;
}

/** Population mean, standard deviation and skewness (third standardised moment; 0 for a constant). */
export function moments(v: Float32Array): Moments {
  if (!v.length) throw new GranqError('moments: no values');
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  const mean = s / v.length;
  let m2 = 0;
  let m3 = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v[i]! - mean;
    m2 += d * d;
    m3 += d * d * d;
  }
  m2 /= v.length;
  m3 /= v.length;
  return { mean, std: Math.sqrt(m2), skewness: m2 > 0 ? m3 / m2 ** 1.5 : 0 };
}

/**
 * Density histogram of `bins` equal bins over [lo, hi] (sums to 1 when multiplied by the bin width). Values below
 * lo or above hi count in the first or last bin, so no value is lost; `hi` itself belongs to the last bin.
 */
export function histogram(v: Float32Array, lo: number, hi: number, bins: number): Float64Array {
  if (!(Number.isInteger(bins) && bins >= 1)) throw new GranqError(`histogram: bins must be a positive integer, got ${bins}`);
  if (!(hi > lo)) throw new GranqError(`histogram: expected lo < hi, got [${lo}, ${hi}]`);
  const counts = new Float64Array(bins);
  const k = bins / (hi - lo);
  for (let i = 0; i < v.length; i++) {
    const b = Math.floor((v[i]! - lo) * k);
    counts[b < 0 ? 0 : b >= bins ? bins - 1 : b]!++;
  }
  const scale = v.length ? k / v.length : 0;
  for (let b = 0; b < bins; b++) counts[b]! *= scale;
  return counts;
}

function minMax(v: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < v.length; i++) {
    if (v[i]! < lo) lo = v[i]!;
    if (v[i]! > hi) hi = v[i]!;
  }
  return [lo, hi];
}

const f2 = (x: number) => (Math.abs(x) < 0.005 ? 0 : x).toFixed(2);
export const momentsLabel = (source: string, m: Moments) => `${source}: mean ${f2(m.mean)}, std ${f2(m.std)}, skew ${f2(m.skewness)}`;

/** Per channel, both sources binned over the same range (the union of their min and max). */
export function pixelHistograms(real: Tensor, generated: Tensor, bins = 48): { points: HistogramPoint[]; moments: Record<string, Moments[]> } {
  const points: HistogramPoint[] = [];
  const all: Record<string, Moments[]> = { [SOURCES[0]]: [], [SOURCES[1]]: [] };
  CHANNELS.forEach((channel, c) => {
    const sets = [channelValues(real, c), channelValues(generated, c)];
    const ranges = sets.map(minMax);
    const lo = Math.min(ranges[0]![0], ranges[1]![0]);
    const hi = Math.max(ranges[0]![1], ranges[1]![1]);
    const width = (hi - lo) / bins;
    sets.forEach((v, s) => {
      const m = moments(v);
      all[SOURCES[s]!]!.push(m);
      const label = momentsLabel(SOURCES[s]!, m);
      histogram(v, lo, hi > lo ? hi : lo + 1, bins).forEach((density, b) => points.push({ channel, source: SOURCES[s]!, label, x: lo + (b + 0.5) * width, density }));
    });
  });
  return { points, moments: all };
}

export function pixelSpec(points: HistogramPoint[], about: { real: number; generated: number; run: string }): Spec {
  return {
    title: { text: 'Pixel distributions per colour channel: real test images vs generator outputs', subtitle: `${about.real} real test images (normalised as the teacher sees them), ${about.generated} images of the generator of ${about.run}` },
    data: { values: points },
    hconcat: CHANNELS.map((channel) => {
      const labels = SOURCES.map((s) => points.find((p) => p.channel === channel && p.source === s)!.label);
      return {
        width: 260, height: 220,
        transform: [{ filter: { field: 'channel', equal: channel } }],
        mark: { type: 'line', interpolate: 'step', strokeWidth: 1.8 },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: `channel ${channel}: normalised pixel value` },
          y: { field: 'density', type: 'quantitative', title: 'density' },
          color: { field: 'label', type: 'nominal', title: `channel ${channel}`, scale: { domain: labels, range: SOURCE_COLORS }, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0 } },
        },
      };
    }),
    resolve: { scale: { color: 'independent', y: 'independent' }, legend: { color: 'independent' } },
  } as Spec;
}
