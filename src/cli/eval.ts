/** `granq eval`: top-1 / top-5 of a model on its test set, full precision or post-training quantized (PTQ). */
import { batches, loadCifarSplit } from '../data/cifar.js';
import { resolveDataDir } from '../data/data-dir.js';
import { GranqError } from '../errors.js';
import { evaluate, mcnemarP, pairedCounts, pairedLine, type EvalCounts, type PairedCounts } from '../models/evaluate.js';
import { bitsRecord, formatBits, formatSummary, modelBits, policyLabel, preparePtq, STORAGES, validatePolicy, type CalibrationInfo, type QuantPolicy } from '../quant/index.js';
import { describeIntLayers, integerModel, loadAnyModel } from '../quant/index.js';
import { progressBar } from './progress.js';

export interface EvalOptions {
  model: string;
  data?: string;
  batch: number;
  limit?: number;
  json?: boolean;
  wbits?: number;
  abits?: number;
  act?: string;
  weight?: string;
  weightClip?: string;
  calib?: number;
  releasedEma?: boolean;
  skip?: string;
  int?: boolean;
  /** Another model to compare with image by image (paired counts and McNemar's p). */
  vs?: string;
}

/** The policy the options ask for, or null for a full-precision evaluation. */
export function policyFromOptions(o: EvalOptions): QuantPolicy | null {
  if (o.wbits === undefined && o.abits === undefined) {
    for (const k of ['act', 'weight', 'weightClip', 'releasedEma', 'skip'] as const) {
      if (o[k] !== undefined && !(k === 'act' && o.act === 'granq') && !(k === 'weight' && o.weight === 'slice')) {
        throw new GranqError(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: only meaningful with --wbits and --abits`);
      }
    }
    return null;
  }
  if (o.wbits === undefined || o.abits === undefined) throw new GranqError(`--wbits and --abits: give both (got ${o.wbits === undefined ? '--abits' : '--wbits'} only)`);
  return validatePolicy({
    wbits: o.wbits, abits: o.abits, act: o.act ?? 'granq', weight: o.weight ?? 'slice',
    ...(o.skip ? { skip: o.skip.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(o.releasedEma ? { releasedEma: true } : {}),
    ...(o.weightClip ? { weightClip: o.weightClip } : {}),
  });
}

export function runEval(opts: EvalOptions): void {
  const policy = policyFromOptions(opts);
  // A model whose sidecar carries `quantization` (a `granq quantize` student) comes back quantized, ranges included.
  const { model: teacher, sidecar, policy: saved } = loadAnyModel(opts.model);
  if (saved && policy) throw new GranqError(`--wbits/--abits: ${opts.model} is already quantized (${policyLabel(saved)}); evaluate it without them`);
  const { dir } = resolveDataDir({ data: opts.data });
  const format = sidecar.numClasses === 100 ? 'cifar100' : 'cifar10';
  let model = teacher;
  let calibration: CalibrationInfo | null = null;
  const err = process.stderr;
  if (saved) err.write(`quantized model ${policyLabel(saved)} (policy from its sidecar)\n`);
  if (policy) {
    const p = preparePtq(teacher, policy, { dataDir: dir, format, mean: sidecar.mean, std: sidecar.std, batch: opts.batch, calib: opts.calib ?? 4 });
    model = p.student;
    calibration = p.calibration;
    err.write(`quantization ${policyLabel(policy)}\n${formatSummary(p.summary)}\n`);
    if (calibration) {
      err.write(`calibration ${calibration.selection}: ${calibration.batches} batches of ${calibration.batchSize} from ${calibration.files.join(', ')}` +
        `${calibration.ema ? `; ${calibration.ema} EMA bias correction` : ''}\n`);
    }
  }
  const quantized = policy !== null || saved !== null;
  if (opts.int && !quantized) throw new GranqError('--int: integer inference needs a quantized model (a granq quantize student, a .granq file, or --wbits/--abits)');
  if (quantized) err.write(`storage\n${formatBits(STORAGES.map((st) => modelBits(model, st)))}\n`);
  const other = opts.vs === undefined ? null : loadAnyModel(opts.vs, '--vs');
  if (other) {
    const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
    if (other.sidecar.numClasses !== sidecar.numClasses) {
      throw new GranqError(`--vs: ${opts.vs} has ${other.sidecar.numClasses} classes, ${opts.model} ${sidecar.numClasses}`);
    }
    if (!same(other.sidecar.mean, sidecar.mean) || !same(other.sidecar.std, sidecar.std)) {
      throw new GranqError(`--vs: ${opts.vs} normalises its input differently from ${opts.model} (mean/std in their sidecars); ` +
        'a paired comparison needs the same inputs');
    }
  }
  const fakeQuant = model;
  const intModel = opts.int ? integerModel(model) : null;
  if (intModel) model = intModel.model;
  const data = loadCifarSplit(dir, { format, split: 'test', limit: opts.limit });
  const bar = progressBar(data.n, 'eval');
  const show = (c: EvalCounts) => bar.update(c.images, { 'top-1': `${((100 * c.correct) / c.images).toFixed(2)}%` });
  const stream = batches(data, { batchSize: opts.batch, mean: sidecar.mean, std: sidecar.std });
  const t0 = performance.now();
  let counts: EvalCounts;
  // With --vs both models run on each batch in one pass; this model's counts are the same as evaluate's.
  let paired: PairedCounts | null = null;
  try {
    if (other) {
      paired = pairedCounts(model, other.model, stream, (p) => show(p.a));
      counts = paired.a;
    } else {
      counts = evaluate(model, stream, show);
    }
  } finally {
    bar.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  if (intModel) err.write(`integer inference: ${describeIntLayers(intModel.layers)}\n`);
  const top1 = counts.correct / counts.images;
  const top5 = counts.correct5 / counts.images;
  const out = process.stdout;
  out.write(`model    ${sidecar.model} (${sidecar.architecture}, ${sidecar.numClasses} classes)\n`);
  if (saved) out.write(`quant    ${policyLabel(saved)}, as saved (sidecar quantization)\n`);
  if (policy) out.write(`quant    ${policyLabel(policy)}, PTQ (no training)${calibration ? `, calibrated on ${calibration.images} ${calibration.split} images` : ''}\n`);
  if (intModel) out.write('engine   integer (conv/linear on codes: int32 partial sums, float32 scales)\n');
  out.write(`dataset  ${format} test, ${counts.images} images from ${dir}\n`);
  out.write(`top-1    ${(100 * top1).toFixed(2)}% (${counts.correct}/${counts.images})\n`);
  out.write(`top-5    ${(100 * top5).toFixed(2)}%\n`);
  out.write(`time     ${seconds.toFixed(2)} s (${(counts.images / seconds).toFixed(0)} img/s)${paired ? ', both models' : ''}\n`);
  const vs = paired ? {
    model: opts.vs!, top1: paired.b.correct / paired.b.images, this_only: paired.aOnly, vs_only: paired.bOnly,
    mcnemar_p: Number(mcnemarP(paired.aOnly, paired.bOnly).toPrecision(4)),
  } : null;
  if (vs) {
    out.write(`vs       ${vs.model}: top-1 ${(100 * vs.top1).toFixed(2)}% (${paired!.b.correct}/${paired!.b.images}); ` +
      `${pairedLine(vs.this_only, vs.vs_only, vs.mcnemar_p, 'this model', 'that one')}\n`);
  }
  if (opts.json) {
    out.write(`${JSON.stringify({
      model: sidecar.model, dataset: `${format}-test`, images: counts.images, correct: counts.correct,
      top1, top5, seconds: Number(seconds.toFixed(3)),
      ...(policy ? { policy, calibration } : {}),
      ...(saved ? { policy: saved, quantized: 'saved' } : {}),
      ...(quantized ? { bits: bitsRecord(fakeQuant) } : {}),
      ...(vs ? { vs } : {}),
      ...(intModel ? { engine: 'integer', int_layers: intModel.layers.filter(([, l]) => l.counts.float === 0).length, float_layers: intModel.layers.filter(([, l]) => l.counts.float > 0).map(([p]) => p) } : {}),
    })}\n`);
  }
}
