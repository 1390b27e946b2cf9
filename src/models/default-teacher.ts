/**
 * The repository's own full-precision teacher, trained by `granq train` (README, "Training a teacher"): the model that
 * `granq eval`, `granq quantize` and `granq analyze error` use when no --model is given.
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../data/data-dir.js';
import { GranqError } from '../errors.js';

/** Relative to the repository root; its sidecar is the .json beside it. */
export const DEFAULT_TEACHER = 'models/resnet20b_cifar10_granq.safetensors';

/** The --model to use: the one given, else the default teacher when this checkout has it, else a one-line error. */
export function resolveModelArg(model: string | undefined, root = packageRoot()): string {
  if (model !== undefined) return model;
  const file = path.join(root, DEFAULT_TEACHER);
  if (fs.existsSync(file)) return file;
  throw new GranqError(`--model: none given, and this checkout has no default teacher (${DEFAULT_TEACHER}); pass --model FILE, ` +
    'e.g. ../shared/models/resnet20_cifar10_akamaster.safetensors');
}
