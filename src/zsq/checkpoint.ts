/**
 * Checkpoints of a zero-shot QAT run: one safetensors file (generator, student, both optimizers' tensors) whose
 * metadata holds the JSON state (epoch, iteration, RNG, optimizer scalars, settings). The file format and its
 * atomic write are the run-folder convention shared with `granq train` (io/run-dir.ts).
 */
import { CHECKPOINT_FILE, loadStateCheckpoint, saveStateCheckpoint } from '../io/run-dir.js';
import type { ZsqStateMeta } from './trainer.js';

export { CHECKPOINT_FILE };
const META_KEY = 'granq_zsq_state';

export interface Checkpoint<Extra> {
  tensors: Map<string, Float32Array>;
  meta: ZsqStateMeta;
  extra: Extra;
}

export function saveCheckpoint<Extra>(path: string, ck: Checkpoint<Extra>): void {
  saveStateCheckpoint(path, META_KEY, { tensors: ck.tensors, state: { meta: ck.meta, extra: ck.extra } });
}

export function loadCheckpoint<Extra>(path: string): Checkpoint<Extra> {
  const { tensors, state } = loadStateCheckpoint<{ meta: ZsqStateMeta; extra: Extra }>(path, META_KEY);
  return { tensors, meta: state.meta, extra: state.extra };
}
