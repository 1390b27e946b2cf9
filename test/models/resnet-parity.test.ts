/** PyTorch parity of the option-A ResNet-20 teacher on the fixture's first 8 test images. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as F from '../../src/autograd/index.js';
import { nativeBackend, refBackend, withBackend } from '../../src/backend/index.js';
import { loadStateDictFile } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/load.js';
import type { ResNetCifarA } from '../../src/models/resnet-cifar.js';
import { assertClose, maxAbsDiff } from '../kit/compare.js';
import { FIXTURES, noShared, SHARED_MODEL } from '../kit/shared.js';

describe('ResNet-20 option A vs PyTorch fixtures', { skip: noShared }, () => {
  const fx = () => loadStateDictFile(path.join(FIXTURES, 'resnet20_cifar10_first8.safetensors'), { integers: 'skip' });

  for (const be of [nativeBackend, refBackend]) {
    test(`stem_out within 1e-5 and logits within 1e-4 (${be.name} backend)`, () => {
      withBackend(be, () => {
        const f = fx();
        const { model } = loadModel(SHARED_MODEL);
        const m = model as ResNetCifarA;
        const input = f.get('input')!;
        const stem = F.noGrad(() => m.relu.forward(m.bn1.forward(m.conv1.forward(input))));
        assertClose(stem.data, f.get('stem_out')!.data, { atol: 1e-5, rtol: 0 }, 'stem_out');
        const logits = F.noGrad(() => model.forward(input));
        assertClose(logits.data, f.get('logits')!.data, { atol: 1e-4, rtol: 0 }, 'logits');
        const err = maxAbsDiff(logits.data, f.get('logits')!.data);
        assert.ok(err < 1e-4, `max |logit diff| ${err}`);
      });
    });
  }
});
