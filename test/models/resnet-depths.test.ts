/**
 * CIFAR ResNets of any depth 6n+2 from the registry and from sidecars: the parameter counts of akamaster's
 * option-A models (its README: 20 -> 0.27M ... 110 -> 1.7M, printed exactly by its test()), the sidecar spellings, and
 * a seeded ResNet-56 option-A file whose sidecar says `resnet56-optionA`: loaded like the ResNet-20 one, its logits
 * equal those of the ONNX import of the same weights, and `granq eval` runs on it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { noGrad } from '../../src/autograd/index.js';
import { writeFileAtomic } from '../../src/io/atomic.js';
import { encodeModel } from '../../src/io/onnx-proto.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { normalizeArchitecture } from '../../src/io/sidecar.js';
import { loadModel } from '../../src/models/load.js';
import { createModel, MODEL_NAMES } from '../../src/models/registry.js';
import { manualSeed } from '../../src/nn/init.js';
import { exportOnnx } from '../../src/quant/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { granq, lastJson } from '../kit/cli.js';

const paramCount = (name: string) => createModel(name, 10).parameters().reduce((s, p) => s + p.size, 0);

test('option-A parameter counts equal akamaster\'s for depths 20, 32, 44, 56, 110; -b adds the two projection shortcuts', () => {
  const aka: Record<number, number> = { 20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962 };
  for (const [d, n] of Object.entries(aka)) {
    assert.equal(paramCount(`resnet${d}-a`), n, `resnet${d}-a`);
    // Two 1x1 projections (16->32, 32->64) with their BatchNorms: 512 + 64 + 2048 + 128 weights.
    assert.equal(paramCount(`resnet${d}-b`), n + 2752, `resnet${d}-b`);
  }
  assert.deepEqual(MODEL_NAMES.slice(0, 2), ['resnet20-a', 'resnet20-b']);
  // Depth 8 (n = 1), by hand: stem 432 + 32, stage 1: 4,672, stage 2: 13,952, stage 3: 55,552, fc 650.
  assert.equal(paramCount('resnet8-a'), 75_290);
});

test('sidecar spellings of any depth 6n+2; other depths and names are one error naming the accepted forms', () => {
  assert.equal(normalizeArchitecture('resnet56-optionA'), 'resnet56-a');
  assert.equal(normalizeArchitecture('resnet110-optionB'), 'resnet110-b');
  assert.equal(normalizeArchitecture('resnet44-b'), 'resnet44-b');
  for (const bad of ['resnet21-a', 'resnet056-a', 'resnet56-c', 'resnet2-a', 'resnet56']) {
    assert.throws(() => normalizeArchitecture(bad), /architecture: expected resnet<6n\+2>-a\|b\|optionA\|optionB .*got "/, bad);
  }
  assert.throws(() => createModel('resnet21-a', 10), /model: unknown architecture 'resnet21-a'; expected resnet<6n\+2>-a\|b/);
});

test('a resnet56-optionA safetensors file loads like the ResNet-20 one; logits equal its ONNX import; granq eval runs', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-r56-'));
  manualSeed(56);
  const m = createModel('resnet56-a', 10);
  // Non-trivial BatchNorm statistics, so the test sees them used.
  const rng = new Rng(7);
  for (const [k, t] of m.stateDict()) {
    if (k.endsWith('running_mean')) t.data.forEach((_, i, a) => { a[i] = 0.2 * (rng.uniform() - 0.5); });
    if (k.endsWith('running_var')) t.data.forEach((_, i, a) => { a[i] = 0.5 + rng.uniform(); });
  }
  const sidecar = {
    model: 'resnet56_seeded', architecture: 'resnet56-optionA', num_classes: 10,
    input: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  };
  const st = path.join(dir, 'resnet56.safetensors');
  writeSafetensors(st, m.stateDict());
  fs.writeFileSync(path.join(dir, 'resnet56.json'), JSON.stringify(sidecar));
  const onnx = path.join(dir, 'resnet56-graph.onnx');
  writeFileAtomic(onnx, [encodeModel(exportOnnx(m, { input: [3, 32, 32] }).model)]);
  fs.writeFileSync(path.join(dir, 'resnet56-graph.json'), JSON.stringify(sidecar));

  const fromFile = loadModel(st);
  assert.equal(fromFile.sidecar.architecture, 'resnet56-a');
  const fromOnnx = loadModel(onnx);
  const x = new Tensor(Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => rng.uniform() * 2 - 1), [4, 3, 32, 32]);
  fromFile.model.eval();
  fromOnnx.model.eval();
  const a = noGrad(() => fromFile.model.forward(x));
  const b = noGrad(() => fromOnnx.model.forward(x));
  assert.deepEqual(a.shape, [4, 10]);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.size; i++) {
    scale = Math.max(scale, Math.abs(a.data[i]!));
    diff = Math.max(diff, Math.abs(a.data[i]! - b.data[i]!));
  }
  assert.ok(scale > 0.05, `logits too small to compare (${scale})`);
  assert.ok(diff <= 1e-4 * scale, `max |safetensors - onnx| ${diff} (scale ${scale})`);

  // The CLI on 16 images of a CIFAR-10 test file written here; both files give the same predictions.
  const data = path.join(dir, 'data', 'cifar-10-batches-bin');
  fs.mkdirSync(data, { recursive: true });
  fs.writeFileSync(path.join(data, 'test_batch.bin'), Buffer.from(Uint8Array.from({ length: 16 * 3073 }, (_, i) => (i % 3073 === 0 ? i % 10 : rng.randint(0, 256)))));
  const e1 = granq('eval', '--model', st, '--data', data, '--json');
  assert.equal(e1.code, 0, e1.stderr);
  const e2 = granq('eval', '--model', onnx, '--data', data, '--json');
  assert.equal(e2.code, 0, e2.stderr);
  assert.equal(lastJson(e1.stdout).images, 16);
  assert.equal(lastJson(e1.stdout).correct, lastJson(e2.stdout).correct);
});
