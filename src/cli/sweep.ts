/**
 * `granq sweep GRID --out DIR` (embedded: --workers local processes), `granq sweep GRID --out DIR --redis URL`
 * (distributed: enqueue on BullMQ and wait), `granq worker --redis URL --out DIR` (take jobs) and
 * `granq sweep status DIR`. src/sweep does the work; this file checks a grid's cells with quantize's own option
 * parsers, draws the progress (one line per running cell, the sweep's done/total and ETA) and handles Ctrl-C.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { GranqError } from '../errors.js';
import { resolveModelArg } from '../models/default-teacher.js';
import { cellEpochs, isCellDone, type Launcher } from '../sweep/cell.js';
import { lockMs } from '../sweep/lock.js';
import { readGrid, selectCells, type Grid, type GridCell, type Settings, type SettingsSchema } from '../sweep/grid.js';
import { signedDrop } from '../report/accuracy.js';
import { shortCommit, type BuildInfo } from '../run/build-info.js';
import { runLocalSweep } from '../sweep/local.js';
import { cellWallSeconds, collectManifest, manifestCells, openSweepDir, queueName, readManifest, writeManifest, type SweepManifest } from '../sweep/manifest.js';
import { positiveInt } from './args.js';
import { configFromOptions, policyFromOptions, quantizeOptions, type QuantizeCliOptions } from './quantize.js';

/** Flags of quantize that the sweep sets itself. */
const SWEEP_OWNED = ['out', 'resume', 'json'];

interface Flag { key: string; kind: 'value' | 'switch' | 'negated' }

function quantizeFlags(): Flag[] {
  return quantizeOptions(new Command('quantize')).options
    .map((o): Flag => ({
      key: o.long!.replace(/^--(no-)?/, ''),
      kind: o.negate ? 'negated' : o.required || o.optional ? 'value' : 'switch',
    }))
    .filter((f) => !SWEEP_OWNED.includes(f.key));
}

function cellArgs(flags: Flag[], settings: Settings): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(settings)) {
    const f = flags.find((x) => x.key === k)!;
    if (f.kind !== 'value') {
      if (typeof v !== 'boolean') throw new GranqError(`setting '${k}' is a switch: true or false, got ${JSON.stringify(v)}`);
      if (f.kind === 'switch' ? v : !v) args.push(f.kind === 'switch' ? `--${k}` : `--no-${k}`);
    } else {
      if (typeof v === 'boolean') throw new GranqError(`setting '${k}' takes a value, got ${v}`);
      args.push(`--${k}`, Array.isArray(v) ? (v.length ? v.join(',') : 'none') : String(v));
    }
  }
  return args;
}

/** Parses a cell's arguments exactly as `granq quantize` would, without running anything. */
function parseCell(args: string[]): QuantizeCliOptions {
  let message = '';
  let parsed: QuantizeCliOptions | null = null;
  const cmd = quantizeOptions(new Command('quantize'))
    .exitOverride()
    .configureOutput({ writeErr: (s) => { message += s; }, writeOut: () => {} })
    .action((opts: QuantizeCliOptions) => { parsed = opts; });
  try {
    cmd.parse([...args, '--out', 'unused'], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) throw new GranqError(message.trim().replace(/^error: /, '') || e.message);
    throw e;
  }
  return parsed!;
}

export interface CellPlan { epochs: number; iters: number }

/** The settings schema of `granq quantize`, and what each checked cell will run (epochs x iterations). */
export function quantizeSchema(): SettingsSchema & { plans: Map<string, CellPlan> } {
  const flags = quantizeFlags();
  const plans = new Map<string, CellPlan>();
  return {
    keys: flags.map((f) => f.key),
    args: (s) => cellArgs(flags, s),
    plans,
    check(s) {
      const o = parseCell(cellArgs(flags, s));
      const cfg = configFromOptions(o);
      policyFromOptions(o);
      const model = resolveModelArg(o.model);
      if (!existsSync(model)) throw new GranqError(`model: no such file ${model}`);
      plans.set(JSON.stringify(s), { epochs: cfg.epochs, iters: cfg.itersPerEpoch });
    },
  };
}

