/**
 * `granq bench iter`: the cost of one full zero-shot QAT training iteration on ResNet-20 (option A): generator step
 * (generator, teacher and student forward, backward into the generator, Adam step) then student step (teacher and
 * student forward, backward, SGD step), with granq activations and slice weights at the given bits, warm-up over
 * (the student is updated). Median of --runs iterations after --warmup untimed ones, per batch size.
 * Weights are the registry's random initialisation: the work per iteration does not depend on their values.
 */
import { backend } from '../backend/index.js';
import { createModel } from '../models/registry.js';
import { quantizeModel } from '../quant/index.js';
import { presetConfig } from '../zsq/config.js';
import { ZsqTrainer } from '../zsq/trainer.js';
import { timeIt } from './timing.js';

export interface BenchIterOptions {
  batch: number[];
  wbits: number;
  abits: number;
  runs: number;
  warmup: number;
  json?: boolean;
}

export interface BenchIterRow { batch: number; ms: number; it_per_s: number }

export function benchIter(o: BenchIterOptions, log: (s: string) => void): { rows: BenchIterRow[] } {
  const teacher = createModel('resnet20-a', 10).eval();
  const rows: BenchIterRow[] = [];
  for (const batch of o.batch) {
    const { student } = quantizeModel(teacher, { wbits: o.wbits, abits: o.abits, act: 'granq', weight: 'slice' }, { warn: () => {} });
    const tr = new ZsqTrainer(teacher, student, 10, { ...presetConfig('paper-cifar10'), batch, warmupEpochs: 0 });
    try {
      tr.beginEpoch();
      const s = timeIt(() => { tr.iteration(); }, o.warmup, o.runs, 0);
      const row = { batch, ms: Number((s * 1000).toFixed(1)), it_per_s: Number((1 / s).toFixed(3)) };
      rows.push(row);
      log(`batch ${String(batch).padStart(4)}: ${row.ms} ms per iteration, ${row.it_per_s} it/s`);
    } finally {
      tr.dispose();
    }
  }
  return { rows };
}

export function runBenchIter(o: BenchIterOptions): void {
  const err = (s: string) => process.stderr.write(`${s}\n`);
  err(`granq bench iter: ResNet-20 (option A), W${o.wbits}A${o.abits} granq/slice, backend ${backend().name}, ` +
    `${backend().numThreads()} threads, median of ${o.runs} iterations after ${o.warmup} warm-up`);
  const r = benchIter(o, err);
  const out = process.stdout;
  out.write('| batch | ms / iteration | iterations / s |\n|---:|---:|---:|\n');
  for (const x of r.rows) out.write(`| ${x.batch} | ${x.ms} | ${x.it_per_s} |\n`);
  if (o.json) out.write(`${JSON.stringify(r)}\n`);
}
