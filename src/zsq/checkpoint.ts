/**
 * Checkpoints of a zero-shot QAT run: one safetensors file (generator, student, both optimizers' tensors) whose
 * metadata holds the JSON state (epoch, iteration, RNG, optimizer scalars, settings). Written atomically (write then
 * rename), so an interrupted write never leaves a half checkpoint behind.
 */
import { existsSync } from 'node:fs';
import { GranqError } from '../errors.js';
import { readSafetensors, writeSafetensors, type StoredTensor } from '../io/safetensors.js';
import type { ZsqStateMeta } from './trainer.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
const META_KEY = 'granq_zsq_state';

export interface Checkpoint<Extra> {
  tensors: Map<string, Float32Array>;
  meta: ZsqStateMeta;
  extra: Extra;
}

export function saveCheckpoint<Extra>(path: string, ck: Checkpoint<Extra>): void {
  const entries = new Map<string, StoredTensor>();
  for (const [k, v] of ck.tensors) entries.set(k, { dtype: 'F32', shape: [v.length], data: v });
  writeSafetensors(path, entries, { [META_KEY]: JSON.stringify({ meta: ck.meta, extra: ck.extra }) });
}

export function loadCheckpoint<Extra>(path: string): Checkpoint<Extra> {
  if (!existsSync(path)) throw new GranqError(`--resume: no checkpoint at ${path}`);
  const file = readSafetensors(path);
  const raw = file.metadata[META_KEY];
  if (raw === undefined) throw new GranqError(`${path}: not a granq checkpoint (no '${META_KEY}' metadata)`);
  let parsed: { meta: ZsqStateMeta; extra: Extra };
  try {
    parsed = JSON.parse(raw) as { meta: ZsqStateMeta; extra: Extra };
  } catch (e) {
    throw new GranqError(`${path}: checkpoint state is not valid JSON (${(e as Error).message})`);
  }
  const tensors = new Map<string, Float32Array>();
  for (const [k, st] of file.tensors) {
    if (st.dtype !== 'F32') throw new GranqError(`${path}: tensor '${k}' has dtype ${st.dtype}, expected F32`);
    tensors.set(k, st.data);
  }
  return { tensors, meta: parsed.meta, extra: parsed.extra };
}
