/**
 * `granq quantize` output directories made cheaply, without training: the PTQ student (quantizeModel on the teacher)
 * saved with student-io, which is all `granq export RUN_DIR` reads (student.safetensors + student.json, and for an
 * ONNX teacher student.graph.onnx); a checkpoint holding a seeded generator, and log.jsonl + result.json, which is
 * what `granq report` and `analyze error --synthetic` read.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../../src/models/load.js';
import { preparePtq, quantizeModel, type QuantPolicy } from '../../src/quant/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { CHECKPOINT_FILE, saveCheckpoint } from '../../src/zsq/checkpoint.js';
import { Generator } from '../../src/zsq/generator.js';
import { saveQuantizedModel } from '../../src/quant/index.js';

/** `calibrateOn`: a CIFAR-10 folder whose first 256 training images calibrate static activation ranges (layer, channel-static). */
export function ptqRunDir(teacherPath: string, policy: QuantPolicy, calibrateOn?: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-run-'));
  const { model, sidecar } = loadModel(teacherPath);
  const { student } = calibrateOn
    ? preparePtq(model, policy, { dataDir: calibrateOn, format: 'cifar10', mean: sidecar.mean, std: sidecar.std, batch: 256, calib: 1, warn: () => {} })
    : quantizeModel(model, policy, { warn: () => {} });
  saveQuantizedModel(path.join(dir, 'student.safetensors'), student, sidecar, policy, { model: `${sidecar.model}_ptq` });
  return dir;
}

/** A run folder whose checkpoint holds a seeded generator (and a stand-in student tensor, which must be ignored). */
export function fakeRunWithGenerator(dir: string, seed: number, teacher?: string): Generator {
  const gen = new Generator(10, { rng: new Rng(7) });
  const tensors = new Map<string, Float32Array>([...gen.stateDict()].map(([k, t]) => [`generator.${k}`, t.data]));
  tensors.set('student.conv1.weight', new Float32Array(4));
  saveCheckpoint(path.join(dir, CHECKPOINT_FILE), {
    tensors, meta: { epoch: 1, iter: 0, rng: new Rng(0).getState(), optG: {}, optS: {} }, extra: { settings: { config: { seed }, ...(teacher ? { teacher: { path: teacher } } : {}) } },
  });
  return gen;
}


/** log.jsonl (3 epochs, test top-1 on the last two) and result.json of a finished W3A3 run of `teacher`. */
export function fakeRunFiles(dir: string, teacher: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const loss = (g: number, s: number | null) => ({ generator: g, margin: 0.01, ds: 4, as: 12, bns: 2, student: s });
  fs.writeFileSync(path.join(dir, 'log.jsonl'), [
    { epoch: 1, iters: 4, student_trains: false, loss: loss(9, null), lr_s: 1e-4, lr_g: 1e-3, wall_s: 1 },
    { epoch: 2, iters: 4, student_trains: true, loss: loss(4, -918), lr_s: 1e-4, lr_g: 1e-3, test_top1: 0.86, wall_s: 1 },
    { epoch: 3, iters: 4, student_trains: true, loss: loss(3, -919), lr_s: 1e-5, lr_g: 1e-4, test_top1: 0.87, wall_s: 1 },
  ].map((r) => `${JSON.stringify(r)}\n`).join(''));
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({
    model: 'fake', teacher: { path: teacher, model: 'teacher' }, policy: { wbits: 3, abits: 3, act: 'granq', weight: 'slice' }, preset: 'tiny', seed: 2,
    epochs: 3, iterations: 12, test: { dataset: 'cifar10-test', images: 256 }, fp_top1: 0.9, ptq_top1: 0.85, final_top1: 0.87,
    best_epoch: { epoch: 3, top1: 0.87 }, wall_seconds: 3,
  }));
}
