/**
 * One cell of a sweep, run: its folder `DIR/cells/<id>/` is an ordinary `granq quantize --out` folder (log.jsonl,
 * checkpoint.safetensors every epoch, student.safetensors, result.json) plus `cell.json` (settings, status, host,
 * wall time, error), `output.log` (the run's stdout and stderr) and, while it runs, `lock.json` (lock.ts).
 *
 * Idempotent: a finished cell (result.json and status done) is skipped; an unfinished one with a checkpoint is
 * continued with --resume (bit for bit the run it would have been); a fresh one starts. The run is a child process
 * (`granq quantize`, GRANQ_THREADS threads) with an IPC channel: if this process dies, the run notices the channel
 * close, checkpoints and exits (cli/interrupt.ts), and the lock keeps others out until it has.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { CHECKPOINT_FILE, LOG_FILE, RESULT_FILE } from '../io/run-dir.js';
import type { GridCell, Settings } from './grid.js';
import { describeLock, readLock, tryLock } from './lock.js';

export const CELLS_DIR = 'cells';
export const CELL_FILE = 'cell.json';
export const OUTPUT_FILE = 'output.log';

export type CellStatus = 'pending' | 'running' | 'interrupted' | 'done' | 'failed';

export interface CellRecord {
  id: string;
  settings: Settings;
  status: CellStatus;
  /** Where and by whom it last ran. */
  host: string | null;
  pid: number | null;
  /** Seconds of run processes, summed over every start (resumes included). */
  wall_s: number;
  starts: number;
  started_at: string | null;
  finished_at: string | null;
  error: string | null;
}

/** How to start `granq quantize`: the node binary and the arguments before the command name. */
export interface Launcher {
  node: string;
  script: string[];
}

export interface RunCellOptions {
  launcher: Launcher;
  /** The quantize arguments of the cell's settings (no --out). */
  args: string[];
  threads: number;
  leaseMs: number;
  /** Called with the run's process once started (to forward Ctrl-C); its end resolves the promise. */
  started?(child: { kill(signal: NodeJS.Signals): boolean }): void;
  log?(line: string): void;
  /** Extra environment for the run (tests: GRANQ_PAUSE_AT). */
  env?: Record<string, string>;
}

export type CellOutcome =
  | { status: 'done' | 'interrupted' | 'failed'; record: CellRecord; skipped: boolean }
  | { status: 'busy'; lock: string };

export const cellDir = (dir: string, id: string) => path.join(dir, CELLS_DIR, id);

export function readCellRecord(dir: string, cell: GridCell): CellRecord {
  const file = path.join(cellDir(dir, cell.id), CELL_FILE);
  if (existsSync(file)) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as CellRecord;
    } catch { /* a cell.json cut short: rebuilt below from what the folder holds */ }
  }
  return {
    id: cell.id, settings: cell.settings, status: 'pending', host: null, pid: null, wall_s: 0, starts: 0,
    started_at: null, finished_at: null, error: null,
  };
}

function writeCellRecord(dir: string, r: CellRecord): void {
  writeFileAtomic(path.join(cellDir(dir, r.id), CELL_FILE), [Buffer.from(`${JSON.stringify(r, null, 2)}\n`)]);
}

export const isCellDone = (dir: string, cell: GridCell) =>
  readCellRecord(dir, cell).status === 'done' && existsSync(path.join(cellDir(dir, cell.id), RESULT_FILE));

/** Finished epochs of a cell's run so far (log.jsonl lines) and the last one's wall seconds. */
export function cellEpochs(dir: string, id: string): { epochs: number; lastWall: number | null } {
  const file = path.join(cellDir(dir, id), LOG_FILE);
  if (!existsSync(file)) return { epochs: 0, lastWall: null };
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
  let lastWall: number | null = null;
  try {
    lastWall = lines.length ? (JSON.parse(lines[lines.length - 1]!) as { wall_s: number }).wall_s : null;
  } catch { /* a line being appended */ }
  return { epochs: lines.length, lastWall };
}

