/**
 * Full-precision ResNet-20 throughput: forward without grad (batch 64 and 256) and one SGD training step
 * (batch 64: forward, cross-entropy, backward, Nesterov SGD update, the graph's buffers back to the pool, as
 * `granq train`'s step), after warm-up, median of timed runs. scripts/torch-reference/speed_bench.py is PyTorch's twin.
 */
import * as F from '../src/autograd/index.js';
import { backend } from '../src/backend/index.js';
import { createModel } from '../src/models/registry.js';
import { SGD } from '../src/optim/index.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor } from '../src/tensor/tensor.js';
import { timeIt } from '../src/cli/timing.js';

export { timeIt };

export interface FpBenchResult {
  forward_b64: number;
  forward_b256: number;
  train_b64: number;
  threads: number;
  train_rss_mib: number;
}

export function benchFp(log: (s: string) => void): FpBenchResult {
  const rng = new Rng(0);
  const model = createModel('resnet20-a', 10);
  const forward = (batch: number) => {
    model.eval();
    const x = Tensor.randn([batch, 3, 32, 32], rng);
    const s = timeIt(() => F.noGrad(() => model.forward(x)));
    return batch / s;
  };
  const forward_b64 = forward(64);
  log(`forward  batch 64 : ${forward_b64.toFixed(0)} img/s`);
  const forward_b256 = forward(256);
  log(`forward  batch 256: ${forward_b256.toFixed(0)} img/s`);

  model.train();
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
  const x = Tensor.randn([64, 3, 32, 32], rng);
  const y = Int32Array.from({ length: 64 }, () => rng.randint(0, 10));
  let peakRss = 0;
  const s = timeIt(() => {
    const loss = F.crossEntropy(model.forward(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    F.releaseGraph([loss]); // as granq train's step does (src/train/run.ts): the buffers go back to the pool
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  });
  const train_b64 = 64 / s;
  log(`train    batch 64 : ${train_b64.toFixed(0)} img/s (peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB)`);
  return { forward_b64, forward_b256, train_b64, threads: backend().numThreads(), train_rss_mib: Math.round(peakRss / 2 ** 20) };
}
