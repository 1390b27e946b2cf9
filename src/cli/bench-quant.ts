/**
 * `granq bench quant`: the latency experiment of GranQ's Fig. 3 on CPU, ResNet-20 at k bits, per batch size:
 *  (a) the 19 activation quantizers alone, on the 19 activation tensors of one forward pass, and
 *  (b) the whole quantized-model forward (no grad, weights 'slice'),
 * for layer (per-tensor range: EMA observe = one min and one max reduction, then fake-quant; observing on),
 * channel-loop (per-channel loop) and granq (vectorised rows). Median of repeated runs after warm-up.
 */
import { noGrad } from '../autograd/index.js';
import { backend } from '../backend/index.js';
import { createModel } from '../models/registry.js';
import { actQuantizers, fakeQuantChannelLoop, fakeQuantRows, LayerActQuantizer, quantizeModel, type ActKind } from '../quant/index.js';
import { Rng } from '../tensor/rng.js';
import { releaseFloats, Tensor } from '../tensor/tensor.js';
import { timeIt } from './timing.js';

export interface BenchQuantOptions {
  bits: number;
  batches: number[];
  runs: number;
  json?: boolean;
}

export interface BenchQuantRow {
  batch: number;
  layer_ms: number; loop_ms: number; granq_ms: number;
  fwd_layer_ms: number; fwd_loop_ms: number; fwd_granq_ms: number;
  /** The 19 granq quantizers' bytes moved (read x, write y: 8 per element) per second, and a plain copy's. */
  granq_gb_s: number; copy_gb_s: number;
}

const ms = (s: number) => Number((s * 1000).toFixed(3));

export function benchQuant(o: BenchQuantOptions, log: (s: string) => void): { bits: number; rows: BenchQuantRow[] } {
  const teacher = createModel('resnet20-a', 10).eval();
  const rng = new Rng(0);
  const students = new Map<ActKind, ReturnType<typeof quantizeModel>['student']>();
  for (const act of ['layer', 'channel-loop', 'granq'] as const) {
    students.set(act, quantizeModel(teacher, { wbits: o.bits, abits: o.bits, act, weight: 'slice' }).student.eval());
  }
  const time = (fn: () => void) => timeIt(() => noGrad(fn), 1, o.runs, 0);
  const rows: BenchQuantRow[] = [];
  for (const batch of o.batches) {
    const x = Tensor.randn([batch, 3, 32, 32], rng);
    // The 19 activation tensors of one forward pass (real post-ReLU values, FP network).
    const acts: Tensor[] = [];
    const probe = students.get('granq')!;
    const qs = actQuantizers(probe).map(([, q]) => q);
    for (const q of qs) { q.quantizing = false; q.hooks.push((t) => acts.push(t)); }
    noGrad(() => probe.forward(x));
    for (const q of qs) { q.quantizing = true; q.hooks.length = 0; }
    const layerQs = acts.map(() => new LayerActQuantizer(o.bits));
    // Each output goes back to the allocator's pool once timed, as a forward that reuses its buffers would: the
    // figures are the quantizers' own, not first-touch page faults of fresh output arrays.
    const reuse = (y: Tensor) => releaseFloats(y.data);
    const elements = acts.reduce((n, a) => n + a.size, 0);
    const src = new Float32Array(elements).fill(1);
    const dst = new Float32Array(elements);
    const granq = time(() => acts.forEach((a) => reuse(fakeQuantRows(a, o.bits))));
    const gbs = (seconds: number) => Number(((8 * elements) / seconds / 1e9).toFixed(2));
    const row: BenchQuantRow = {
      batch,
      layer_ms: ms(time(() => acts.forEach((a, i) => reuse(layerQs[i]!.forward(a))))),
      loop_ms: ms(time(() => acts.forEach((a) => reuse(fakeQuantChannelLoop(a, o.bits))))),
      granq_ms: ms(granq),
      fwd_layer_ms: ms(time(() => students.get('layer')!.forward(x))),
      fwd_loop_ms: ms(time(() => students.get('channel-loop')!.forward(x))),
      fwd_granq_ms: ms(time(() => students.get('granq')!.forward(x))),
      granq_gb_s: gbs(granq),
      copy_gb_s: gbs(time(() => dst.set(src))),
    };
    rows.push(row);
    log(`batch ${String(batch).padStart(4)}: act quantizers layer ${row.layer_ms} ms, loop ${row.loop_ms} ms, granq ${row.granq_ms} ms | ` +
      `forward layer ${row.fwd_layer_ms} ms, loop ${row.fwd_loop_ms} ms, granq ${row.fwd_granq_ms} ms | ` +
      `granq quantizers ${row.granq_gb_s} GB/s, a copy of as many bytes ${row.copy_gb_s} GB/s`);
  }
  return { bits: o.bits, rows };
}

export function runBenchQuant(o: BenchQuantOptions): void {
  const err = (s: string) => process.stderr.write(`${s}\n`);
  err(`granq bench quant: ResNet-20 (option A), ${o.bits} bits, backend ${backend().name}, ${backend().numThreads()} threads, median of ${o.runs} runs`);
  const r = benchQuant(o, err);
  const out = process.stdout;
  out.write('| batch | act: layer ms | act: channel-loop ms | act: granq ms | act: granq GB/s | copy GB/s | fwd: layer ms | fwd: channel-loop ms | fwd: granq ms |\n');
  out.write('|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const x of r.rows) out.write(`| ${x.batch} | ${x.layer_ms} | ${x.loop_ms} | ${x.granq_ms} | ${x.granq_gb_s} | ${x.copy_gb_s} | ${x.fwd_layer_ms} | ${x.fwd_loop_ms} | ${x.fwd_granq_ms} |\n`);
  if (o.json) out.write(`${JSON.stringify(r)}\n`);
}
