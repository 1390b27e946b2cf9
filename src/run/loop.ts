/**
 * The one resumable epoch loop of granq's training commands (`granq train`, `granq quantize`). A run is a fixed
 * number of epochs of a fixed number of iterations; the loop owns the order of things and the run folder's files
 * (io/run-dir.ts): every finished epoch appends its record to DIR/log.jsonl, then writes the checkpoint; an
 * interruption (hooks.interrupted(), polled after every iteration, after the event loop had a turn so that a signal
 * handler can set it) writes a checkpoint mid-epoch. The caller supplies what an iteration, an epoch's record and a
 * checkpoint are (RunSpec); what the run computes is unchanged by where it was interrupted. A run whose spec says it
 * diverged (RunSpec.diverged, polled after every iteration: a non-finite loss, from which no step recovers) stops
 * there: the unfinished epoch's record is logged, no checkpoint is written (the last one stays), and the loop
 * returns 'diverged' instead of running the remaining epochs on NaN.
 *
 * GRANQ_PAUSE_AT=E:I (a test knob): after iteration I of epoch E (both from 1) the run writes
 * `paused at epoch E, iteration I` through hooks.log and waits until hooks.interrupted() is true, so a test can
 * interrupt a run at an exact point whatever the host's speed.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { GranqError } from '../errors.js';
import { checkDirTarget } from '../io/atomic.js';
import { appendLog, CHECKPOINT_FILE, writeLog } from '../io/run-dir.js';

/** A position in a run: 0-based epoch, and the iterations of it already done. */
export interface RunPosition {
  epoch: number;
  iter: number;
}

/** The fields of a log record the loop relies on; `epoch` counts from 1. */
export interface EpochRecordBase {
  epoch: number;
  test_top1?: number;
  wall_s: number;
}

export interface RunSpec<R extends EpochRecordBase> {
  epochs: number;
  itersPerEpoch: number;
  /** Before the first (or, on resume, the next) iteration of `epoch`; `done` of its iterations are already done. */
  beginEpoch(epoch: number, done: number): void;
  /** Iteration `iter` (0-based) of `epoch`. */
  iteration(epoch: number, iter: number): void;
  /** The finished epoch's log record (its evaluation included), but for `wall_s`, which the loop adds last. */
  endEpoch(epoch: number): Omit<R, 'wall_s'>;
  /** Writes the checkpoint at `pos` (iter 0: an epoch boundary); `epochWall`: seconds spent in the unfinished epoch. */
  checkpoint(pos: RunPosition, epochWall: number): void;
  /** After each iteration: why the run cannot go on (e.g. a non-finite loss), or null. */
  diverged?(): string | null;
}

export interface RunLoopHooks<R> {
  log(line: string): void;
  epochEnd?(rec: R): void;
  interrupted?(): boolean;
}

export type LoopOutcome =
  | { status: 'done' }
  | { status: 'interrupted'; epoch: number; iter: number; checkpoint: string }
  /** Stopped at 0-based `epoch` after `iter` of its iterations; `reason` from RunSpec.diverged. */
  | { status: 'diverged'; epoch: number; iter: number; reason: string };

/** The checkpoint path of a run folder; refuses a file, and a folder that holds a checkpoint unless resuming. */
export function runCheckpointPath(out: string, resume: boolean): string {
  checkDirTarget(out, '--out');
  const ck = path.join(out, CHECKPOINT_FILE);
  if (!resume && existsSync(ck)) {
    throw new GranqError(`--out: ${out} already holds a checkpoint; pass --resume to continue it, or choose another --out`);
  }
  return ck;
}

/** The best evaluated epoch (test-set selection: reported apart from the final epoch's figure), or null. */
export function bestEpoch<R extends EpochRecordBase>(history: readonly R[]): R | null {
  return history.reduce<R | null>((b, r) => (r.test_top1 !== undefined && (b === null || r.test_top1 > b.test_top1!) ? r : b), null);
}

function pausePoint(): RunPosition | null {
  const v = process.env['GRANQ_PAUSE_AT'];
  if (!v) return null;
  const m = /^(\d+):(\d+)$/.exec(v);
  if (!m) throw new GranqError(`GRANQ_PAUSE_AT: expected EPOCH:ITERATION (from 1), got '${v}'`);
  return { epoch: Number(m[1]) - 1, iter: Number(m[2]) };
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));
const tick = () => new Promise<void>((r) => setTimeout(r, 5));

/**
 * Runs the epochs from `start` (a checkpoint's position, with `epochWall` seconds already spent in its epoch) to the
 * end. `history` holds the records of the epochs before `start`; the loop appends to it and rewrites DIR/log.jsonl
 * from it first, so log and checkpoint always agree.
 */
export async function runEpochs<R extends EpochRecordBase>(spec: RunSpec<R>, start: RunPosition & { epochWall: number },
  history: R[], out: string, hooks: RunLoopHooks<R>): Promise<LoopOutcome> {
  const ckPath = path.join(out, CHECKPOINT_FILE);
  const pause = pausePoint();
  writeLog(out, history);
  let { epoch, iter } = start;
  let wallBefore = start.epochWall;
  while (epoch < spec.epochs) {
    const tEpoch = performance.now() - wallBefore * 1000;
    const wall = () => (performance.now() - tEpoch) / 1000;
    /** The epoch's record (finished, or cut short by a divergence) into history and DIR/log.jsonl. */
    const logEpoch = (): R => {
      const rec = { ...spec.endEpoch(epoch), wall_s: Number(wall().toFixed(3)) } as R;
      history.push(rec);
      appendLog(out, rec);
      return rec;
    };
    spec.beginEpoch(epoch, iter);
    while (iter < spec.itersPerEpoch) {
      spec.iteration(epoch, iter);
      iter++;
      const reason = spec.diverged?.() ?? null;
      if (reason !== null) {
        const rec = logEpoch(); // not inside epochEnd?.(…), which would skip it without the hook
        hooks.epochEnd?.(rec);
        return { status: 'diverged', epoch, iter, reason };
      }
      await yieldToEventLoop();
      if (pause && pause.epoch === epoch && pause.iter === iter && hooks.interrupted) {
        hooks.log(`paused at epoch ${epoch + 1}, iteration ${iter} (GRANQ_PAUSE_AT)`);
        while (!hooks.interrupted()) await tick();
      }
      if (iter < spec.itersPerEpoch && hooks.interrupted?.()) {
        spec.checkpoint({ epoch, iter }, wall());
        return { status: 'interrupted', epoch, iter, checkpoint: ckPath };
      }
    }
    const rec = logEpoch();
    epoch++;
    iter = 0;
    wallBefore = 0;
    spec.checkpoint({ epoch, iter }, 0);
    hooks.epochEnd?.(rec);
    if (epoch < spec.epochs && hooks.interrupted?.()) return { status: 'interrupted', epoch, iter: 0, checkpoint: ckPath };
  }
  return { status: 'done' };
}
