/**
 * granq pack (quant/pack.ts, cli/pack.ts): bit packing round trips; a packed student rebuilt from the file alone gives
 * the student's logits bit for bit (channel, channel+mse, slice with its 1x1 convs kept as float32); its size; the
 * CLI round trip through granq eval; bad input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as F from '../../src/autograd/index.js';
import { loadPackedModel, loadQuantizedModel, packBits, unpackBits, writePackedModel, type QuantPolicy } from '../../src/quant/index.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { DEFAULT_TEACHER } from '../../src/models/default-teacher.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertBitEqual } from '../kit/compare.js';
import { assertOneLineError, granq, lastJson } from '../kit/cli.js';
import { ptqRunDir } from '../kit/run-dir.js';
import { CIFAR10_DIR, noShared } from '../kit/shared.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'granq-pack-'));

describe('granq pack', () => {
  test('packBits / unpackBits: every width 2..9, odd lengths, the extreme codes', () => {
    const rng = new Rng(5);
    for (let width = 2; width <= 9; width++) {
      for (const n of [1, 7, 17, 33, 1000]) {
        const lo = -(2 ** (width - 1));
        const codes = Int32Array.from({ length: n }, (_, i) => (i === 0 ? lo : i === 1 ? -lo - 1 : lo + Math.floor(rng.uniform() * 2 ** width)));
        const bytes = packBits(codes, width);
        assert.equal(bytes.length, Math.ceil((n * width) / 8));
        assert.deepEqual(unpackBits(bytes, n, width), codes, `width ${width} n ${n}`);
      }
    }
  });

  const POLICIES: [QuantPolicy, { coded: number; kept: number }][] = [
    [{ wbits: 4, abits: 4, act: 'granq', weight: 'channel' }, { coded: 22, kept: 0 }],
    [{ wbits: 3, abits: 3, act: 'granq', weight: 'channel', weightClip: 'mse' }, { coded: 22, kept: 0 }],
    [{ wbits: 4, abits: 4, act: 'granq', weight: 'slice' }, { coded: 20, kept: 2 }],
  ];
  for (const [policy, want] of POLICIES) {
    test(`W${policy.wbits}A${policy.abits} ${policy.weight}${policy.weightClip ? `+${policy.weightClip}` : ''}: the file alone gives the student's logits bit for bit`, () => {
      const run = ptqRunDir(DEFAULT_TEACHER, policy);
      const { model, sidecar } = loadQuantizedModel(path.join(run, 'student.safetensors'));
      const file = path.join(tmp(), 'm.granq');
      const { weights, bytes } = writePackedModel(file, model, sidecar, policy);
      assert.equal(weights.filter((w) => w.stored === 'codes').length, want.coded);
      assert.equal(weights.filter((w) => w.stored === 'f32').length, want.kept);
      const packed = loadPackedModel(file);
      assert.deepEqual(packed.policy, policy);
      const x = Tensor.randn([5, 3, 32, 32], new Rng(11));
      assertBitEqual(F.noGrad(() => packed.model.forward(x)).data, F.noGrad(() => model.forward(x)).data, 'logits');
      let fp = 0;
      for (const [, t] of model.stateDict()) fp += 4 * t.size;
      // Codes at k bits: W4 channel within 1/7 of float32 (the non-weight floats, scales and the header are the rest).
      if (policy.weight === 'channel') assert.ok(bytes <= fp / (policy.wbits === 4 ? 7 : 8.5), `${bytes} bytes against ${fp} of float32`);
    });
  }

  test('CLI: granq pack, then granq eval --model FILE.granq: the student\'s predictions; bad input is one line', { skip: noShared }, () => {
    const run = ptqRunDir(DEFAULT_TEACHER, { wbits: 4, abits: 4, act: 'granq', weight: 'channel' });
    const file = path.join(tmp(), 'w4.granq');
    const p = granq('pack', run, '--out', file);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /22 bit-packed/);
    assert.match(p.stdout, /bytes .* of float32: 1\/7\.\d\d/);
    const a = granq('eval', '--model', file, '--data', CIFAR10_DIR, '--limit', '500', '--json');
    const b = granq('eval', '--model', path.join(run, 'student.safetensors'), '--data', CIFAR10_DIR, '--limit', '500', '--json');
    assert.equal(a.code, 0, a.stderr);
    assert.equal(lastJson(a.stdout).top1, lastJson(b.stdout).top1);
    assert.equal(lastJson(a.stdout).correct ?? lastJson(a.stdout).top1, lastJson(b.stdout).correct ?? lastJson(b.stdout).top1);

    assertOneLineError(granq('pack', run, '--out', path.join(tmp(), 'w4.bin')), 1, /--out: expected a file name ending in \.granq/);
    assertOneLineError(granq('pack', path.join(run, 'nope'), '--out', file), 1, /RUN_DIR: expected a granq quantize output directory/);
    const notPack = path.join(tmp(), 'x.granq');
    writeSafetensors(notPack, { w: Tensor.zeros([2]) });
    assertOneLineError(granq('eval', '--model', notPack, '--data', CIFAR10_DIR, '--limit', '10'), 1, /not a granq pack file/);
    assertOneLineError(granq('eval', '--model', path.join(tmp(), 'missing.granq')), 1, /--model: no such file/);
  });
});
