/**
 * The released GranQ rules (granq activations + slice weights) on the option-A teacher vs PyTorch's qlogits.
 * Rounding ties: an activation whose s·x − z lies within float32 noise of a .5 tie is rounded to neighbouring levels
 * by engines whose convolutions differ by ~1e-6 relative (ours vs PyTorch's, or our AVX-512 vs portable builds), and
 * one such flip moves a sample's logits by up to ~0.7. Such near-ties are common (a sample has ~300K activations), so
 * which sample flips depends on the build: at W4A4 the AVX-512 build flips sample 0 (an element of layer2.0.relu2
 * whose s·x − z is −4.5000019, 4 ulps from the tie), the portable build flips sample 5. The test therefore demands:
 * all samples within 1e-3 except at most one per bit width, and every sample's predicted class equal to PyTorch's.
 * Which side is "right" on sample 0: PyTorch 1.13 itself in float64, or with its native (non-oneDNN) convolution,
 * gives our logits there (≤ 1e-5), not the fixture's (scripts/torch-reference/resnet20_ptq.py --float64 --limit 8).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as F from '../../src/autograd/index.js';
import { nativeBackend, refBackend, withBackend, type Backend } from '../../src/backend/index.js';
import { loadStateDictFile } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/load.js';
import { quantizeModel } from '../../src/quant/index.js';
import { FIXTURES, noShared, SHARED_MODEL } from '../kit/shared.js';

const argmax = (d: Float32Array, i: number) => {
  let b = 0;
  for (let j = 1; j < 10; j++) if (d[i * 10 + j]! > d[i * 10 + b]!) b = j;
  return b;
};

describe('GranQ pipeline parity with PyTorch (granq_pipeline.safetensors)', { skip: noShared }, () => {
  const run = (be: Backend, label: string) => {
    for (const k of [3, 4, 5]) {
      test(`W${k}A${k} granq/slice logits within 1e-3 except at most one rounding-tie knife edge (${label})`, () => {
        withBackend(be, () => {
          const input = loadStateDictFile(path.join(FIXTURES, 'resnet20_cifar10_first8.safetensors'), { integers: 'skip' }).get('input')!;
          const want = loadStateDictFile(path.join(FIXTURES, 'granq_pipeline.safetensors'), { integers: 'skip' }).get(`qlogits.w${k}a${k}`)!;
          const { model } = loadModel(SHARED_MODEL);
          const { student } = quantizeModel(model, { wbits: k, abits: k, act: 'granq', weight: 'slice' });
          const got = F.noGrad(() => student.forward(input));
          const per = Array.from({ length: 8 }, (_, i) => {
            let e = 0;
            for (let j = i * 10; j < i * 10 + 10; j++) e = Math.max(e, Math.abs(got.data[j]! - want.data[j]!));
            return e;
          });
          process.stderr.write(`parity W${k}A${k} (${label}): per-sample max |logit diff| ${per.map((e) => e.toExponential(2)).join(' ')}\n`);
          const off = per.map((e, i) => [e, i] as const).filter(([e]) => e > 1e-3).map(([, i]) => i);
          assert.ok(off.length <= 1, `${off.length} samples differ by more than 1e-3: ${off.join(', ')}`);
          for (let i = 0; i < 8; i++) assert.equal(argmax(got.data, i), argmax(want.data, i), `sample ${i}: predicted class`);
        });
      });
    }
  };
  run(nativeBackend, 'native backend');
  run(refBackend, 'ref backend');
});
