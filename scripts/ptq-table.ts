#!/usr/bin/env node
/**
 * The full PTQ table: a teacher (default: ../shared's option-A ResNet-20) on the CIFAR-10 test set, W/A bits x
 * activation quantizer x weight rule, no training; layer / channel-static calibrated on the first --calib batches of
 * the training split; the FP top-1 measured on the same images.
 * node dist/scripts/ptq-table.js [--model FILE] [--data DIR] [--bits 3,4,5] [--acts granq,...] [--weights slice,...]
 *   [--limit N] [--batch 256] [--calib 4]
 */
import { batches, loadCifarSplit } from '../src/data/cifar.js';
import { resolveDataDir } from '../src/data/data-dir.js';
import { evaluate } from '../src/models/evaluate.js';
import { loadModel } from '../src/models/load.js';
import { ACT_KINDS, WEIGHT_KINDS, runPtq, type ActKind, type WeightKind } from '../src/quant/index.js';
import { backend } from '../src/backend/index.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const bits = arg('bits', '3,4,5').split(',').map(Number);
const acts = arg('acts', ACT_KINDS.join(',')).split(',') as ActKind[];
const weights = arg('weights', WEIGHT_KINDS.join(',')).split(',') as WeightKind[];
const limit = process.argv.includes('--limit') ? Number(arg('limit', '0')) : undefined;
const batch = Number(arg('batch', '256'));
const calib = Number(arg('calib', '4'));
const modelPath = arg('model', '../shared/models/resnet20_cifar10_akamaster.safetensors');

const { model, sidecar } = loadModel(modelPath);
const { dir } = resolveDataDir({ data: process.argv.includes('--data') ? arg('data', '') : undefined });
const test = loadCifarSplit(dir, { format: 'cifar10', split: 'test', limit });
const log = (s: string) => process.stderr.write(`${s}\n`);
log(`ptq-table: ${sidecar.model}, ${test.n} test images from ${dir}, backend ${backend().name}, batch ${batch}, calib ${calib}`);

const fp = evaluate(model, batches(test, { batchSize: batch, mean: sidecar.mean, std: sidecar.std }));
const fpTop1 = (100 * fp.correct) / fp.images;
log(`FP ${fpTop1.toFixed(2)}%`);

const results = new Map<string, number>();
let calibNote = '';
const t0 = performance.now();
for (const k of bits) {
  for (const act of acts) {
    for (const weight of weights) {
      const t = performance.now();
      const r = runPtq(model, { wbits: k, abits: k, act, weight }, {
        dataDir: dir, format: 'cifar10', mean: sidecar.mean, std: sidecar.std, batch, calib, test, warn: () => {},
      });
      if (r.calibration) calibNote = r.calibration.selection;
      const top1 = (100 * r.counts.correct) / r.counts.images;
      results.set(`${k}/${act}/${weight}`, top1);
      log(`W${k}A${k} ${act.padEnd(14)} ${weight.padEnd(7)} ${top1.toFixed(2)}%  (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    }
  }
}
const out: string[] = [];
out.push(`| act \\ weight | ${bits.flatMap((k) => weights.map((w) => `W${k}A${k} ${w}`)).join(' | ')} |`);
out.push(`|---|${bits.flatMap(() => weights.map(() => '---:')).join('|')}|`);
for (const act of acts) {
  out.push(`| ${act} | ${bits.flatMap((k) => weights.map((w) => results.get(`${k}/${act}/${w}`)!.toFixed(2))).join(' | ')} |`);
}
process.stdout.write(`${out.join('\n')}\n\n`);
process.stdout.write(`Top-1 % of ${sidecar.model} (FP ${fpTop1.toFixed(2)}) on ${test.n} CIFAR-10 test images; no training. ` +
  `layer/channel-static calibration: ${calibNote || 'n/a'}; layer uses the correct bias-corrected EMA (beta 0.9). ` +
  `Backend: ${backend().name}. Total ${((performance.now() - t0) / 1000).toFixed(0)} s.\n`);
