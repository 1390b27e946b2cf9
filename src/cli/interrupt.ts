/**
 * Ctrl-C for the long-running commands (quantize, train): the first SIGINT only raises a flag, which the run polls
 * after every iteration to write a checkpoint and stop; a second one exits at once (the last end-of-epoch
 * checkpoint stays valid). A run started by `granq sweep` or `granq worker` (src/sweep/cell.ts: an IPC channel and
 * GRANQ_SWEEP_CHILD=1) stops the same way when that channel closes, i.e. when its parent died (even by SIGKILL), so no
 * orphan keeps writing a cell that another worker is about to resume.
 */
export interface Interrupt {
  readonly requested: boolean;
  dispose(): void;
}

export function catchInterrupt(err: (line: string) => void): Interrupt {
  let stopping = false;
  const onSigint = () => {
    if (stopping) process.exit(130);
    stopping = true;
    err('\ninterrupt: finishing the current iteration, then writing a checkpoint (Ctrl-C again to quit at once)');
  };
  const onOrphaned = () => {
    if (stopping) return;
    stopping = true;
    err('\ninterrupt: the sweep process that started this run is gone; writing a checkpoint');
  };
  process.on('SIGINT', onSigint);
  const watchParent = process.env['GRANQ_SWEEP_CHILD'] === '1' && process.connected;
  if (watchParent) process.on('disconnect', onOrphaned);
  return {
    get requested() {
      return stopping;
    },
    dispose: () => {
      process.removeListener('SIGINT', onSigint);
      if (watchParent) process.removeListener('disconnect', onOrphaned);
    },
  };
}

/** The command line that continues an interrupted run: this one, with --resume. */
export function resumeCommand(): string {
  return `granq ${process.argv.slice(2).filter((a) => a !== '--resume').join(' ')} --resume`;
}
