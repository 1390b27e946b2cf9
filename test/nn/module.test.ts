import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GranqError } from '../../src/errors.js';
import { BatchNorm2d, Conv2d, Linear, ReLU, Sequential } from '../../src/nn/index.js';
import { createModel } from '../../src/models/registry.js';
import { Tensor } from '../../src/tensor/tensor.js';

test('state dict uses PyTorch dotted keys and round-trips', () => {
  const m = new Sequential(new Conv2d(3, 4, 3, { bias: false }), new BatchNorm2d(4), new ReLU(), new Linear(4, 2));
  const keys = [...m.stateDict().keys()];
  assert.deepEqual(keys, ['0.weight', '1.weight', '1.bias', '3.weight', '3.bias', '1.running_mean', '1.running_var']);
  const other = new Sequential(new Conv2d(3, 4, 3, { bias: false }), new BatchNorm2d(4), new ReLU(), new Linear(4, 2));
  other.loadStateDict(m.stateDict());
  for (const [k, t] of m.stateDict()) assert.deepEqual(other.stateDict().get(k)!.toArray(), t.toArray(), k);
});

test('loadStateDict lists missing, unexpected and mismatched keys in one error', () => {
  const m = new Sequential(new Linear(4, 2), new BatchNorm2d(3));
  const sd = new Map(m.stateDict());
  sd.delete('1.running_var');
  sd.set('0.weight', Tensor.zeros([2, 5]));
  sd.set('2.weight', Tensor.zeros([1]));
  assert.throws(() => m.loadStateDict(sd), (e: unknown) => {
    assert.ok(e instanceof GranqError);
    assert.match(e.message, /shape mismatch: 0\.weight \(expected \[2,4\], got \[2,5\]\)/);
    assert.match(e.message, /missing keys: 1\.running_var/);
    assert.match(e.message, /unexpected keys: 2\.weight/);
    return true;
  });
  // Non-strict loading still refuses shape mismatches but tolerates the rest.
  sd.set('0.weight', Tensor.zeros([2, 4]));
  m.loadStateDict(sd, { strict: false });
});

test('train() and eval() reach every submodule', () => {
  const m = createModel('resnet20-a', 10);
  m.eval();
  assert.ok(m.namedModules().every(([, x]) => !x.training));
  m.train();
  assert.ok(m.namedModules().every(([, x]) => x.training));
});

test('ResNet-20 parameter counts and key layouts match the published models', () => {
  const count = (name: string, classes: number) => createModel(name, classes).parameters().reduce((s, t) => s + t.size, 0);
  assert.equal(count('resnet20-a', 10), 269_722);
  assert.equal(count('resnet20-b', 10), 272_474);
  assert.equal(count('resnet20-b', 100), 278_324);
  const a = [...createModel('resnet20-a', 10).stateDict().keys()];
  assert.ok(a.includes('layer2.0.bn1.running_mean') && a.includes('linear.bias') && a.includes('conv1.weight'));
  const b = [...createModel('resnet20-b', 100).stateDict().keys()];
  for (const k of ['features.init_block.conv.conv.weight', 'features.stage3.unit1.identity_conv.bn.running_var',
    'features.stage1.unit3.body.conv2.conv.weight', 'output.weight']) assert.ok(b.includes(k), k);
  assert.ok(!b.includes('features.stage1.unit1.identity_conv.conv.weight'));
  assert.throws(() => createModel('resnet21-a', 10), GranqError);
  assert.throws(() => createModel('resnet20-a', 1), GranqError);
});
