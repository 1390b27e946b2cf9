/**
 * `granq bench iter`: the cost of one full zero-shot QAT training iteration on ResNet-20 (option A): generator step
 * (generator, teacher and student forward, backward into the generator, Adam step) then student step (backward
 * into the student, SGD step; the forward is shared, see ZsqTrainer.iteration), with granq activations and slice
 * weights at the given bits, warm-up over (the student is updated). Median of --runs iterations after --warmup
 * untimed ones, per batch size.
 * Weights are the registry's random initialisation: the work per iteration does not depend on their values.
 */
import { profileOps, type OpTime } from '../autograd/index.js';
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
  /** Also time --runs more iterations op by op and report where the time goes. */
  profile?: boolean;
}

/** Per iteration: an op's forward and backward milliseconds; `other` is time outside every op (optimizers, JS). */
export interface IterProfileRow { op: string; calls: number; forward_ms: number; backward_ms: number }
export interface BenchIterRow { batch: number; ms: number; it_per_s: number; profile?: IterProfileRow[] }

export function benchIter(o: BenchIterOptions, log: (s: string) => void): { rows: BenchIterRow[] } {
  const teacher = createModel('resnet20-a', 10).eval();
  const rows: BenchIterRow[] = [];
  for (const batch of o.batch) {
    const { student } = quantizeModel(teacher, { wbits: o.wbits, abits: o.abits, act: 'granq', weight: 'slice' }, { warn: () => {} });
    const tr = new ZsqTrainer(teacher, student, 10, { ...presetConfig('paper-cifar10'), batch, warmupEpochs: 0 });
    try {
      tr.beginEpoch();
      const s = timeIt(() => { tr.iteration(); }, o.warmup, o.runs, 0);
      const row: BenchIterRow = { batch, ms: Number((s * 1000).toFixed(1)), it_per_s: Number((1 / s).toFixed(3)) };
      rows.push(row);
      log(`batch ${String(batch).padStart(4)}: ${row.ms} ms per iteration, ${row.it_per_s} it/s`);
      if (o.profile) {
        const t0 = performance.now();
        const ops = profileOps(() => { for (let r = 0; r < o.runs; r++) tr.iteration(); });
        row.profile = iterProfile(ops, (performance.now() - t0) / o.runs, o.runs);
        for (const p of row.profile) {
          log(`  ${p.op.padEnd(24)} ${String(p.calls).padStart(5)} calls  fwd ${p.forward_ms.toFixed(2).padStart(7)} ms  bwd ${p.backward_ms.toFixed(2).padStart(7)} ms`);
        }
      }
    } finally {
      tr.dispose();
    }
  }
  return { rows };
}

/** profileOps' totals over `runs` runs as per-run rows, plus one for the time outside all ops (msPerIter minus theirs). */
export function iterProfile(ops: OpTime[], msPerIter: number, runs: number): IterProfileRow[] {
  const rows = ops.map((t) => ({
    op: t.op, calls: Math.round(t.calls / runs), forward_ms: t.forwardMs / runs, backward_ms: t.backwardMs / runs,
  }));
  const inOps = rows.reduce((a, r) => a + r.forward_ms + r.backward_ms, 0);
  rows.push({ op: 'other (optimizers, JS)', calls: 0, forward_ms: msPerIter - inOps, backward_ms: 0 });
  return rows;
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