const launcher = (): Launcher => ({ node: process.execPath, script: ['--single-threaded-gc', fileURLToPath(new URL('./main.js', import.meta.url))] });
const cores = () => os.availableParallelism();
const err = (s: string) => process.stderr.write(`${s}\n`);

function duration(s: number): string {
  if (!Number.isFinite(s)) return '-';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/**
 * Progress of a sweep from its folder (what every worker writes there): one line per running cell (epoch, it/s of
 * its last epoch) and the sweep's done/total with an ETA from the iterations left at the pace of the running cells.
 * On a terminal the block is redrawn; elsewhere a line is printed when a cell's epoch changes.
 */
class SweepMonitor {
  private drawn = 0;
  private readonly last = new Map<string, string>();
  constructor(private readonly dir: string, private readonly grid: Grid, private readonly plans: Map<string, CellPlan>) {}

  tick(m: SweepManifest): void {
    const plan = (c: { settings: Settings }) => this.plans.get(JSON.stringify(c.settings)) ?? { epochs: 1, iters: 1 };
    let itersLeft = 0;
    let rate = 0;
    const lines: string[] = [];
    for (const c of m.cells) {
      const p = plan(c);
      // The manifest has each cell's finished epochs already; only a running cell's log is read again, for its pace.
      const epochs = c.epochs_done;
      if (c.status !== 'done') itersLeft += (p.epochs - epochs) * p.iters;
      if (c.status !== 'running') continue;
      const { lastWall } = cellEpochs(this.dir, c.id);
      const itps = lastWall ? p.iters / lastWall : null;
      if (itps) rate += itps;
      lines.push(`  ${c.id}: epoch ${epochs}/${p.epochs}${itps ? `, ${itps.toFixed(1)} it/s` : ''}${c.host ? ` on ${c.host}` : ''}`);
    }
    const done = m.counts.done;
    const head = `sweep ${this.grid.name}: ${done}/${m.cells.length} done${m.counts.failed ? `, ${m.counts.failed} failed` : ''}, ` +
      `${m.counts.running} running, ETA ${rate > 0 ? duration(itersLeft / rate) : '-'}`;
    if (process.stderr.isTTY) {
      if (this.drawn) process.stderr.write(`\x1b[${this.drawn}A\x1b[J`);
      process.stderr.write(`${[head, ...lines].join('\n')}\n`);
      this.drawn = lines.length + 1;
      return;
    }
    const key = [head, ...lines].join('|');
    if (this.last.get('all') !== key) {
      this.last.set('all', key);
      err([head, ...lines].join('\n'));
    }
  }

  /** Cell log lines go above the block. */
  log(line: string): void {
    if (process.stderr.isTTY && this.drawn) {
      process.stderr.write(`\x1b[${this.drawn}A\x1b[J`);
      this.drawn = 0;
    }
    err(line);
  }
}

/** For each cell, the settings that differ between the grid's cells (what tells them apart), as `k v, ...`. */
function varying(m: SweepManifest): string[] {
  const keys = [...new Set(m.cells.flatMap((c) => Object.keys(c.settings)))]
    .filter((k) => new Set(m.cells.map((c) => JSON.stringify(c.settings[k]))).size > 1);
  return m.cells.map((c) => keys.filter((k) => c.settings[k] !== undefined).map((k) => `${k} ${String(c.settings[k])}`).join(', '));
}

function statusTable(m: SweepManifest): string {
  const differs = varying(m);
  const rows = m.cells.map((c, i) => {
    const r = c.result as { final_top1?: number | null; best_epoch?: { epoch: number; top1: number } | null; diverged?: { epoch: number } } | null;
    const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : (100 * x).toFixed(2));
    return [c.id, differs[i]!, `${c.status}${r?.diverged ? ` (diverged in epoch ${r.diverged.epoch})` : ''}`, String(c.epochs_done), pct(r?.final_top1), r?.best_epoch ? `${pct(r.best_epoch.top1)} @${r.best_epoch.epoch}` : '-',
      duration(cellWallSeconds(c)), c.host ?? '-', c.error ?? ''];
  });
  const head = ['cell', 'settings that differ', 'status', 'epochs', 'final top-1', 'best (test-set sel.)', 'wall', 'host', 'error'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd();
  const c = m.counts;
  return [fmt(head), ...rows.map(fmt), '',
    `${m.grid.name} (${m.grid.file}, hash ${m.grid.hash}${m.queue ? `, queue ${m.queue}` : ''}): ${c.done}/${m.cells.length} done, ` +
    `${c.running} running, ${c.interrupted} interrupted, ${c.failed} failed, ${c.pending} pending`].join('\n');
}

/** The sweep as a Markdown table for docs: one row per cell, its bits per weight, accuracies, wall time and host. */
function markdownTable(m: SweepManifest): string {
  const differs = varying(m);
  const pct = (x: unknown) => (typeof x === 'number' ? (100 * x).toFixed(2) : '–');
  const lines = [
    `Sweep \`${m.grid.name}\` (\`granq sweep ${m.grid.file} --out DIR\`, grid hash ${m.grid.hash}): ${m.counts.done}/${m.cells.length} cells done. ` +
      'Test top-1 %; the final epoch is the headline, the best epoch is selected on the test set; bits per quantized weight as exported (float32 scale and zero point per row) / with integer zero points.',
    '',
    '| cell | settings that differ | bits/weight | FP | PTQ start | final (vs FP) | best (epoch) | wall | code | host | status |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|---|---|',
  ];
  m.cells.forEach((c, i) => {
    const r = (c.result ?? {}) as { fp_top1?: number; ptq_top1?: number; final_top1?: number; best_epoch?: { epoch: number; top1: number } | null;
      bits?: Record<string, { bits_per_weight: number }>; code?: BuildInfo; diverged?: { epoch: number } };
    const bpw = r.bits?.['f32'] && r.bits['int-zp'] ? `${r.bits['f32'].bits_per_weight.toFixed(2)} / ${r.bits['int-zp'].bits_per_weight.toFixed(2)}` : '–';
    const drop = signedDrop(typeof r.fp_top1 === 'number' && typeof r.final_top1 === 'number' ? 100 * (r.fp_top1 - r.final_top1) : null);
    lines.push(`| ${c.id} | ${differs[i]} | ${bpw} | ${pct(r.fp_top1)} | ${pct(r.ptq_top1)} | ${pct(r.final_top1)}${drop} | ` +
      `${r.best_epoch ? `${pct(r.best_epoch.top1)} (${r.best_epoch.epoch})` : '–'} | ${c.status === 'done' ? duration(cellWallSeconds(c)) : '–'} | ${shortCommit(r.code)} | ${c.host ?? '–'} | ${c.status}${c.status === 'running' || c.status === 'interrupted' ? `, epoch ${c.epochs_done}` : ''}${r.diverged ? `, diverged in epoch ${r.diverged.epoch}` : ''} |`);
  });
  return lines.join('\n');
}

interface SweepCliOptions { out?: string; workers: number; threads?: number; redis?: string; dryRun?: boolean; cells?: string }

async function runSweepCli(gridFile: string, opts: SweepCliOptions): Promise<number> {
  if (opts.out === undefined) throw new GranqError('--out: required: the sweep folder (DIR/cells/<id>/ per cell, DIR/sweep.json)');
  const o = { ...opts, out: opts.out };
  const schema = quantizeSchema();
  const grid = readGrid(gridFile, schema);
  // --cells: run only these (in this order); the sweep folder and its summary still hold the whole grid.
  const run = o.cells !== undefined ? selectCells(grid.cells, o.cells) : grid.cells;
  if (o.dryRun) {
    for (const c of run) process.stdout.write(`${c.id}  granq quantize ${schema.args(c.settings).join(' ')} --out ${o.out}/cells/${c.id}\n`);
    err(`sweep ${grid.name}: ${grid.cells.length} cells (hash ${grid.hash}); nothing run (--dry-run)`);
    return 0;
  }
  // BullMQ and ioredis are loaded only by the distributed commands (they add to every command's start-up).
  const q = o.redis !== undefined ? await import('../sweep/queue.js') : null;
  const target = o.redis !== undefined ? q!.parseRedisUrl(o.redis) : null;
  if (target) await q!.checkRedis(target);
  const queue = target ? queueName(grid) : null;
  openSweepDir(o.out, grid, queue);
  const monitor = new SweepMonitor(o.out, grid, schema.plans);
  const refresh = (): SweepManifest => {
    const m = collectManifest(o.out, grid, queue);
    writeManifest(o.out, m);
    return m;
  };
  let stopRequested = false;
  let stop: () => void = () => {};
  const onSigint = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    monitor.log('interrupt: the running cells write a checkpoint and stop (Ctrl-C again to quit at once; they still checkpoint)');
    stop();
  };
  process.on('SIGINT', onSigint);
  // The running summary: a sweep.json that cannot be written now (a full disk, a folder being moved) is said once
  // and tried again, never the end of the sweep and its running cells.
  let refreshFailed = false;
  const tick = () => {
    try {
      monitor.tick(refresh());
      refreshFailed = false;
    } catch (e) {
      if (!refreshFailed) monitor.log(`sweep: ${(e as Error).message}; trying again`);
      refreshFailed = true;
    }
  };
  const timer = setInterval(tick, 2000);
  try {
    let final: SweepManifest;
    if (!target) {
      const threads = o.threads ?? Math.max(1, Math.floor(cores() / o.workers));
      err(`sweep ${grid.name}: ${run.length === grid.cells.length ? '' : `${run.length} of `}${grid.cells.length} cells in ${o.out}, ` +
        `${o.workers} worker process${o.workers > 1 ? 'es' : ''} x ${threads} thread${threads > 1 ? 's' : ''}`);
      const sweep = runLocalSweep(o.out, { ...grid, cells: run }, {
        workers: o.workers, threads, launcher: launcher(), args: (c) => schema.args(c.settings), leaseMs: 2 * lockMs(),
        log: (l) => monitor.log(l), cellEnded: tick,
        ...(process.env['GRANQ_PAUSE_AT'] ? { env: { GRANQ_PAUSE_AT: process.env['GRANQ_PAUSE_AT'] } } : {}),
      });
      stop = () => sweep.stop();
      await sweep.done;
      final = refresh();
    } else {
      const todo = run.filter((c) => !isCellDone(o.out, c));
      const jobs = await q!.enqueueCells(target, queue!, todo);
      err(`sweep ${grid.name}: ${grid.cells.length} cells in ${o.out}, ${todo.length} enqueued on ${target.url} (queue ${queue}); ` +
        `start workers with: granq worker --redis ${target.url} --out ${o.out}`);
      stop = () => {};
      try {
        for (;;) {
          const states = await q!.jobStates(jobs, todo.map((c) => c.id));
          // A job missing from Redis (restarted without persistence, or flushed) for a cell not done: enqueue it again.
          const lost = todo.filter((c) => states.get(c.id)?.state === 'unknown' && !isCellDone(o.out, c));
          if (lost.length) {
            monitor.log(`sweep: ${lost.length} cell${lost.length > 1 ? 's' : ''} missing from the queue (Redis restarted?): enqueued again`);
            await q!.enqueueCells(target, queue!, lost).then((x) => x.close());
          }
          const finished = (c: GridCell) => isCellDone(o.out, c) || states.get(c.id)?.state === 'failed';
          if ((!lost.length && todo.every(finished)) || stopRequested) {
            final = refresh();
            for (const c of final.cells) {
              const s = states.get(c.id);
              if (s?.state === 'failed' && c.status !== 'failed') {
                final.counts[c.status]--;
                final.counts.failed++;
                c.status = 'failed';
                c.error = s.reason ?? 'the job failed';
              }
            }
            writeManifest(o.out, final);
            break;
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      } finally {
        await jobs.close();
      }
      if (stopRequested) {
        err(`sweep: stopped waiting; the workers go on with the queued cells (granq sweep status ${o.out})`);
        return 130;
      }
    }
    clearInterval(timer);
    process.stdout.write(`${statusTable(final!)}\n`);
    const runDone = run.filter((c) => isCellDone(o.out, c)).length;
    if (stopRequested && runDone < run.length) {
      err(`sweep: interrupted; run the same command again to continue (finished cells are skipped, the others resume)`);
      return 130;
    }
    if (final!.counts.failed) {
      err(`sweep: ${final!.counts.failed} of ${final!.cells.length} cells failed (their errors are above and in ${o.out}/sweep.json)`);
      return 1;
    }
    return runDone === run.length ? 0 : 1;
  } finally {
    clearInterval(timer);
    process.removeListener('SIGINT', onSigint);
  }
}

interface WorkerCliOptions { redis: string; out: string; concurrency: number; threads?: number }

async function runWorkerCli(o: WorkerCliOptions): Promise<number> {
  const { checkRedis, parseRedisUrl, startWorker } = await import('../sweep/queue.js');
  const target = parseRedisUrl(o.redis);
  const m = readManifest(o.out, '--out');
  if (!m.queue) throw new GranqError(`--out: the sweep in ${o.out} is an embedded one (started without --redis); it has no queue to take jobs from`);
  await checkRedis(target);
  const schema = quantizeSchema();
  const cells = new Map(manifestCells(m).map((c) => [c.id, c] as const));
  const threads = o.threads ?? Math.max(1, Math.floor(cores() / o.concurrency));
  err(`worker ${os.hostname()} pid ${process.pid}: queue ${m.queue} on ${target.url}, ${o.concurrency} at a time x ${threads} thread${threads > 1 ? 's' : ''}, cells in ${o.out}`);
  const worker = startWorker(target, m.queue, {
    dir: o.out, concurrency: o.concurrency, threads, launcher: launcher(), cell: (id) => cells.get(id) ?? null,
    args: (c: GridCell) => schema.args(c.settings), log: err,
  });
  let code = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (code) process.exit(130);
    code = 130;
    err(`worker: ${sig}: the running cells write a checkpoint and go back to the queue`);
    void worker.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await worker.closed;
  return code;
}

export function addSweepCommands(program: Command, setExit: (code: number) => void): void {
  const sweep = program
    .command('sweep')
    .description('run a grid of granq quantize cells (GRID: a JSON file, see grids/): embedded with --workers local processes, ' +
      'or on a BullMQ queue with --redis; every cell a resumable run in DIR/cells/<id>/, DIR/sweep.json the summary; ' +
      'the same command again continues an interrupted sweep')
    .argument('<grid>', 'grid file (JSON: base, axes, cells)')
    .option('--out <dir>', 'the sweep folder (required)')
    .addOption(new Option('--workers <n>', 'embedded: cells run at a time (local processes)').argParser(positiveInt).default(1))
    .addOption(new Option('--threads <n>', 'threads per cell (default: cores / workers)').argParser(positiveInt))
    .option('--redis <url>', 'distributed: enqueue the cells on this Redis (redis://HOST:PORT) and wait for granq worker processes')
    .option('--cells <ids>', 'run only these cells, in this order: comma-separated cell ids or id prefixes (see --dry-run)')
    .option('--dry-run', 'check the grid and print each cell id with its granq quantize command; run nothing')
    .action(async (grid: string, opts: SweepCliOptions) => setExit(await runSweepCli(grid, opts)));
  sweep
    .command('status')
    .description("a sweep folder's cells: status, epochs, final and best top-1, wall time, host, error")
    .argument('<dir>', 'the sweep folder')
    .option('--json', 'print sweep.json (as the cell folders say now) as one line')
    .option('--markdown', 'print the cells as a Markdown table (for docs) instead of the status table')
    .action((dir: string, opts: { json?: boolean; markdown?: boolean }) => {
      const m0 = readManifest(dir);
      const m = collectManifest(dir, { ...m0.grid, cells: manifestCells(m0) }, m0.queue);
      process.stdout.write(`${opts.markdown ? markdownTable(m) : statusTable(m)}\n`);
      if (opts.json) process.stdout.write(`${JSON.stringify(m)}\n`);
    });
  program
    .command('worker')
    .description('take the cells of a distributed sweep from its BullMQ queue and run them (DIR: the sweep folder, on a shared ' +
      'filesystem); runs until Ctrl-C or SIGTERM, which put the running cells back in the queue')
    .requiredOption('--redis <url>', 'the Redis of the sweep (redis://HOST:PORT)')
    .requiredOption('--out <dir>', 'the sweep folder given to granq sweep')
    .addOption(new Option('--concurrency <n>', 'cells run at a time').argParser(positiveInt).default(1))
    .addOption(new Option('--threads <n>', 'threads per cell (default: cores / concurrency)').argParser(positiveInt))
    .action(async (opts: WorkerCliOptions) => setExit(await runWorkerCli(opts)));
}
