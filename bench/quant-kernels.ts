#!/usr/bin/env node
/**
 * Quantizer kernel timings at 3 bits (`node dist/bench/quant-kernels.js [--json]`): GranQ rows, the conventional
 * channel loop and the layer-wise (per-tensor) quantizer, with and without its min/max observe (two reduceFwd calls).
 * Kernels are timed in interleaved rounds (the machine is shared and noisy) and each reports the median sample.
 * Rows GB/s counts 2 reads + 1 write of float32. PyTorch's GranQ rows (same formula, CPU): 3.1 ms on [64,16,32,32],
 * 0.37 ms on [64,64,8,8].
 */
import { REDUCE, nativeBackend as nb, type Quad } from '../src/backend/index.js';
import { randomNormal } from '../test/kit/random.js';
import { median } from '../src/cli/timing.js';

const BITS = 3;
const TORCH_MS: Record<string, number> = { '64,16,32,32': 3.1, '64,64,8,8': 0.37 };
const RESNET20: [Quad, number][] = [[[0, 16, 32, 32], 7], [[0, 32, 16, 16], 6], [[0, 64, 8, 8], 6]];
const BATCHES = [16, 32, 64, 128, 256, 512];

type Kernel = 'rows' | 'loop' | 'layer' | 'layerObs';
const KERNELS: Kernel[] = ['rows', 'loop', 'layer', 'layerObs'];
type Times = Record<Kernel, number>;

function kernels(shape: Quad): Record<Kernel, () => void> {
  const [n, c, h, w] = shape;
  const len = n * c * h * w;
  const x = randomNormal(len, n * 31 + c).map((v) => Math.max(0, v)); // post-ReLU activations
  const y = new Float32Array(len);
  const mins = new Float32Array(1);
  const maxs = new Float32Array(1);
  const all: [boolean, boolean, boolean, boolean] = [true, true, true, true];
  const layer = () => nb.quantGroupsFwd({ outer: 1, groups: 1, inner: len, bits: BITS, clamp: true, mins, maxs, x, y });
  nb.reduceFwd({ op: REDUCE.min, shape, mask: all, x, y: mins });
  nb.reduceFwd({ op: REDUCE.max, shape, mask: all, x, y: maxs });
  return {
    rows: () => nb.quantRowsFwd({ rows: n * c, cols: h * w, bits: BITS, clamp: false, x, y, rowMin: null, rowMax: null }),
    loop: () => nb.quantChannelLoopFwd({ n, c, hw: h * w, bits: BITS, x, y }),
    layer,
    layerObs: () => {
      nb.reduceFwd({ op: REDUCE.max, shape, mask: all, x, y: maxs });
      nb.reduceFwd({ op: REDUCE.min, shape, mask: all, x, y: mins });
      layer();
    },
  };
}

/** Median seconds per kernel: warm-up, then rounds that run every kernel in turn until `budget` seconds pass. */
function timeShape(shape: Quad, budget: number): Times {
  const fns = kernels(shape);
  const samples: Record<Kernel, number[]> = { rows: [], loop: [], layer: [], layerObs: [] };
  for (const k of KERNELS) for (let i = 0; i < 3; i++) fns[k]();
  const start = performance.now();
  let rounds = 0;
  while (rounds < 7 || ((performance.now() - start) / 1000 < budget && rounds < 400)) {
    for (const k of KERNELS) {
      const t0 = performance.now();
      fns[k]();
      samples[k].push((performance.now() - t0) / 1000);
    }
    rounds++;
  }
  return Object.fromEntries(KERNELS.map((k) => [k, median(samples[k])])) as Times;
}

const ms = (s: number) => (s * 1e3).toFixed(3).padStart(9);
const ratio = (a: number, b: number) => (a / b).toFixed(2).padStart(6);

export function benchQuant(log: (s: string) => void) {
  log(`quant kernels, ${BITS} bits, ${nb.numThreads()} threads; ms = median; rows GB/s = 12 bytes/element`);
  log('shape               rows ms   GB/s   loop ms  layer ms layer+obs  rows/layer+obs loop/rows  torch/rows');
  const single: Record<string, Times & { gbs: number }> = {};
  for (const key of Object.keys(TORCH_MS)) {
    const shape = key.split(',').map(Number) as Quad;
    const t = timeShape(shape, 2);
    const gbs = (12 * shape.reduce((p, d) => p * d, 1)) / t.rows / 1e9;
    single[key] = { ...t, gbs };
    log(`[${key}]`.padEnd(18) + `${ms(t.rows)} ${gbs.toFixed(1).padStart(6)} ${ms(t.loop)} ${ms(t.layer)} ${ms(t.layerObs)}` +
      `  ${ratio(t.rows, t.layerObs)}        ${ratio(t.loop, t.rows)}    ${ratio(TORCH_MS[key]! / 1e3, t.rows)}x`);
  }
  log('ResNet-20, the 19 activation quantizers summed ([B,16,32,32] x7, [B,32,16,16] x6, [B,64,8,8] x6)');
  log('batch     rows ms   GB/s   loop ms  layer ms layer+obs  rows/layer+obs loop/rows');
  const resnet: Record<number, Times & { gbs: number }> = {};
  for (const b of BATCHES) {
    const sum: Times = { rows: 0, loop: 0, layer: 0, layerObs: 0 };
    let elems = 0;
    for (const [s, count] of RESNET20) {
      const shape: Quad = [b, s[1], s[2], s[3]];
      const t = timeShape(shape, 1);
      for (const k of KERNELS) sum[k] += count * t[k];
      elems += count * b * s[1] * s[2] * s[3];
    }
    const gbs = (12 * elems) / sum.rows / 1e9;
    resnet[b] = { ...sum, gbs };
    log(`${String(b).padEnd(7)} ${ms(sum.rows)} ${gbs.toFixed(1).padStart(6)} ${ms(sum.loop)} ${ms(sum.layer)} ${ms(sum.layerObs)}` +
      `  ${ratio(sum.rows, sum.layerObs)}        ${ratio(sum.loop, sum.rows)}`);
  }
  return { bits: BITS, threads: nb.numThreads(), single, resnet };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = benchQuant((s) => process.stdout.write(`${s}\n`));
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
}
