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
