/**
 * `granq analyze error`: relative quantization error ||x - Q(x)||2 / ||x||2 of each of the 19 activation
 * quantizers (GranQ's Fig. 4), on the FP activations of one batch of real test images (the first --batch images),
 * each layer quantized in isolation (weights and earlier activations FP). `layer`: per-tensor range from one EMA
 * step on that same batch (the correct bias correction makes it exactly the batch min/max); `granq`: per
 * (sample, channel) dynamic ranges.
 */
import { noGrad } from '../autograd/index.js';
import { batches, loadCifarSplit } from '../data/cifar.js';
import { resolveDataDir } from '../data/data-dir.js';
import { loadModel } from '../models/load.js';
import { actQuantizers, fakeQuantRows, quantizers, quantizeModel, WeightQuantizer, type ActQuantizer } from '../quant/index.js';
import type { Tensor } from '../tensor/tensor.js';

export interface AnalyzeErrorOptions {
  model: string;
  bits: number;
  data?: string;
  batch: number;
  json?: boolean;
}

export interface ErrorRow { index: number; name: string; shape: number[]; layer: number; granq: number }

export function relError(x: Tensor, y: Tensor): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.size; i++) {
    const d = x.data[i]! - y.data[i]!;
    num += d * d;
    den += x.data[i]! * x.data[i]!;
  }
  return den > 0 ? Math.sqrt(num / den) : 0;
}

export function analyzeError(o: AnalyzeErrorOptions): { bits: number; images: number; layers: ErrorRow[] } {
  const { model, sidecar } = loadModel(o.model);
  const { dir } = resolveDataDir({ data: o.data });
  const format = sidecar.numClasses === 100 ? 'cifar100' : 'cifar10';
  const data = loadCifarSplit(dir, { format, split: 'test', limit: o.batch });
  const x = batches(data, { batchSize: o.batch, mean: sidecar.mean, std: sidecar.std }).next().value!.x;
  const { student } = quantizeModel(model, { wbits: o.bits, abits: o.bits, act: 'layer', weight: 'slice' }, { warn: () => {} });
  for (const [, q] of quantizers(student)) {
    q.quantizing = false;
    if (q instanceof WeightQuantizer) continue;
    q.observing = true;
  }
  const seen: [string, ActQuantizer, Tensor][] = [];
  for (const [path, q] of actQuantizers(student)) q.hooks.push((t) => seen.push([path, q, t]));
  noGrad(() => student.forward(x));
  const layers = seen.map(([name, q, t], index) => noGrad(() => ({
    index, name, shape: [...t.shape],
    layer: relError(t, q.quantize(t)),
    granq: relError(t, fakeQuantRows(t, o.bits)),
  })));
  return { bits: o.bits, images: x.shape[0]!, layers };
}

export function runAnalyzeError(o: AnalyzeErrorOptions): void {
  const r = analyzeError(o);
  const out = process.stdout;
  process.stderr.write(`relative error ||x - Q(x)|| / ||x|| at ${r.bits} bits, ${r.images} test images, FP activations, each layer alone; ` +
    `layer = per-tensor range from one EMA step on this batch (= its min/max)\n`);
  out.write('| # | quantizer | shape | layer | granq |\n|---:|---|---|---:|---:|\n');
  for (const l of r.layers) out.write(`| ${l.index} | ${l.name} | [${l.shape.join(',')}] | ${l.layer.toFixed(4)} | ${l.granq.toFixed(4)} |\n`);
  const mean = (k: 'layer' | 'granq') => r.layers.reduce((s, l) => s + l[k], 0) / r.layers.length;
  out.write(`| | mean | | ${mean('layer').toFixed(4)} | ${mean('granq').toFixed(4)} |\n`);
  if (o.json) out.write(`${JSON.stringify({ bits: r.bits, layers: r.layers })}\n`);
}
