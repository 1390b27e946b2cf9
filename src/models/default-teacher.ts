/**
 * The repository's own full-precision teacher, trained by `granq train` (README, "Training a teacher"): the model that
 * `granq eval`, `granq quantize` and `granq analyze error` use when no --model is given.
 */
import fs from 'node:fs';
import path from 'node:path';
import { findShared, packageRoot } from '../data/data-dir.js';
import { GranqError } from '../errors.js';
import { fileSha256 } from '../io/hash.js';

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

/** A teacher as a run records it (result.json's `teacher`, a checkpoint's settings): its path then, its bytes' sha256. */
export interface RecordedTeacher { path: string; sha256?: string }

/**
 * The file of a teacher a run recorded, on this machine: its recorded path when it still exists, else the file of the
 * same name in this checkout's models/ or in ../shared/models/ when its bytes have the recorded sha256 (a run made in
 * another checkout, or on a machine since replaced); null when neither is here. A same-named file with other bytes
 * is never taken for it.
 */
export function locateRecordedTeacher(t: RecordedTeacher, root = packageRoot()): string | null {
  if (fs.existsSync(t.path)) return t.path;
  if (t.sha256 === undefined) return null;
  const name = path.basename(t.path);
  const candidates = [path.join(root, 'models', name), findShared(path.join('models', name))];
  return candidates.find((f): f is string => f !== null && fs.existsSync(f) && fileSha256(f) === t.sha256) ?? null;
}
