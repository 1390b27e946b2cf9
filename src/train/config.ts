/**
 * The settings of `granq train` (full-precision CIFAR-10 training from scratch): the recipe, its default, its checks,
 * and which fields a resume may change. The default is the usual CIFAR ResNet recipe that reaches ~93-94% with a
 * ResNet-20: 200 epochs, batch 128, SGD Nesterov lr 0.1 momentum 0.9, weight decay 5e-4 (on every parameter, as
 * PyTorch's SGD does), cosine schedule, 4-pixel-padded random crop + horizontal flip.
 */
import { GranqError } from '../errors.js';
import { isModelName, MODEL_NAMES } from '../models/registry.js';

export const SCHEDULES = ['cosine', 'multistep'] as const;
export type Schedule = (typeof SCHEDULES)[number];

export interface TrainConfig {
  model: string;
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  schedule: Schedule;
  /** multistep: epochs at which lr is multiplied by lrGamma. */
  milestones: number[];
  lrGamma: number;
  labelSmoothing: number;
  /** Random-crop zero padding (0: no crop) and horizontal flip. */
  cropPadding: number;
  flip: boolean;
  /** Cutout square side after normalisation (0: none). */
  cutout: number;
  /** Weight init and every epoch's order and augmentation. */
  seed: number;
}

export const DEFAULT_TRAIN_CONFIG: Readonly<TrainConfig> = Object.freeze({
  model: 'resnet20-b', epochs: 200, batch: 128, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4,
  schedule: 'cosine', milestones: [100, 150], lrGamma: 0.1, labelSmoothing: 0, cropPadding: 4, flip: true, cutout: 0, seed: 0,
});

/** CIFAR-10 input normalisation of the papers' pytorchcv teachers (per-channel mean and std of the training set). */
export const CIFAR10_MEAN: readonly number[] = [0.49139968, 0.48215827, 0.44653124];
export const CIFAR10_STD: readonly number[] = [0.24703233, 0.24348505, 0.26158768];

export function validateTrainConfig(c: TrainConfig): TrainConfig {
  const bad = (k: string, want: string) => new GranqError(`config: ${k} must be ${want}, got ${JSON.stringify((c as unknown as Record<string, unknown>)[k])}`);
  if (!isModelName(c.model)) throw bad('model', `resnet<6n+2>-a|b, e.g. ${MODEL_NAMES.join(', ')}`);
  for (const k of ['epochs', 'batch'] as const) if (!(Number.isInteger(c[k]) && c[k] >= 1)) throw bad(k, 'a positive integer');
  if (!(Number.isInteger(c.seed) && c.seed >= 0)) throw bad('seed', 'a non-negative integer');
  if (!(c.lr > 0 && Number.isFinite(c.lr))) throw bad('lr', 'a positive number');
  for (const k of ['momentum', 'weightDecay', 'lrGamma'] as const) if (!(c[k] >= 0 && Number.isFinite(c[k]))) throw bad(k, 'a non-negative number');
  if (c.nesterov && !(c.momentum > 0)) throw bad('momentum', 'positive with Nesterov');
  if (!SCHEDULES.includes(c.schedule)) throw bad('schedule', SCHEDULES.join(' or '));
  if (!c.milestones.every((m) => Number.isInteger(m) && m >= 0)) throw bad('milestones', 'non-negative integers');
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 1)) throw bad('labelSmoothing', 'in [0, 1)');
  if (!(Number.isInteger(c.cropPadding) && c.cropPadding >= 0 && c.cropPadding <= 32)) throw bad('cropPadding', 'an integer in [0, 32]');
  if (!(Number.isInteger(c.cutout) && c.cutout >= 0 && c.cutout <= 32)) throw bad('cutout', 'an integer in [0, 32]');
  return c;
}

/**
 * `name: saved -> now` for each setting that shapes the weights and differs. Only `epochs` under a multistep
 * schedule may change on resume (continuing further); under cosine it sets the schedule's length.
 */
export function trainConfigDiff(saved: TrainConfig, now: TrainConfig): string[] {
  const out: string[] = [];
  for (const k of Object.keys({ ...saved, ...now }) as (keyof TrainConfig)[]) {
    if (k === 'epochs' && saved.schedule === 'multistep' && now.schedule === 'multistep') continue;
    // A setting added after the checkpoint was written had its default then.
    const was = saved[k] ?? DEFAULT_TRAIN_CONFIG[k];
    if (JSON.stringify(was) !== JSON.stringify(now[k])) out.push(`${k}: ${JSON.stringify(was)} -> ${JSON.stringify(now[k])}`);
  }
  return out;
}
