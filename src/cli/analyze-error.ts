/**
 * `granq analyze error`: relative quantization error ||x - Q(x)||2 / ||x||2 of each of the 19 activation
 * quantizers (GranQ's Fig. 4), on the FP activations of one batch of inputs, each layer quantized in isolation
 * (weights and earlier activations FP). The inputs are the first --batch real test images, or, with --synthetic
 * RUN_DIR, as many images of that run's saved generator. `layer`: per-tensor range from one EMA step on that same
 * batch (the correct bias correction makes it exactly the batch min/max); `granq`: per (sample, channel) dynamic ranges.
 */
import { noGrad } from '../autograd/index.js';
import { batches, loadCifarSplit } from '../data/cifar.js';
import { resolveDataDir } from '../data/data-dir.js';
import { loadModel } from '../models/load.js';
import { fakeQuantRows, probeActivations, relError } from '../quant/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { runSyntheticImages } from '../zsq/checkpoint.js';

export interface AnalyzeErrorOptions {
  model: string;
  bits: number;
  data?: string;
  batch: number;
  /** A `granq quantize` run folder: its generator's images instead of real test images. */
  synthetic?: string;
  json?: boolean;
}

export interface ErrorRow { index: number; name: string; shape: number[]; layer: number; granq: number }
export interface ErrorAnalysis { bits: number; inputs: 'real' | 'synthetic'; images: number; layers: ErrorRow[] }

function realImages(o: AnalyzeErrorOptions, mean: readonly number[], std: readonly number[], numClasses: number): Tensor {
  const { dir } = resolveDataDir({ data: o.data });
  const data = loadCifarSplit(dir, { format: numClasses === 100 ? 'cifar100' : 'cifar10', split: 'test', limit: o.batch });
  return batches(data, { batchSize: o.batch, mean, std }).next().value!.x;
}

export function analyzeError(o: AnalyzeErrorOptions): ErrorAnalysis {
  const { model, sidecar } = loadModel(o.model);
  const x = o.synthetic !== undefined
    ? runSyntheticImages(o.synthetic, o.batch, Math.min(o.batch, 256), '--synthetic')
    : realImages(o, sidecar.mean, sidecar.std, sidecar.numClasses);
  const layers = probeActivations(model, x, o.bits).map((p, index) => noGrad(() => ({
    index, name: p.name, shape: [...p.x.shape],
    layer: relError(p.x, p.layer.quantize(p.x)),
    granq: relError(p.x, fakeQuantRows(p.x, o.bits)),
  })));
  return { bits: o.bits, inputs: o.synthetic !== undefined ? 'synthetic' : 'real', images: x.shape[0]!, layers };
}

export function runAnalyzeError(o: AnalyzeErrorOptions): void {
  const r = analyzeError(o);
  const out = process.stdout;
  const what = r.inputs === 'real' ? 'test images' : `images of the generator of ${o.synthetic}`;
  process.stderr.write(`relative error ||x - Q(x)|| / ||x|| at ${r.bits} bits, ${r.images} ${what}, FP activations, each layer alone; ` +
    `layer = per-tensor range from one EMA step on this batch (= its min/max)\n`);
  out.write('| # | quantizer | shape | layer | granq |\n|---:|---|---|---:|---:|\n');
  for (const l of r.layers) out.write(`| ${l.index} | ${l.name} | [${l.shape.join(',')}] | ${l.layer.toFixed(4)} | ${l.granq.toFixed(4)} |\n`);
  const mean = (k: 'layer' | 'granq') => r.layers.reduce((s, l) => s + l[k], 0) / r.layers.length;
  out.write(`| | mean | | ${mean('layer').toFixed(4)} | ${mean('granq').toFixed(4)} |\n`);
  if (o.json) out.write(`${JSON.stringify(r)}\n`);
}
