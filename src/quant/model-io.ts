/**
 * A quantized student on disk: `<name>.safetensors` holds the FP master weights under the teacher's own keys (a
 * quantized model keeps them) plus, in the metadata, the ranges of static activation quantizers; the sidecar
 * `<name>.json` is the teacher's with `quantization: <policy>` added (and `zsq: <settings>` for trained students).
 * loadQuantizedModel rebuilds it: FP architecture from the sidecar (or, for an ONNX teacher, from the copy of its graph
 * named by the sidecar's `graph`), quantizeModel with the policy, then the weights. loadAnyModel reads either kind,
 * and granq's packed `.granq` files (pack.ts).
 */
import { copyFileSync, existsSync } from 'node:fs';
import nodePath from 'node:path';
import { GranqError } from '../errors.js';
import { loadStateDictFile, readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { readSidecarFor, sidecarPathFor, writeSidecar, type ModelSidecar } from '../io/sidecar.js';
import { importOnnx } from '../models/onnx-import.js';
import { checkModelPath, loadOnnxModel, loadWeightsWithSidecar, type LoadedModel } from '../models/load.js';
import { createModel } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { validatePolicy, type QuantPolicy } from './policy.js';
import { quantizeModel } from './quantize-model.js';
import { actRangeStates, loadActRangeStates, type EstimatorState } from './range-state.js';
import { loadPackedModel, PACK_EXT } from './pack.js';

const RANGES_KEY = 'granq_act_ranges';
// Fields that describe the teacher's own files or accuracy; they move under `teacher` in a student's sidecar.
const TEACHER_ONLY = ['measured_top1', 'safetensors_sha256', 'onnx_sha256', 'onnx_opset', 'onnx_ops', 'onnx_notes', 'source_checkpoint_sha256'];

/** The policy a sidecar declares, or null for a full-precision model. */
export function sidecarPolicy(sc: ModelSidecar, where: string): QuantPolicy | null {
  const q = sc.raw['quantization'];
  if (q === undefined || q === null) return null;
  try {
    return validatePolicy(q);
  } catch (e) {
    throw new GranqError(`${where}: quantization: ${(e as Error).message}`);
  }
}

export function saveQuantizedModel(path: string, student: Module, teacher: ModelSidecar, policy: QuantPolicy,
  fields: { model: string; measuredTop1?: number; zsq?: unknown }): void {
  writeSafetensors(path, student.stateDict(), { [RANGES_KEY]: JSON.stringify(actRangeStates(student)) });
  const raw: Record<string, unknown> = { ...teacher.raw };
  const moved: Record<string, unknown> = { model: teacher.model };
  for (const k of TEACHER_ONLY) {
    if (k in raw) moved[k] = raw[k];
    delete raw[k];
  }
  raw['teacher'] = moved;
  raw['quantization'] = policy;
  // A student of an ONNX teacher is rebuilt from that graph: a copy travels with it, named relative to the sidecar.
  if (typeof teacher.raw['graph'] === 'string') {
    const graphFile = path.replace(/\.safetensors$/, '') + '.graph.onnx';
    if (nodePath.resolve(teacher.raw['graph']) !== nodePath.resolve(graphFile)) copyFileSync(teacher.raw['graph'], graphFile);
    raw['graph'] = nodePath.basename(graphFile);
  }
  if (fields.zsq !== undefined) raw['zsq'] = fields.zsq;
  writeSidecar(sidecarPathFor(path), {
    ...teacher, raw, model: fields.model, measuredTop1: fields.measuredTop1,
  });
}

/** Rebuilds a quantized model saved by saveQuantizedModel (weights loaded strictly, ranges restored). */
export function loadQuantizedModel(path: string): { model: Module; sidecar: ModelSidecar; policy: QuantPolicy } {
  if (!existsSync(path)) throw new GranqError(`--model: no such file ${path}`);
  const sidecar = readSidecarFor(path);
  const policy = sidecarPolicy(sidecar, sidecarPathFor(path));
  if (!policy) throw new GranqError(`${sidecarPathFor(path)}: no 'quantization' policy; not a quantized model`);
  return { model: buildQuantized(path, sidecar, policy), sidecar, policy };
}

/**
 * Any model file granq reads, its sidecar read once: a full-precision model (.safetensors + sidecar, or ONNX), or a
 * quantized student (a sidecar with `quantization`), rebuilt quantized with its ranges; `policy` says which.
 */
export function loadAnyModel(path: string, flag = '--model'): LoadedModel & { policy: QuantPolicy | null } {
  if (path.endsWith(PACK_EXT)) {
    if (!existsSync(path)) throw new GranqError(`${flag}: no such file ${path}`);
    const p = loadPackedModel(path);
    return { model: p.model, sidecar: p.sidecar, path, policy: p.policy };
  }
  checkModelPath(path, flag);
  if (path.endsWith('.onnx')) return { ...loadOnnxModel(path), policy: null };
  const sidecar = readSidecarFor(path);
  const policy = sidecarPolicy(sidecar, sidecarPathFor(path));
  if (!policy) return { ...loadWeightsWithSidecar(path, sidecar), policy: null };
  return { model: buildQuantized(path, sidecar, policy), sidecar, path, policy };
}

function buildQuantized(path: string, sidecar: ModelSidecar, policy: QuantPolicy): Module {
  const graph = sidecar.raw['graph'];
  const fp = typeof graph === 'string' ? importOnnx(nodePath.resolve(nodePath.dirname(path), graph)) : createModel(sidecar.architecture, sidecar.numClasses);
  const { student } = quantizeModel(fp, policy, { warn: () => {} });
  try {
    student.loadStateDict(loadStateDictFile(path, { integers: 'skip' }));
  } catch (e) {
    if (e instanceof GranqError) throw new GranqError(`${path}: ${e.message}`);
    throw e;
  }
  const meta = readSafetensors(path).metadata[RANGES_KEY];
  let states: Record<string, EstimatorState> = {};
  if (meta !== undefined) {
    try {
      states = JSON.parse(meta) as Record<string, EstimatorState>;
    } catch (e) {
      throw new GranqError(`${path}: metadata ${RANGES_KEY} is not valid JSON (${(e as Error).message})`);
    }
  }
  loadActRangeStates(student, states, path);
  student.eval();
  return student;
}
