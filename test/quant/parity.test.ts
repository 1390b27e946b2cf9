/**
 * The released GranQ rules (granq activations + slice weights) on the option-A teacher vs PyTorch's qlogits.
 * Knife edge: at W4A4, sample 0 has one activation (layer2.0.relu2, channel 13, element 114) whose s·x − z is
 * -4.5000019, 2 float32 ulps from a rounding tie; our FP conv differs from torch's by ~1e-6 relative, so the two
 * round it to neighbouring levels and the logits of that sample differ by 0.72. The test checks the element is
 * within 1e-5 of the tie and that rounding it the other way reproduces torch within 1e-3.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as F from '../../src/autograd/index.js';
import { nativeBackend, refBackend, withBackend, type Backend } from '../../src/backend/index.js';
import { qparams } from '../../src/backend/ref/quant.js';
import { loadStateDictFile } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/load.js';
import { actQuantizers, quantizeModel } from '../../src/quant/index.js';
import { FIXTURES, noShared, SHARED_MODEL } from '../kit/shared.js';

const KNIFE_EDGE = { bits: 4, path: 'layer2.0.relu2.1', sample: 0, channel: 13, index: 114 };
const f = Math.fround;

function maxDiffPerSample(a: Float32Array, b: Float32Array, classes: number): number[] {
  return Array.from({ length: a.length / classes }, (_, i) => {
    let m = 0;
    for (let j = i * classes; j < (i + 1) * classes; j++) m = Math.max(m, Math.abs(a[j]! - b[j]!));
    return m;
  });
}

describe('GranQ pipeline parity with PyTorch (granq_pipeline.safetensors)', { skip: noShared }, () => {
  const run = (be: Backend, label: string) => {
    for (const k of [3, 4, 5]) {
      test(`W${k}A${k} granq/slice logits within 1e-3 (${label})`, () => {
        withBackend(be, () => {
          const input = loadStateDictFile(path.join(FIXTURES, 'resnet20_cifar10_first8.safetensors'), { integers: 'skip' }).get('input')!;
          const want = loadStateDictFile(path.join(FIXTURES, 'granq_pipeline.safetensors'), { integers: 'skip' }).get(`qlogits.w${k}a${k}`)!;
          const { model } = loadModel(SHARED_MODEL);
          const { student } = quantizeModel(model, { wbits: k, abits: k, act: 'granq', weight: 'slice' });
          let tieDistance = NaN;
          if (k === KNIFE_EDGE.bits) {
            const q = actQuantizers(student).find(([p]) => p === KNIFE_EDGE.path)![1];
            q.hooks.push((x, y) => {
              const hw = x.shape[2]! * x.shape[3]!;
              const at = (KNIFE_EDGE.sample * x.shape[1]! + KNIFE_EDGE.channel) * hw;
              const row = x.data.subarray(at, at + hw);
              const { s, z } = qparams(Math.min(...row), Math.max(...row), k);
              const v = f(f(s * row[KNIFE_EDGE.index]!) - z);
              tieDistance = Math.abs(v - Math.floor(v) - 0.5);
              const other = v - Math.floor(v) > 0.5 ? Math.floor(v) : Math.ceil(v);
              y.data[at + KNIFE_EDGE.index] = f(f(other + z) / s);
            });
          }
          const got = F.noGrad(() => student.forward(input));
          const per = maxDiffPerSample(got.data, want.data, 10);
          const err = Math.max(...per);
          process.stderr.write(`parity W${k}A${k} (${label}): max |diff| ${err.toExponential(3)}` +
            (k === KNIFE_EDGE.bits ? ` (knife-edge element rounded like torch; its distance to the tie ${tieDistance.toExponential(2)})` : '') + '\n');
          if (k === KNIFE_EDGE.bits) assert.ok(tieDistance < 1e-5, `knife-edge element is ${tieDistance} from the tie`);
          assert.ok(err <= 1e-3, `max |logit diff| per sample ${per.map((e) => e.toExponential(2)).join(' ')}`);
        });
      });
    }
    test(`W4A4 without the knife-edge flip: samples 1..7 within 1e-3, same predicted classes (${label})`, () => {
      withBackend(be, () => {
        const input = loadStateDictFile(path.join(FIXTURES, 'resnet20_cifar10_first8.safetensors'), { integers: 'skip' }).get('input')!;
        const want = loadStateDictFile(path.join(FIXTURES, 'granq_pipeline.safetensors'), { integers: 'skip' }).get('qlogits.w4a4')!;
        const { model } = loadModel(SHARED_MODEL);
        const { student } = quantizeModel(model, { wbits: 4, abits: 4, act: 'granq', weight: 'slice' });
        const got = F.noGrad(() => student.forward(input));
        const per = maxDiffPerSample(got.data, want.data, 10);
        process.stderr.write(`parity W4A4 unflipped (${label}): per-sample max |diff| ${per.map((e) => e.toExponential(2)).join(' ')}\n`);
        assert.ok(Math.max(...per.slice(1)) <= 1e-3);
        const argmax = (d: Float32Array, i: number) => { let b = 0; for (let j = 1; j < 10; j++) if (d[i * 10 + j]! > d[i * 10 + b]!) b = j; return b; };
        for (let i = 0; i < 8; i++) assert.equal(argmax(got.data, i), argmax(want.data, i), `sample ${i}`);
      });
    });
  };
  run(nativeBackend, 'native backend');
  run(refBackend, 'ref backend');
});
