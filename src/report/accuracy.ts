/**
 * The accuracy table: each run's bits, method, preset, FP, PTQ start, final-epoch and best-epoch top-1 with the drop
 * from its own FP teacher, and the final student against the teacher image by image (where result.json has it);
 * beside it the published numbers for the same bit widths, each as a drop from that paper's own FP teacher (teachers
 * differ: ours is 91.73, the papers' 93.89), with its sources.
 */
import { weightLabel } from '../quant/index.js';
import { findTable, type Published, type PublishedTable } from './published.js';
import type { RunFolder } from './inputs.js';

export interface RunRow {
  run: string; bits: string; method: string; preset: string; epochs: number;
  /** The epoch the run diverged in (its losses became non-finite and it stopped), or null. */
  divergedAt: number | null;
  fp: number | null; ptq: number | null; final: number | null; best: { epoch: number; top1: number } | null;
  /** Bits per quantized weight as exported (f32 scale and zero point) and with integer zero points; null if unknown. */
  bitsPerWeight: { f32: number; intZp: number } | null;
  /** Test images only the student gets right / only the FP teacher, and McNemar's p; null where not recorded. */
  vsFp: { studentOnly: number; fpOnly: number; p: number } | null;
}
export interface PublishedRow { method: string; values: Record<string, { top1: number; drop: number; sources: string[]; text: string } | null> }

/** A fraction as a percentage rounded to 2 decimals (as the tables print it), null kept. */
export const percent = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(x * 1e4) / 100);

/** Finished runs only (an unfinished one has no result.json yet); top-1 in %. */
export function runRows(runs: readonly RunFolder[]): RunRow[] {
  return runs.filter((r) => r.result).map((r) => {
    const x = r.result!;
    return {
      run: r.name, bits: `W${x.policy.wbits}A${x.policy.abits}`, method: `${x.policy.act} / ${weightLabel(x.policy)}`, preset: x.preset, epochs: x.epochs, divergedAt: x.diverged?.epoch ?? null,
      fp: percent(x.fp_top1), ptq: percent(x.ptq_top1), final: percent(x.final_top1), best: x.best_epoch ? { epoch: x.best_epoch.epoch, top1: percent(x.best_epoch.top1)! } : null,
      bitsPerWeight: x.bits?.['f32'] && x.bits['int-zp'] ? { f32: x.bits['f32'].bits_per_weight, intZp: x.bits['int-zp'].bits_per_weight } : null,
      vsFp: x.vs_fp ? { studentOnly: x.vs_fp.student_only, fpOnly: x.vs_fp.fp_only, p: x.vs_fp.mcnemar_p } : null,
    };
  });
}

/** Drop from FP in points, rounded to 2 decimals (null when either is unknown). */
export const dropFrom = (fp: number | null, x: number | null) => (fp === null || x === null ? null : Math.round((fp - x) * 100) / 100);

/** A drop from FP in points as tables show it beside a figure: ` (−0.38)` for a loss, ` (+0.05)` for a gain, '' when unknown. */
export const signedDrop = (drop: number | null) => (drop === null ? '' : ` (${drop > 0 ? '−' : '+'}${Math.abs(drop).toFixed(2)})`);

/** The published table of ResNet-20 on the runs' dataset, restricted to the runs' bit widths. */
export function publishedRows(p: Published, dataset: 'CIFAR-10' | 'CIFAR-100', bits: readonly string[]): { table: PublishedTable; rows: PublishedRow[] } | null {
  const table = findTable(p, 'ResNet-20', dataset);
  if (!table) return null;
  const cols = table.bits.filter((b) => bits.includes(b));
  return {
    table,
    rows: table.rows.map((r) => ({
      method: r.method,
      values: Object.fromEntries(cols.map((b) => {
        const c = r.cells[b]!;
        return [b, c.value === null ? null : { top1: c.value, drop: dropFrom(table.fp, c.value)!, sources: c.sources, text: c.text }];
      })),
    })),
  };
}
