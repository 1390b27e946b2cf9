/**
 * A sweep folder in the report (`granq report DIR` where DIR holds sweep.json): its cells become run folders (curves,
 * per-run rows), and its accuracy table groups the cells whose settings differ only in the seed: mean ± sample
 * standard deviation and n of the final-epoch top-1 and of its drop from each cell's own FP teacher, beside the
 * best-epoch mean (test-set selection, shown apart) and the mean wall time (cellWallSeconds: all of a run's starts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LOG_FILE } from '../io/run-dir.js';
import { cellDir } from '../sweep/cell.js';
import { cellWallSeconds, collectManifest, manifestCells, readManifest, SWEEP_FILE, type SweepManifest } from '../sweep/manifest.js';
import { weightLabel } from '../quant/index.js';
import { percent } from './accuracy.js';

export interface Stat { mean: number; std: number | null; n: number }
export interface SweepRow {
  bits: string; method: string; preset: string; other: string;
  final: Stat | null; drop: Stat | null; best: Stat | null; wall_s: Stat | null; cells: string[]; unfinished: number;
  /** Bits per quantized weight as exported (f32) and with integer zero points, mean over the finished cells. */
  bitsPerWeight: { f32: number; intZp: number } | null;
}
export interface SweepTable { name: string; dir: string; file: string; hash: string; description: string; rows: SweepRow[]; done: number; total: number }

export const isSweepDir = (dir: string) => existsSync(path.join(dir, SWEEP_FILE));

/** The cell folders of a sweep that have started (a log.jsonl). */
export function sweepRunDirs(dir: string): string[] {
  return readManifest(dir, 'RUN_DIR').cells.map((c) => cellDir(dir, c.id)).filter((d) => existsSync(path.join(d, LOG_FILE)));
}

export function stat(xs: readonly number[]): Stat | null {
  if (!xs.length) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : null;
  return { mean, std, n: xs.length };
}

const SHOWN = ['wbits', 'abits', 'act', 'weight', 'preset', 'seed'];

export function sweepTable(dir: string): SweepTable {
  const m0 = readManifest(dir, 'RUN_DIR');
  const m: SweepManifest = collectManifest(dir, { ...m0.grid, cells: manifestCells(m0) }, m0.queue);
  const groups = new Map<string, SweepManifest['cells']>();
  for (const c of m.cells) {
    const key = JSON.stringify(Object.entries(c.settings).filter(([k]) => k !== 'seed').sort(([a], [b]) => a.localeCompare(b)));
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const rows = [...groups.values()].map((cells): SweepRow => {
    const results = cells.map((c) => c.result as null | { policy: { wbits: number; abits: number; act: string; weight: string; weightClip?: string }; preset: string; fp_top1: number | null; final_top1: number | null; best_epoch: { top1: number } | null;
      bits?: Record<string, { bits_per_weight: number }> });
    const done = results.filter((r): r is NonNullable<typeof r> => r !== null);
    const s = cells[0]!.settings;
    const first = done[0];
    const finals = done.filter((r) => r.final_top1 !== null);
    const withBits = done.filter((r) => r.bits?.['f32'] && r.bits['int-zp']);
    return {
      bits: first ? `W${first.policy.wbits}A${first.policy.abits}` : `W${s['wbits']}A${s['abits']}`,
      method: first ? `${first.policy.act} / ${weightLabel(first.policy)}` : `${s['act'] ?? 'granq'} / ${s['weight'] ?? 'slice'}`,
      preset: first?.preset ?? String(s['preset'] ?? 'quick'),
      other: Object.entries(s).filter(([k]) => !SHOWN.includes(k)).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : v}`).join(', '),
      final: stat(finals.map((r) => percent(r.final_top1)!)),
      drop: stat(finals.filter((r) => r.fp_top1 !== null).map((r) => percent(r.fp_top1)! - percent(r.final_top1)!)),
      best: stat(done.filter((r) => r.best_epoch).map((r) => percent(r.best_epoch!.top1)!)),
      wall_s: stat(cells.filter((c) => c.status === 'done').map(cellWallSeconds)),
      cells: cells.map((c) => c.id),
      unfinished: cells.length - done.length,
      bitsPerWeight: withBits.length ? {
        f32: stat(withBits.map((r) => r.bits!['f32']!.bits_per_weight))!.mean, intZp: stat(withBits.map((r) => r.bits!['int-zp']!.bits_per_weight))!.mean,
      } : null,
    };
  });
  return { name: m.grid.name, dir, file: m.grid.file, hash: m.grid.hash, description: m.grid.description, rows, done: m.counts.done, total: m.cells.length };
}
