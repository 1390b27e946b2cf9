/** Loading a model from weights + sidecar (architecture, classes, preprocessing). */
import { existsSync } from 'node:fs';
import nodePath from 'node:path';
import { GranqError } from '../errors.js';
import { loadStateDictFile } from '../io/safetensors.js';
import { readSidecar, readSidecarFor, sidecarPathFor, type ModelSidecar } from '../io/sidecar.js';
import type { Module } from '../nn/module.js';
import { importOnnx } from './onnx-import.js';
import { createModel } from './registry.js';

export interface LoadedModel {
  model: Module;
  sidecar: ModelSidecar;
  path: string;
}

/**
 * The sidecar of an ONNX file: `name.json`, or for `name.variant.onnx` (e.g. `.bn.onnx`) without its own
 * `name.variant.json`, the `name.json` of the model it is a variant of.
 */
export function onnxSidecarPath(file: string): string {
  const own = sidecarPathFor(file);
  const base = nodePath.basename(file);
  const stem = nodePath.join(nodePath.dirname(file), `${base.slice(0, base.indexOf('.'))}.json`);
  return existsSync(own) || !existsSync(stem) ? own : stem;
}

/**
 * An ONNX model: the graph gives structure and weights, the sidecar preprocessing and classes. The sidecar's raw
 * fields get `graph` (the file's absolute path), which a quantized student's sidecar inherits (see student-io).
 */
export function loadOnnxModel(file: string): LoadedModel {
  const sidecar = readSidecar(onnxSidecarPath(file), file, { graph: true });
  const model = importOnnx(file);
  return { model, sidecar: { ...sidecar, raw: { ...sidecar.raw, graph: nodePath.resolve(file) } }, path: file };
}

/** Checks a model path (exists; .safetensors or .onnx); `flag` names the option it came from in errors. */
export function checkModelPath(path: string, flag = '--model'): void {
  if (!existsSync(path)) throw new GranqError(`${flag}: no such file ${path}`);
  if (!path.endsWith('.onnx') && !path.endsWith('.safetensors')) {
    throw new GranqError(`${flag}: expected a .safetensors weights file or an .onnx model, got ${path}`);
  }
}

/** A full-precision .safetensors model whose sidecar has been read: the sidecar's architecture, weights loaded strictly. */
export function loadWeightsWithSidecar(path: string, sidecar: ModelSidecar): LoadedModel {
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

/**
 * Builds the sidecar's architecture and loads the weights strictly (PyTorch's integer counters are ignored). `flag`
 * names the option the path came from in errors.
 */
export function loadModel(path: string, flag = '--model'): LoadedModel {
  checkModelPath(path, flag);
  if (path.endsWith('.onnx')) return loadOnnxModel(path);
  return loadWeightsWithSidecar(path, readSidecarFor(path));
}
