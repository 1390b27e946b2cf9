/**
 * A `granq quantize` output directory made cheaply: the PTQ student (quantizeModel on the teacher, no training)
 * saved with student-io, which is all `granq export RUN_DIR` reads (student.safetensors + student.json, and for an
 * ONNX teacher student.graph.onnx).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../../src/models/load.js';
import { quantizeModel, type QuantPolicy } from '../../src/quant/index.js';
import { saveQuantizedModel } from '../../src/zsq/student-io.js';

export function ptqRunDir(teacherPath: string, policy: QuantPolicy): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-run-'));
  const { model, sidecar } = loadModel(teacherPath);
  const { student } = quantizeModel(model, policy, { warn: () => {} });
  saveQuantizedModel(path.join(dir, 'student.safetensors'), student, sidecar, policy, { model: `${sidecar.model}_ptq` });
  return dir;
}