/** What a file holds from byte `from` on (at most its last 20 kB). */
function readTail(file: string, from: number): string {
  const size = statSync(file).size;
  const start = Math.max(from, size - 20_000);
  const buf = Buffer.alloc(size - start);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, start);
  } finally {
    closeSync(fd);
  }
  return buf.toString('utf8');
}

/** The last `granq: ...` error line of a run's output, else its last line. */
function lastError(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const g = lines.filter((l) => l.startsWith('granq: ')).pop();
  return (g ?? lines.pop() ?? 'no output').replace(/^granq: /, '');
}

/**
 * Runs (or continues, or skips) one cell. Resolves 'busy' without running when another live holder has its lock.
 */
export async function runCell(dir: string, cell: GridCell, o: RunCellOptions): Promise<CellOutcome> {
  const cdir = cellDir(dir, cell.id);
  mkdirSync(cdir, { recursive: true });
  const before = readCellRecord(dir, cell);
  if (before.status === 'done' && existsSync(path.join(cdir, RESULT_FILE))) return { status: 'done', record: before, skipped: true };
  const lock = tryLock(cdir, o.leaseMs);
  if (!lock) {
    const held = readLock(cdir);
    return { status: 'busy', lock: held ? describeLock(held) : 'locked' };
  }
  try {
    const resume = existsSync(path.join(cdir, CHECKPOINT_FILE));
    const record: CellRecord = {
      ...before, settings: cell.settings, status: 'running', host: os.hostname(), pid: process.pid, starts: before.starts + 1,
      started_at: before.started_at ?? new Date().toISOString(), finished_at: null, error: null,
    };
    writeCellRecord(dir, record);
    const args = [...o.launcher.script, 'quantize', ...o.args, '--out', cdir, ...(resume ? ['--resume'] : [])];
    const outFile = path.join(cdir, OUTPUT_FILE);
    appendFileSync(outFile, `# ${new Date().toISOString()} ${os.hostname()} pid ${process.pid}: granq ${args.slice(o.launcher.script.length).join(' ')}\n`);
    o.log?.(`cell ${cell.id}: ${resume ? 'resumed' : 'started'}`);
    const t0 = performance.now();
    const fromByte = statSync(outFile).size;
    // The run writes straight into output.log, so what it says after this process died still lands there.
    const fd = openSync(outFile, 'a');
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(o.launcher.node, args, {
        stdio: ['ignore', fd, fd, 'ipc'],
        env: { ...process.env, ...o.env, GRANQ_THREADS: String(o.threads), GRANQ_SWEEP_CHILD: '1', GRANQ_DEBUG: '' },
        detached: true,
      });
      child.on('error', (e) => {
        appendFileSync(outFile, `granq: could not start granq quantize (${e.message})\n`);
        resolve(null);
      });
      child.on('close', (c, sig) => resolve(c ?? (sig === 'SIGINT' ? 130 : null)));
      if (child.pid !== undefined) lock.setChild(child.pid);
      o.started?.(child);
    });
    closeSync(fd);
    lock.setChild(null);
    record.wall_s = Number((before.wall_s + (performance.now() - t0) / 1000).toFixed(3));
    record.finished_at = new Date().toISOString();
    if (code === 0 && existsSync(path.join(cdir, RESULT_FILE))) record.status = 'done';
    else if (code === 130) record.status = 'interrupted';
    else {
      record.status = 'failed';
      record.error = lastError(readTail(outFile, fromByte));
    }
    writeCellRecord(dir, record);
    o.log?.(`cell ${cell.id}: ${record.status}${record.error ? ` (${record.error})` : ''}`);
    return { status: record.status as 'done' | 'interrupted' | 'failed', record, skipped: false };
  } finally {
    lock.release();
  }
}
