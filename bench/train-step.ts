/**
 * One `granq train` step (forward, cross-entropy, backward, SGD Nesterov with weight decay) of a CIFAR ResNet on a
 * fixed random batch: milliseconds per step after warm-up, then the same steps op by op (profileOps: forward and
 * backward milliseconds per step for each op, and the time outside all ops, as `granq bench iter --profile`).
 * Run: node --single-threaded-gc dist/bench/train-step.js [model resnet20-b] [batch 128] [steps 10]
 */
import * as F from '../src/autograd/index.js';
import { nativeBackend } from '../src/backend/native.js';
import { iterProfile } from '../src/cli/bench-iter.js';
import { createModel } from '../src/models/registry.js';
import { SGD } from '../src/optim/index.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor } from '../src/tensor/tensor.js';

const [arch = 'resnet20-b', batchArg = '128', stepsArg = '10'] = process.argv.slice(2);
const batch = Number(batchArg);
const steps = Number(stepsArg);
const model = createModel(arch, 10).train();
const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
const x = Tensor.randn([batch, 3, 32, 32], new Rng(1));
const y = Int32Array.from({ length: batch }, (_, i) => i % 10);
const step = () => {
  const loss = F.crossEntropy(model.forward(x), y);
  opt.zeroGrad();
  loss.backward();
  opt.step();
  F.releaseGraph([loss]);
};

for (let i = 0; i < 3; i++) step();
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const ms = (performance.now() - t0) / steps;
console.log(`${arch} training step, batch ${batch}, ${nativeBackend.numThreads()} threads: ${ms.toFixed(1)} ms ` +
  `(${((batch * 1000) / ms).toFixed(0)} img/s), mean of ${steps} steps`);
const t1 = performance.now();
const profile = F.profileOps(() => {
  for (let i = 0; i < steps; i++) step();
});
const profiledMs = (performance.now() - t1) / steps;
console.log(`op by op (ms per step; ${profiledMs.toFixed(1)} ms per profiled step):`);
for (const p of iterProfile(profile, profiledMs, steps)) {
  console.log(`  ${p.op.padEnd(24)} x${String(p.calls).padStart(3)}  forward ${p.forward_ms.toFixed(2).padStart(7)}` +
    `  backward ${p.backward_ms.toFixed(2).padStart(7)}`);
}
