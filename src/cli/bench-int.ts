/**
 * `granq bench int`: images/s of a ResNet-20 forward per batch size, four ways, interleaved run by run (the host is
 * shared: the same minutes for each): the FP teacher, the fake-quant student, the integer student (quant/int-model.ts)
 * and onnxruntime-node on the student's QDQ export. Per policy: W8A8 and W4A4 layer/channel (one activation scale
 * per tensor: one integer GEMM over the whole reduction) and W4A4 granq/channel (a scale per (sample, channel): exact
 * partial sums per input channel), so the last two rows show what the per-input-channel scales cost.
 * Static activation ranges are observed on random images: the timing does not depend on them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { noGrad } from '../autograd/index.js';
import { backend } from '../backend/index.js';
import { encodeModel } from '../io/onnx-proto.js';
import { loadModel } from '../models/load.js';
import type { Module } from '../nn/module.js';
import { actQuantizers, exportOnnx, integerModel, policyLabel, quantizeModel, type QuantPolicy } from '../quant/index.js';
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import { median } from './timing.js';

export interface BenchIntOptions {
  model: string;
  batch: number[];
  runs: number;
  json?: boolean;
}

export const BENCH_INT_POLICIES: QuantPolicy[] = [
  { wbits: 8, abits: 8, act: 'layer', weight: 'channel' },
  { wbits: 4, abits: 4, act: 'layer', weight: 'channel' },
  { wbits: 4, abits: 4, act: 'granq', weight: 'channel' },
];

export interface BenchIntRow {
  policy: string;
  batch: number;
  fp_img_s: number;
  fake_img_s: number;
  int_img_s: number;
  ort_img_s: number;
  /** integer / FP forward */
  int_vs_fp: number;
  ort_vs_fp: number;
}

const images = (n: number, rng: Rng) => new Tensor(Float32Array.from({ length: n * 3 * 32 * 32 }, () => rng.normal()), [n, 3, 32, 32]);

function student(teacher: Module, policy: QuantPolicy, rng: Rng): Module {
  const { student: s } = quantizeModel(teacher, policy, { warn: () => {} });
  s.eval();
  const acts = actQuantizers(s);
  for (const [, q] of acts) q.observing = true;
  noGrad(() => s.forward(images(16, rng)));
  for (const [, q] of acts) q.observing = false;
  return s;
}

export async function benchInt(o: BenchIntOptions, log: (s: string) => void): Promise<BenchIntRow[]> {
  const { default: ort } = await import('onnxruntime-node');
  const { model: teacher } = loadModel(o.model);
  teacher.eval();
  const rng = new Rng(0);
  const threads = backend().numThreads();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-bench-int-'));
  const rows: BenchIntRow[] = [];
  try {
    for (const policy of BENCH_INT_POLICIES) {
      const fake = student(teacher, policy, rng);
      const { model: int } = integerModel(fake);
      const file = path.join(dir, 'student.onnx');
      fs.writeFileSync(file, encodeModel(exportOnnx(fake, { input: [3, 32, 32], format: 'qdq' }).model));
      // No spinning after a run: its threads would otherwise take the cores from the granq run timed next.
      const session = await ort.InferenceSession.create(file, {
        intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      for (const batch of o.batch) {
        const x = images(batch, rng);
        const feed = { [session.inputNames[0]!]: new ort.Tensor('float32', x.data, [...x.shape]) };
        const timers: [string, () => Promise<void> | void][] = [
          ['fp', () => { noGrad(() => teacher.forward(x)); }],
          ['fake', () => { noGrad(() => fake.forward(x)); }],
          ['int', () => { noGrad(() => int.forward(x)); }],
          ['ort', async () => { await session.run(feed); }],
        ];
        const times = new Map<string, number[]>(timers.map(([k]) => [k, []]));
        // Warm-up: three interleaved rounds. With one, the FP forward of the first policy at batch 64 still ran at
        // half its later speed (the heap growing under the first large batches), which flattered that row's ratio.
        for (let r = 0; r < 3; r++) for (const [, fn] of timers) await fn();
        for (let r = 0; r < o.runs; r++) {
          for (const [k, fn] of timers) {
            const t0 = performance.now();
            await fn();
            times.get(k)!.push((performance.now() - t0) / 1000);
          }
        }
        const ips = (k: string) => Number((batch / median(times.get(k)!)).toFixed(1));
        const row: BenchIntRow = {
          policy: policyLabel(policy), batch, fp_img_s: ips('fp'), fake_img_s: ips('fake'), int_img_s: ips('int'), ort_img_s: ips('ort'),
          int_vs_fp: 0, ort_vs_fp: 0,
        };
        row.int_vs_fp = Number((row.int_img_s / row.fp_img_s).toFixed(2));
        row.ort_vs_fp = Number((row.ort_img_s / row.fp_img_s).toFixed(2));
        rows.push(row);
        log(`${row.policy} batch ${batch}: FP ${row.fp_img_s} img/s, fake-quant ${row.fake_img_s}, integer ${row.int_img_s} (${row.int_vs_fp}x FP), onnxruntime QDQ ${row.ort_img_s} (${row.ort_vs_fp}x FP)`);
      }
      await session.release();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export async function runBenchInt(o: BenchIntOptions): Promise<void> {
  const err = (s: string) => process.stderr.write(`${s}\n`);
  err(`granq bench int: ${o.model}, backend ${backend().name}, ${backend().numThreads()} threads (onnxruntime the same), median of ${o.runs} interleaved runs`);
  const rows = await benchInt(o, err);
  const out = process.stdout;
  out.write('| policy | batch | FP img/s | fake-quant img/s | integer img/s | integer / FP | onnxruntime QDQ img/s | ORT / FP |\n');
  out.write('|---|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const r of rows) out.write(`| ${r.policy} | ${r.batch} | ${r.fp_img_s} | ${r.fake_img_s} | ${r.int_img_s} | ${r.int_vs_fp} | ${r.ort_img_s} | ${r.ort_vs_fp} |\n`);
  if (o.json) out.write(`${JSON.stringify({ rows })}\n`);
}
