/**
 * Progress on stderr: a cli-progress bar on a terminal; elsewhere (logs, CI, pipes) one plain line at most every
 * 10 seconds and a final one, so logs stay readable.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, payload?: Record<string, string | number>): void;
  stop(): void;
}

function formatPayload(payload: Record<string, string | number>): string {
  return Object.entries(payload).map(([k, v]) => `${k} ${v}`).join(' | ');
}

export function progressBar(total: number, label: string): Progress {
  const start = performance.now();
  const rate = (done: number) => {
    const secs = (performance.now() - start) / 1000;
    return secs > 0 ? `${(done / secs).toFixed(1)}/s` : '-';
  };
  if (!process.stderr.isTTY) {
    let last = start;
    let latest = '';
    return {
      update(done, payload = {}) {
        latest = `${label} ${done}/${total} | ${rate(done)} | ${formatPayload(payload)}`;
        if (performance.now() - last > 10_000) {
          last = performance.now();
          process.stderr.write(`${latest}\n`);
        }
      },
      stop() {
        if (latest) process.stderr.write(`${latest}\n`);
      },
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate} | ETA {eta_formatted} | {info}`,
      barsize: 30,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.legacy,
  );
  bar.start(total, 0, { rate: '-', info: '' });
  return {
    update(done, payload = {}) {
      bar.update(done, { rate: rate(done), info: formatPayload(payload) });
    },
    stop() {
      bar.stop();
    },
  };
}

/**
 * The bars of a multi-epoch run (`granq quantize`, `granq train`): one bar per epoch, each showing the whole run's
 * ETA from this process's own pace (so a resumed run is not judged by the speed of the process before it).
 */
export class RunProgress {
  private bar: Progress | null = null;
  private readonly t0 = performance.now();
  private itersThisProcess = 0;
  private itersLeft = 0;

  /** A new bar for an epoch of `perEpoch` iterations, `done` of them already run; `itersLeft` in the whole run. */
  startEpoch(label: string, perEpoch: number, done: number, itersLeft: number): void {
    this.itersLeft = itersLeft;
    this.bar = progressBar(perEpoch, label);
    this.bar.update(done);
  }

  iteration(i: number, payload: Record<string, string>): void {
    this.itersThisProcess++;
    this.itersLeft--;
    const eta = ((performance.now() - this.t0) / 1000 / this.itersThisProcess) * this.itersLeft;
    this.bar?.update(i, { ...payload, 'run ETA': `${Math.round(eta)}s` });
  }

  endEpoch(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
