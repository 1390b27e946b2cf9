/**
 * Ctrl-C for the long-running commands (quantize, train): the first SIGINT only raises a flag, which the run polls
 * after every iteration to write a checkpoint and stop; a second one exits at once (the last end-of-epoch
 * checkpoint stays valid).
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
  process.on('SIGINT', onSigint);
  return {
    get requested() {
      return stopping;
    },
    dispose: () => process.removeListener('SIGINT', onSigint),
  };
}

/** The command line that continues an interrupted run: this one, with --resume. */
export function resumeCommand(): string {
  return `granq ${process.argv.slice(2).filter((a) => a !== '--resume').join(' ')} --resume`;
}
