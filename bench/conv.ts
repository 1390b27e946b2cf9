/**
 * conv2d micro-benchmark on the native backend: ResNet-20's conv shapes at batch 64, forward / backward data /
 * backward weight, median of repeated runs after warm-up, and an estimate for the whole model's convs; then the
 * zero-shot generator's three convs; then depthwise and grouped convs (MobileNetV2-style).
 * Run: node dist/bench/conv.js [batch]   (threads from GRANQ_THREADS, else the core count)
 */
import type { Conv2dShape } from '../src/backend/backend.js';
import { nativeBackend } from '../src/backend/native.js';
import { randomFloats } from '../test/kit/random.js';
import { median } from '../src/cli/timing.js';

interface BenchShape { name: string; ic: number; oc: number; hw: number; stride: number; count: number; groups?: number }

// ResNet-20 (CIFAR): each 3x3 conv, pad 1, with how many times it occurs in the model.
const SHAPES: BenchShape[] = [
  { name: '3->16 @32', ic: 3, oc: 16, hw: 32, stride: 1, count: 1 },
  { name: '16->16 @32', ic: 16, oc: 16, hw: 32, stride: 1, count: 6 },
  { name: '16->32 @32 s2', ic: 16, oc: 32, hw: 32, stride: 2, count: 1 },
  { name: '32->32 @16', ic: 32, oc: 32, hw: 16, stride: 1, count: 5 },
  { name: '32->64 @16 s2', ic: 32, oc: 64, hw: 16, stride: 2, count: 1 },
  { name: '64->64 @8', ic: 64, oc: 64, hw: 8, stride: 1, count: 5 },
];
// The GDFQ/AdaDFQ CIFAR generator's convs (count 0: not part of the ResNet totals).
const GENERATOR: BenchShape[] = [
  { name: 'gen 128->128 @16', ic: 128, oc: 128, hw: 16, stride: 1, count: 0 },
  { name: 'gen 128->64 @32', ic: 128, oc: 64, hw: 32, stride: 1, count: 0 },
  { name: 'gen 64->3 @32', ic: 64, oc: 3, hw: 32, stride: 1, count: 0 },
];
// Depthwise (groups = ic) and grouped 3x3 convs, not part of the ResNet totals.
const GROUPED: BenchShape[] = [
  { name: 'dw 96 @16', ic: 96, oc: 96, hw: 16, stride: 1, count: 0, groups: 96 },
  { name: 'dw 96 @16 s2', ic: 96, oc: 96, hw: 16, stride: 2, count: 0, groups: 96 },
  { name: 'dw 32->64 @32', ic: 32, oc: 64, hw: 32, stride: 1, count: 0, groups: 32 },
  { name: 'g4 64->64 @16', ic: 64, oc: 64, hw: 16, stride: 1, count: 0, groups: 4 },
];

/** Median milliseconds of fn over enough runs to fill ~0.4 s, after warm-up. */
function time(fn: () => void): number {
  for (let i = 0; i < 3; i++) fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 7 || (performance.now() - start < 400 && times.length < 200)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

const batch = Number(process.argv[2] ?? 64);
console.log(`conv2d native, batch ${batch}, ${nativeBackend.numThreads()} threads`);
console.log('shape             |  fwd ms  GFLOP/s | bwd_data ms GFLOP/s | bwd_weight ms GFLOP/s');
let fwdTotal = 0;
let trainTotal = 0;
for (const b of [...SHAPES, ...GENERATOR, ...GROUPED]) {
  const oh = Math.floor((b.hw + 2 - 3) / b.stride) + 1;
  const groups = b.groups ?? 1;
  const s: Conv2dShape = { n: batch, ic: b.ic, ih: b.hw, iw: b.hw, oc: b.oc, kh: 3, kw: 3, stride: b.stride, pad: 1, oh, ow: oh, groups };
  const x = randomFloats(batch * b.ic * b.hw * b.hw, 1);
  const weight = randomFloats((b.oc * b.ic * 9) / groups, 2);
  const bias = null;
  const y = new Float32Array(batch * b.oc * oh * oh);
  const dy = randomFloats(y.length, 3);
  const dx = new Float32Array(x.length);
  const dweight = new Float32Array(weight.length);
  const flops = (2 * batch * b.oc * oh * oh * b.ic * 9) / groups;
  const tf = time(() => nativeBackend.conv2dFwd({ ...s, x, weight, bias, y }));
  const td = time(() => nativeBackend.conv2dBwdData({ ...s, dy, weight, dx }));
  const tw = time(() => nativeBackend.conv2dBwdWeight({ ...s, x, dy, dweight, dbias: null }));
  const g = (ms: number) => (flops / ms / 1e6).toFixed(1).padStart(7);
  console.log(
    `${b.name.padEnd(17)} | ${tf.toFixed(3).padStart(7)} ${g(tf)} | ${td.toFixed(3).padStart(10)} ${g(td)} | ` +
      `${tw.toFixed(3).padStart(12)} ${g(tw)}`,
  );
  fwdTotal += b.count * tf;
  // The first conv needs no input gradient in training.
  trainTotal += b.count * (tf + (b.ic === 3 ? 0 : td) + tw);
}
const imgs = (ms: number) => ((batch * 1000) / ms).toFixed(0);
console.log(`ResNet-20 convs only: forward ${fwdTotal.toFixed(2)} ms/batch = ${imgs(fwdTotal)} img/s; ` +
  `training step ${trainTotal.toFixed(2)} ms/batch = ${imgs(trainTotal)} img/s`);
