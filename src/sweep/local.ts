/**
 * The embedded sweep: no server, an in-process queue of the grid's cells in order and `workers` cells running at a
 * time, each a `granq quantize` child process (cell.ts) with `threads` threads. Finished cells are skipped and
 * unfinished ones resumed, so running it again after any interruption continues the sweep. `stop()` (Ctrl-C) starts no
 * further cell and forwards SIGINT to the running ones, which checkpoint and exit.
 */
import type { Grid, GridCell } from './grid.js';
import { runCell, type CellOutcome, type Launcher } from './cell.js';

export interface LocalSweepOptions {
  workers: number;
  threads: number;
  launcher: Launcher;
  args(cell: GridCell): string[];
  leaseMs: number;
  log(line: string): void;
  env?: Record<string, string>;
  /** After each cell's run ends (to rewrite sweep.json). */
  cellEnded?(cell: GridCell, outcome: CellOutcome): void;
}

export interface LocalSweep {
  done: Promise<{ outcomes: Map<string, CellOutcome>; stopped: boolean }>;
  stop(): void;
}

export function runLocalSweep(dir: string, grid: Grid, o: LocalSweepOptions): LocalSweep {
  const queue = [...grid.cells];
  const running = new Set<{ kill(signal: NodeJS.Signals): boolean }>();
  const outcomes = new Map<string, CellOutcome>();
  let stopped = false;
  const worker = async () => {
    for (let cell = queue.shift(); cell && !stopped; cell = queue.shift()) {
      let child: { kill(signal: NodeJS.Signals): boolean } | null = null;
      const outcome = await runCell(dir, cell, {
        launcher: o.launcher, args: o.args(cell), threads: o.threads, leaseMs: o.leaseMs, log: o.log, env: o.env,
        started(c) {
          child = c;
          running.add(c);
          if (stopped) c.kill('SIGINT');
        },
      });
      if (child) running.delete(child);
      if (outcome.status === 'busy') o.log(`cell ${cell.id}: not run here, its folder is ${outcome.lock}`);
      outcomes.set(cell.id, outcome);
      o.cellEnded?.(cell, outcome);
    }
  };
  const done = Promise.all(Array.from({ length: Math.max(1, o.workers) }, worker)).then(() => ({ outcomes, stopped }));
  return {
    done,
    stop() {
      if (stopped) return;
      stopped = true;
      for (const c of running) c.kill('SIGINT');
    },
  };
}
