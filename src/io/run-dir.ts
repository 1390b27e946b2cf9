/**
 * The files of a training run's output folder, shared by `granq quantize` and `granq train`: `log.jsonl` (one JSON
 * line per finished epoch), `checkpoint.safetensors` (float tensors + one JSON state in the metadata, written
 * atomically) and `result.json`. A resume rewrites the log from the checkpoint's history, so the two always agree.
 */
import { appendFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { GranqError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { readSafetensors, writeSafetensors, type StoredTensor } from './safetensors.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const LOG_FILE = 'log.jsonl';
export const RESULT_FILE = 'result.json';

export interface StateCheckpoint<State> {
  tensors: Map<string, Float32Array>;
  state: State;
}

/** `key` names the metadata entry, so a checkpoint of one kind of run is refused by another. */
export function saveStateCheckpoint<State>(file: string, key: string, ck: StateCheckpoint<State>): void {
  const entries = new Map<string, StoredTensor>();
  for (const [k, v] of ck.tensors) entries.set(k, { dtype: 'F32', shape: [v.length], data: v });
  writeSafetensors(file, entries, { [key]: JSON.stringify(ck.state) });
}

/** `flag` names the option that pointed at the file (--resume, or a report's RUN_DIR), for the missing-file error. */
export function loadStateCheckpoint<State>(file: string, key: string, flag = '--resume'): StateCheckpoint<State> {
  if (!existsSync(file)) throw new GranqError(`${flag}: no checkpoint at ${file}`);
  const st = readSafetensors(file);
  const raw = st.metadata[key];
  if (raw === undefined) throw new GranqError(`${file}: not a checkpoint of this kind of run (no '${key}' metadata)`);
  let state: State;
  try {
    state = JSON.parse(raw) as State;
  } catch (e) {
    throw new GranqError(`${file}: checkpoint state is not valid JSON (${(e as Error).message})`);
  }
  const tensors = new Map<string, Float32Array>();
  for (const [k, t] of st.tensors) {
    if (t.dtype !== 'F32') throw new GranqError(`${file}: tensor '${k}' has dtype ${t.dtype}, expected F32`);
    tensors.set(k, t.data);
  }
  return { tensors, state };
}

/** Rewrites DIR/log.jsonl with exactly these records (on resume: the checkpoint's epochs). */
export function writeLog(dir: string, history: readonly object[]): void {
  writeFileAtomic(path.join(dir, LOG_FILE), [Buffer.from(history.map((r) => `${JSON.stringify(r)}\n`).join(''))]);
}

/** Appended before the epoch's checkpoint; a resume rewrites the file from the checkpoint (writeLog). */
export function appendLog(dir: string, rec: object): void {
  appendFileSync(path.join(dir, LOG_FILE), `${JSON.stringify(rec)}\n`);
}

/** DIR/result.json, pretty-printed, atomically; returns its path. */
export function writeResult(dir: string, result: object): string {
  const file = path.join(dir, RESULT_FILE);
  writeFileAtomic(file, [Buffer.from(`${JSON.stringify(result, null, 2)}\n`)]);
  return file;
}
