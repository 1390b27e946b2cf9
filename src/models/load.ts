/** Loading a model from weights + sidecar (architecture, classes, preprocessing). */
import { existsSync } from 'node:fs';
import { GranqError } from '../errors.js';
import { loadStateDictFile } from '../io/safetensors.js';
import { readSidecarFor, type ModelSidecar } from '../io/sidecar.js';
import type { Module } from '../nn/module.js';
import { createModel } from './registry.js';

export interface LoadedModel {
  model: Module;
  sidecar: ModelSidecar;
  path: string;
}

/** Builds the sidecar's architecture and loads the weights strictly (PyTorch's integer counters are ignored). */
export function loadModel(path: string): LoadedModel {
  if (!existsSync(path)) throw new GranqError(`--model: no such file ${path}`);
  if (!path.endsWith('.safetensors')) {
    throw new GranqError(`--model: expected a .safetensors weights file, got ${path}`);
  }
  const sidecar = readSidecarFor(path);
  const model = createModel(sidecar.architecture, sidecar.numClasses);
  const sd = loadStateDictFile(path, { integers: 'skip' });
  try {
    model.loadStateDict(sd);
  } catch (e) {
    if (e instanceof GranqError) throw new GranqError(`${path}: ${e.message}`);
    throw e;
  }
  model.eval();
  return { model, sidecar, path };
}
