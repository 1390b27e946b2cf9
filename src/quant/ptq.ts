/**
 * Post-training quantization of a classifier without training: quantize, calibrate static ranges when the
 * activation quantizer has them (layer, channel-static) on the first N batches of the training split (test split
 * when no training file exists), then evaluate. What the calibration saw is returned, to be printed and recorded.
 */
import { batches, loadCifarSplit, locateCifarSplit, type CifarData, type CifarFormat } from '../data/cifar.js';
import { GranqError } from '../errors.js';
import { evaluate, type EvalCounts } from '../models/evaluate.js';
import type { Module } from '../nn/module.js';
import { calibrate, needsCalibration } from './calibrate.js';
import { ACT_CAPABILITIES } from './quantizer.js';
import { validatePolicy, type QuantPolicy } from './policy.js';
import { quantizeModel, type QuantizeOptions, type QuantSummary } from './quantize-model.js';

export interface CalibrationInfo {
  split: 'train' | 'test';
  files: string[];
  batches: number;
  batchSize: number;
  images: number;
  /** 'first N images, in file order' */
  selection: string;
  ema: 'correct' | 'released' | null;
}

export interface PtqOptions extends QuantizeOptions {
  dataDir: string;
  format: CifarFormat;
  mean: readonly number[];
  std: readonly number[];
  batch: number;
  /** Calibration batches (layer, channel-static). */
  calib: number;
  /** Evaluate on the first N test images only. */
  limit?: number;
  /** The test split, when the caller has it loaded already (tables reuse it). */
  test?: CifarData;
  onBatch?: (c: EvalCounts) => void;
}

export interface PtqResult {
  student: Module;
  summary: QuantSummary;
  counts: EvalCounts;
  calibration: CalibrationInfo | null;
}

/** Quantizes and calibrates (when needed); no evaluation. */
export function preparePtq(teacher: Module, policy: QuantPolicy, o: Omit<PtqOptions, 'limit' | 'test' | 'onBatch'>): Omit<PtqResult, 'counts'> {
  const p = validatePolicy(policy);
  if (!(Number.isInteger(o.calib) && o.calib >= 1)) throw new GranqError(`--calib: expected a positive integer, got ${o.calib}`);
  const { student, summary } = quantizeModel(teacher, p, o);
  if (!needsCalibration(p.act)) return { student, summary, calibration: null };
  let split: 'train' | 'test' = 'train';
  let files: string[];
  try {
    files = locateCifarSplit(o.dataDir, o.format, 'train');
  } catch {
    split = 'test';
    files = locateCifarSplit(o.dataDir, o.format, 'test');
  }
  const data = loadCifarSplit(o.dataDir, { format: o.format, split, limit: o.calib * o.batch });
  const done = calibrate(student, batches(data, { batchSize: o.batch, mean: o.mean, std: o.std }));
  const used = files.slice(0, Math.max(1, Math.ceil(done.images / 10000)));
  return {
    student, summary,
    calibration: {
      split, files: used, batches: done.batches, batchSize: o.batch, images: done.images,
      selection: `first ${done.images} images of the ${split} split, in file order (not shuffled), no augmentation`,
      ema: ACT_CAPABILITIES[p.act].ema ? (p.releasedEma ? 'released' : 'correct') : null,
    },
  };
}

export function runPtq(teacher: Module, policy: QuantPolicy, o: PtqOptions): PtqResult {
  const prepared = preparePtq(teacher, policy, o);
  const test = o.test ?? loadCifarSplit(o.dataDir, { format: o.format, split: 'test', limit: o.limit });
  const counts = evaluate(prepared.student, batches(test, { batchSize: o.batch, mean: o.mean, std: o.std, limit: o.limit }), o.onBatch);
  return { ...prepared, counts };
}
