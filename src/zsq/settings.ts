/**
 * The settings of one `granq quantize` run, written into its checkpoint, sidecar and result.json. A resume compares
 * the new settings with the checkpoint's and refuses when a field that shapes the result differs; `epochs` may grow
 * (continue a run further), and `evalEvery` / `calib` may change (evaluation never touches training; calibrated
 * ranges come from the checkpoint).
 */
import { GranqError } from '../errors.js';
import type { QuantPolicy } from '../quant/index.js';
import type { ZsqConfig } from './config.js';

export interface ZsqSettings {
  teacher: { path: string; model: string; sha256: string };
  policy: QuantPolicy;
  preset: string;
  config: ZsqConfig;
  /** Test-set evaluation: off (`--no-test`, or no data found), or the number of images (null = all). */
  test: { enabled: boolean; limit: number | null };
  evalEvery: number;
  calib: number;
  /** Present only when static activation ranges start from generator images although real data was found. */
  calibSource?: 'generator';
  /** Held-out synthetic images for the student/teacher agreement. */
  agreeImages: number;
}

/** Fields of the config that may differ between a checkpoint and its resume. */
const FREE_CONFIG: readonly (keyof ZsqConfig)[] = ['epochs'];

/** `name: saved -> now` for every field that matters and differs. */
export function settingsDiff(saved: ZsqSettings, now: ZsqSettings): string[] {
  const out: string[] = [];
  const cmp = (name: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${name}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`);
  };
  cmp('teacher weights (sha256)', saved.teacher.sha256, now.teacher.sha256);
  cmp('policy', saved.policy, now.policy);
  for (const k of Object.keys({ ...saved.config, ...now.config }) as (keyof ZsqConfig)[]) {
    if (!FREE_CONFIG.includes(k)) cmp(k, saved.config[k], now.config[k]);
  }
  cmp('test', saved.test, now.test);
  cmp('agreeImages', saved.agreeImages, now.agreeImages);
  return out;
}

export function checkResumable(saved: ZsqSettings, now: ZsqSettings, checkpoint: string): void {
  const diff = settingsDiff(saved, now);
  if (diff.length) {
    throw new GranqError(`--resume: settings differ from the checkpoint ${checkpoint} (${diff.join('; ')}); ` +
      'rerun with the original flags (only --epochs, --eval-every and --calib may change)');
  }
}

/** Check the config's numbers once, so a bad flag fails before any work. */
export function validateConfig(c: ZsqConfig): ZsqConfig {
  const posInt = (k: keyof ZsqConfig) => {
    const v = c[k];
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1)) throw new GranqError(`config: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  const nonNeg = (k: keyof ZsqConfig) => {
    const v = c[k];
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new GranqError(`config: ${k} must be a non-negative number, got ${JSON.stringify(v)}`);
  };
  for (const k of ['epochs', 'itersPerEpoch', 'batch'] as const) posInt(k);
  for (const k of ['warmupEpochs', 'lrStudent', 'lrGenerator', 'lrGamma', 'momentum', 'weightDecay', 'alphaDs', 'alphaAs', 'beta', 'gamma', 'seed'] as const) nonNeg(k);
  for (const k of ['generatorEpochs', 'anchor', 'featureKd'] as const) if (c[k] !== undefined) nonNeg(k);
  if (c.augment !== undefined && !(Number.isInteger(c.augment) && c.augment >= 0 && c.augment <= 16)) {
    throw new GranqError(`config: augment must be an integer number of pixels in [0, 16], got ${JSON.stringify(c.augment)}`);
  }
  if (c.lowPass !== undefined && !(typeof c.lowPass === 'number' && c.lowPass > 0 && Number.isFinite(c.lowPass))) {
    throw new GranqError(`config: lowPass must be a positive radius in cycles per image, got ${JSON.stringify(c.lowPass)}`);
  }
  if (c.cutmix !== undefined && !(typeof c.cutmix === 'number' && c.cutmix > 0 && c.cutmix <= 1)) {
    throw new GranqError(`config: cutmix must be a probability in (0, 1], got ${JSON.stringify(c.cutmix)}`);
  }
  if (c.ema !== undefined && !(typeof c.ema === 'number' && c.ema > 0 && c.ema < 1)) {
    throw new GranqError(`config: ema must be a decay in (0, 1), got ${JSON.stringify(c.ema)}`);
  }
  if (c.kdMirror !== undefined && typeof c.kdMirror !== 'boolean') {
    throw new GranqError(`config: kdMirror must be true or false, got ${JSON.stringify(c.kdMirror)}`);
  }
  if (c.generatorEpochs !== undefined && !Number.isInteger(c.generatorEpochs)) throw new GranqError(`config: generatorEpochs must be an integer, got ${c.generatorEpochs}`);
  if (c.studentSchedule !== undefined && c.studentSchedule !== 'cosine') throw new GranqError(`config: studentSchedule must be 'cosine' or absent, got ${JSON.stringify(c.studentSchedule)}`);
  if (!(c.temperature > 0)) throw new GranqError(`config: temperature must be positive, got ${c.temperature}`);
  if (!Number.isInteger(c.seed)) throw new GranqError(`config: seed must be a non-negative integer, got ${c.seed}`);
  if (!(c.marginLower >= 0 && c.marginLower < c.marginUpper && c.marginUpper <= 1)) {
    throw new GranqError(`config: margins must satisfy 0 <= lower < upper <= 1, got ${c.marginLower}, ${c.marginUpper}`);
  }
  if (!c.milestones.every((m) => Number.isInteger(m) && m >= 0)) throw new GranqError(`config: milestones must be non-negative integers, got ${JSON.stringify(c.milestones)}`);
  if (c.studentMilestones !== undefined) {
    if (!(Array.isArray(c.studentMilestones) && c.studentMilestones.every((m) => Number.isInteger(m) && m >= 0))) {
      throw new GranqError(`config: studentMilestones must be non-negative integers, got ${JSON.stringify(c.studentMilestones)}`);
    }
    if (c.studentSchedule === 'cosine') throw new GranqError("config: studentMilestones are the student's multistep schedule; with studentSchedule 'cosine' (preset plus-cifar10) give --student-schedule multistep too");
  }
  return c;
}
