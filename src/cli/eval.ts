/** `granq eval`: top-1 / top-5 of a model on its test set. */
import { batches, loadCifarSplit } from '../data/cifar.js';
import { resolveDataDir } from '../data/data-dir.js';
import { evaluate } from '../models/evaluate.js';
import { loadModel } from '../models/load.js';
import { progressBar } from './progress.js';

export interface EvalOptions {
  model: string;
  data?: string;
  batch: number;
  limit?: number;
  json?: boolean;
}

export function runEval(opts: EvalOptions): void {
  const { model, sidecar } = loadModel(opts.model);
  const { dir } = resolveDataDir({ data: opts.data });
  const format = sidecar.numClasses === 100 ? 'cifar100' : 'cifar10';
  const data = loadCifarSplit(dir, { format, split: 'test', limit: opts.limit });
  const bar = progressBar(data.n, 'eval');
  const t0 = performance.now();
  let counts;
  try {
    counts = evaluate(model, batches(data, { batchSize: opts.batch, mean: sidecar.mean, std: sidecar.std }), (c) =>
      bar.update(c.images, { 'top-1': `${((100 * c.correct) / c.images).toFixed(2)}%` }),
    );
  } finally {
    bar.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  const top1 = counts.correct / counts.images;
  const top5 = counts.correct5 / counts.images;
  const out = process.stdout;
  out.write(`model    ${sidecar.model} (${sidecar.architecture}, ${sidecar.numClasses} classes)\n`);
  out.write(`dataset  ${format} test, ${counts.images} images from ${dir}\n`);
  out.write(`top-1    ${(100 * top1).toFixed(2)}% (${counts.correct}/${counts.images})\n`);
  out.write(`top-5    ${(100 * top5).toFixed(2)}%\n`);
  out.write(`time     ${seconds.toFixed(2)} s (${(counts.images / seconds).toFixed(0)} img/s)\n`);
  if (opts.json) {
    out.write(`${JSON.stringify({
      model: sidecar.model, dataset: `${format}-test`, images: counts.images, correct: counts.correct,
      top1, top5, seconds: Number(seconds.toFixed(3)),
    })}\n`);
  }
}
