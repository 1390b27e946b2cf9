/**
 * `DIR/sweep.json`: the sweep's grid (name, hash, every cell's id and settings) and, per cell, what its folder says
 * (cell.json: status, host, wall time, error; result.json). Written by the `granq sweep` process only, rebuilt from
 * the cell folders (which each cell's runner alone writes), so it holds every cell exactly once however many workers
 * ran them; `granq worker` and `granq sweep status` read the grid from it.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { GranqError } from '../errors.js';
import { checkDirTarget, writeFileAtomic } from '../io/atomic.js';
import { RESULT_FILE } from '../io/run-dir.js';
import { cellDir, cellEpochs, readCellRecord, type CellRecord, type CellStatus } from './cell.js';
import type { Grid, GridCell } from './grid.js';

export const SWEEP_FILE = 'sweep.json';

export interface SweepCell extends CellRecord {
  /** Finished epochs so far (log.jsonl). */
  epochs_done: number;
  result: Record<string, unknown> | null;
}

export interface SweepManifest {
  format: 'granq-sweep/1';
  grid: { file: string; name: string; description: string; hash: string };
  /** The BullMQ queue of a distributed sweep, null for an embedded one. */
  queue: string | null;
  counts: Record<CellStatus, number>;
  cells: SweepCell[];
  updated_at: string;
}

export const queueName = (grid: Pick<Grid, 'hash'>) => `granq-sweep-${grid.hash}`;

export function readManifest(dir: string, flag = 'DIR'): SweepManifest {
  const file = path.join(dir, SWEEP_FILE);
  if (!existsSync(file)) throw new GranqError(`${flag}: ${dir} holds no sweep (no ${SWEEP_FILE}); start one with granq sweep GRID --out ${dir}`);
  let m: SweepManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as SweepManifest;
  } catch (e) {
    throw new GranqError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (m.format !== 'granq-sweep/1') throw new GranqError(`${file}: not a granq sweep file (format ${JSON.stringify(m.format)})`);
  return m;
}

/**
 * A cell's wall time in seconds. A finished cell: its run's own count over all its starts (result.json's
 * wall_seconds, carried in the checkpoint), which keeps the starts whose sweep process was stopped with its machine
 * before it could add them to cell.json; otherwise (or in a result without it) the sweep's count in cell.json.
 */
export function cellWallSeconds(c: Pick<SweepCell, 'wall_s' | 'result'>): number {
  const w = c.result?.['wall_seconds'];
  return typeof w === 'number' ? w : c.wall_s;
}

export const manifestCells = (m: SweepManifest): GridCell[] => m.cells.map((c) => ({ id: c.id, settings: c.settings }));

function readResult(dir: string, id: string): Record<string, unknown> | null {
  const f = path.join(cellDir(dir, id), RESULT_FILE);
  if (!existsSync(f)) return null;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** The manifest as the cell folders say now. */
export function collectManifest(dir: string, grid: Pick<Grid, 'file' | 'name' | 'description' | 'hash' | 'cells'>, queue: string | null): SweepManifest {
  const counts: Record<CellStatus, number> = { pending: 0, running: 0, interrupted: 0, done: 0, failed: 0 };
  const cells = grid.cells.map((c) => {
    const rec = readCellRecord(dir, c);
    const result = rec.status === 'done' ? readResult(dir, c.id) : null;
    counts[rec.status]++;
    return { ...rec, settings: c.settings, epochs_done: cellEpochs(dir, c.id).epochs, result };
  });
  return { format: 'granq-sweep/1', grid: { file: grid.file, name: grid.name, description: grid.description, hash: grid.hash }, queue, counts, cells, updated_at: new Date().toISOString() };
}

export function writeManifest(dir: string, m: SweepManifest): void {
  writeFileAtomic(path.join(dir, SWEEP_FILE), [Buffer.from(`${JSON.stringify(m, null, 2)}\n`)]);
}

/**
 * Opens DIR for this grid: creates it, or checks that the sweep it holds is this grid's (same hash) and refuses
 * another grid's with the reason.
 */
export function openSweepDir(dir: string, grid: Grid, queue: string | null): SweepManifest {
  checkDirTarget(dir, '--out');
  if (existsSync(path.join(dir, SWEEP_FILE))) {
    const m = readManifest(dir, '--out');
    if (m.grid.hash !== grid.hash) {
      throw new GranqError(`--out: ${dir} holds the sweep of another grid ('${m.grid.name}' from ${m.grid.file}, hash ${m.grid.hash}; ` +
        `this grid's is ${grid.hash}): choose another --out`);
    }
  }
  mkdirSync(dir, { recursive: true });
  const m = collectManifest(dir, grid, queue);
  writeManifest(dir, m);
  return m;
}
