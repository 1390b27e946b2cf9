/**
 * Figure 1 of the paper, activation maps: the first ResNet-20 activation (after the stem conv + BN + ReLU, the
 * input of the first activation quantizer) for a few real test images, in full precision and quantized at k bits by
 * `layer` (one per-tensor range: the min/max of these images' activations, as in `granq analyze error`) and by
 * `granq` (one range per image and channel), side by side per channel, with each image's relative error.
 */
import { noGrad } from '../autograd/index.js';
import { GranqError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { fakeQuantRows, probeActivations, relError } from '../quant/index.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Spec } from './charts.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
export const VARIANTS = ['FP', 'layer', 'granq'] as const;

export interface MapCell { row: string; channel: string; x: number; y: number; v: number }
export interface ImageErrors { image: number; label: string; layer: number; granq: number }

/** Each image's relative error over its whole activation (all channels), for the two quantized versions. */
export function imageErrors(fp: Tensor, layer: Tensor, granq: Tensor, labels: readonly string[]): ImageErrors[] {
  const per = fp.size / fp.shape[0]!;
  return labels.map((label, i) => ({ image: i, label, layer: relError(fp, layer, i * per, (i + 1) * per), granq: relError(fp, granq, i * per, (i + 1) * per) }));
}

/**
 * Heat-map cells of `channels` of every image, for FP / layer / granq. Each (image, channel) map is divided by the
 * FP map's maximum (post-ReLU, so >= 0), so every channel spans the colour scale whatever its range and a coarse
 * quantization shows as flat or blocky patches; an all-zero FP channel stays 0.
 */
export function mapCells(fp: Tensor, layer: Tensor, granq: Tensor, channels: readonly number[], rowLabels: (image: number, variant: number) => string): MapCell[] {
  const [n, ch, h, w] = fp.shape as [number, number, number, number];
  for (const c of channels) if (!(Number.isInteger(c) && c >= 0 && c < ch)) throw new GranqError(`--channels: channel ${c} out of range [0, ${ch})`);
  const hw = h * w;
  const cells: MapCell[] = [];
  for (let i = 0; i < n; i++) {
    for (const c of channels) {
      const at = (i * ch + c) * hw;
      let max = 0;
      for (let j = 0; j < hw; j++) if (fp.data[at + j]! > max) max = fp.data[at + j]!;
      const inv = max > 0 ? 1 / max : 0;
      [fp, layer, granq].forEach((t, variant) => {
        const row = rowLabels(i, variant);
        for (let j = 0; j < hw; j++) cells.push({ row, channel: `channel ${c}`, x: j % w, y: Math.floor(j / w), v: t.data[at + j]! * inv });
      });
    }
  }
  return cells;
}

export interface ActivationMaps { bits: number; channels: number[]; errors: ImageErrors[]; rows: string[]; cells: MapCell[] }

/** Runs the teacher on the images (x: [N,3,32,32], normalised) and prepares the figure. */
export function activationMaps(teacher: Module, x: Tensor, labels: readonly string[], bits: number, channels: readonly number[]): ActivationMaps {
  const [first] = probeActivations(teacher, x, bits);
  if (!first) throw new GranqError('activation maps: the model has no activation quantizer to probe');
  const fp = first.x;
  const [layer, granq] = noGrad(() => [first.layer.quantize(fp), fakeQuantRows(fp, bits)]);
  const errors = imageErrors(fp, layer!, granq!, labels);
  // Column headers, one line per '|': image, variant, relative error.
  const label = (i: number, v: number) => v === 0
    ? `image ${i}|${labels[i]}|FP`
    : `image ${i}|${VARIANTS[v]} ${bits}-bit|error ${(v === 1 ? errors[i]!.layer : errors[i]!.granq).toFixed(3)}`;
  const rows = labels.flatMap((_, i) => VARIANTS.map((_v, v) => label(i, v)));
  return { bits, channels: [...channels], errors, rows, cells: mapCells(fp, layer!, granq!, channels, label) };
}

export function activationMapsSpec(m: ActivationMaps): Spec {
  return {
    title: { text: `Activation maps of the first ResNet-20 layer: FP vs ${m.bits}-bit layer vs ${m.bits}-bit granq`, subtitle: 'each (image, channel) map scaled by its FP maximum; relative error over all 16 channels of the image' },
    data: { values: m.cells },
    // Maps side by side per channel (rows); the header of each column names the image, the variant and its error.
    facet: {
      row: { field: 'channel', type: 'nominal', sort: m.channels.map((c) => `channel ${c}`), title: null, header: { labelFontSize: 11 } },
      column: { field: 'row', type: 'nominal', sort: m.rows, title: null, header: { labelExpr: "split(datum.value, '|')", labelFontSize: 11, labelLimit: 0 } },
    },
    spacing: { row: 4, column: 4 },
    spec: {
      width: 96, height: 96,
      mark: { type: 'rect' },
      encoding: {
        x: { field: 'x', type: 'ordinal', axis: null },
        y: { field: 'y', type: 'ordinal', axis: null },
        color: { field: 'v', type: 'quantitative', title: ['activation', '/ FP max'], scale: { scheme: 'viridis', domain: [0, 1], clamp: true } },
      },
    },
    config: { view: { stroke: null } },
  } as Spec;
}
