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
import { Tensor } from '../tensor/tensor.js';
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
    const row: BenchQuantRow = {
      batch,
      layer_ms: ms(time(() => acts.forEach((a, i) => layerQs[i]!.forward(a)))),
      loop_ms: ms(time(() => acts.forEach((a) => fakeQuantChannelLoop(a, o.bits)))),
      granq_ms: ms(time(() => acts.forEach((a) => fakeQuantRows(a, o.bits)))),
      fwd_layer_ms: ms(time(() => students.get('layer')!.forward(x))),
      fwd_loop_ms: ms(time(() => students.get('channel-loop')!.forward(x))),
      fwd_granq_ms: ms(time(() => students.get('granq')!.forward(x))),
    };
    rows.push(row);
    log(`batch ${String(batch).padStart(4)}: act quantizers layer ${row.layer_ms} ms, loop ${row.loop_ms} ms, granq ${row.granq_ms} ms | ` +
      `forward layer ${row.fwd_layer_ms} ms, loop ${row.fwd_loop_ms} ms, granq ${row.fwd_granq_ms} ms`);
  }
  return { bits: o.bits, rows };
}

export function runBenchQuant(o: BenchQuantOptions): void {
  const err = (s: string) => process.stderr.write(`${s}\n`);
  err(`granq bench quant: ResNet-20 (option A), ${o.bits} bits, backend ${backend().name}, ${backend().numThreads()} threads, median of ${o.runs} runs`);
  const r = benchQuant(o, err);
  const out = process.stdout;
  out.write('| batch | act: layer ms | act: channel-loop ms | act: granq ms | fwd: layer ms | fwd: channel-loop ms | fwd: granq ms |\n');
  out.write('|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const x of r.rows) out.write(`| ${x.batch} | ${x.layer_ms} | ${x.loop_ms} | ${x.granq_ms} | ${x.fwd_layer_ms} | ${x.fwd_loop_ms} | ${x.fwd_granq_ms} |\n`);
  if (o.json) out.write(`${JSON.stringify(r)}\n`);
}
