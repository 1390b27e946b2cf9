/**
 * Checkpoints of a zero-shot QAT run: one safetensors file (generator, student, both optimizers' tensors) whose
 * metadata holds the JSON state (epoch, iteration, RNG, optimizer scalars, settings). The file format and its
 * atomic write are the run-folder convention shared with `granq train` (io/run-dir.ts).
 */
import path from 'node:path';
import { GranqError } from '../errors.js';
import { CHECKPOINT_FILE, loadStateCheckpoint, saveStateCheckpoint } from '../io/run-dir.js';
import { loadFlatStateDict } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { Generator, LATENT_DIM } from './generator.js';
import { heldOutImages, HELD_OUT_SEED_OFFSET } from './measure.js';
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

/** `flag` names the option that pointed at the file, for the error when it is missing. */
export function loadCheckpoint<Extra>(path: string, flag = '--resume'): Checkpoint<Extra> {
  const { tensors, state } = loadStateCheckpoint<{ meta: ZsqStateMeta; extra: Extra }>(path, META_KEY, flag);
  return { tensors, meta: state.meta, extra: state.extra };
}

/** The generator of a run folder, as of its last checkpoint (end of training for a finished run), and the run's seed. */
export function loadRunGenerator(runDir: string, flag: string): { generator: Generator; seed: number } {
  const ck = loadCheckpoint<{ settings?: { config?: { seed?: number } } }>(path.join(runDir, CHECKPOINT_FILE), flag);
  const emb = ck.tensors.get('generator.label_emb.weight');
  if (!emb || emb.length % LATENT_DIM !== 0) throw new GranqError(`${flag}: ${runDir}: the checkpoint holds no generator`);
  const generator = new Generator(emb.length / LATENT_DIM);
  try {
    loadFlatStateDict(generator, ck.tensors, 'generator.');
  } catch (e) {
    throw e instanceof GranqError ? new GranqError(`${flag}: ${runDir}: generator: ${e.message}`) : e;
  }
  return { generator, seed: ck.extra.settings?.config?.seed ?? 0 };
}

/**
 * `n` images [n,3,32,32] from a run's generator: the held-out stream of its agreement measure (latent codes and
 * labels the training never drew), generated as in training (BatchNorm on batch statistics, in batches of `batch`).
 */
export function runSyntheticImages(runDir: string, n: number, batch: number, flag: string): Tensor {
  const { generator, seed } = loadRunGenerator(runDir, flag);
  const parts = heldOutImages(generator, n, batch, seed + HELD_OUT_SEED_OFFSET);
  const out = new Float32Array(n * 3 * 32 * 32);
  let at = 0;
  for (const p of parts) {
    out.set(p.data, at);
    at += p.size;
  }
  return new Tensor(out, [n, 3, 32, 32]);
}
