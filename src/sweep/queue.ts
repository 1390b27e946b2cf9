/**
 * The distributed sweep on BullMQ (Redis): `granq sweep GRID --redis URL` enqueues one job per unfinished cell (job
 * id = cell id, so enqueueing twice is a no-op) in the queue `granq-sweep-<grid hash>` and waits; `granq worker` on
 * any machine that sees DIR takes jobs and runs each as a cell (cell.ts). Delivery is at least once and the jobs are
 * idempotent: a worker killed mid-job leaves a job whose BullMQ lock expires; another worker's stalled check hands it
 * on, and the cell continues from its last checkpoint once the cell lock (lock.ts) is free. A cell whose run fails
 * (bad settings, NaN) fails its job, with the error, and the sweep goes on.
 * BullMQ's job lock and stalled-check interval are lock.ts's lockMs() (GRANQ_SWEEP_LOCK_MS): a stalled job is handed
 * on after about twice that.
 */
import os from 'node:os';
import { DelayedError, Queue, WaitingError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { GranqError } from '../errors.js';
import { runCell, type CellOutcome, type Launcher } from './cell.js';
import { lockMs } from './lock.js';
import type { GridCell } from './grid.js';

export interface RedisTarget {
  url: string;
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
}

export function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new GranqError(`--redis: '${url}' is not a URL; expected redis://HOST:PORT[/DB]`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new GranqError(`--redis: '${url}': expected redis://HOST:PORT[/DB] (or rediss:// for TLS)`);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new GranqError(`--redis: '${url}': the database must be a number, e.g. redis://127.0.0.1:6379/0`);
  return {
    url, host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379, db, tls: u.protocol === 'rediss:',
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}), ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

const connection = (t: RedisTarget) => ({
  host: t.host, port: t.port, db: t.db, ...(t.username ? { username: t.username } : {}), ...(t.password ? { password: t.password } : {}),
  ...(t.tls ? { tls: {} } : {}), maxRetriesPerRequest: null,
});

/** One PING, or a one-line error within `timeoutMs`. */
export async function checkRedis(t: RedisTarget, timeoutMs = 4000): Promise<void> {
  const r = new Redis({ ...connection(t), lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  r.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      r.connect().then(() => r.ping()),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs); }),
    ]);
  } catch (e) {
    throw new GranqError(`--redis: cannot reach Redis at ${t.url} (${(e as Error).message || String(e)})`);
  } finally {
    clearTimeout(timer);
    r.disconnect();
  }
}

export interface CellJob { id: string }

/** Enqueues the cells not yet done; a job left completed or failed by an earlier sweep of this grid is enqueued anew. */
export async function enqueueCells(t: RedisTarget, name: string, cells: readonly GridCell[]): Promise<Queue<CellJob>> {
  const queue = new Queue<CellJob>(name, { connection: connection(t) });
  // While Redis is away ioredis reconnects and BullMQ reports errors here; the sweep's polling waits it out.
  queue.on('error', () => {});
  for (const c of cells) {
    const job = await queue.getJob(c.id);
    if (job) {
      const state = await queue.getJobState(c.id);
      if (state !== 'completed' && state !== 'failed') continue;
      await queue.remove(c.id);
    }
  }
  await queue.addBulk(cells.map((c) => ({ name: 'cell', data: { id: c.id }, opts: { jobId: c.id, attempts: 1, removeOnComplete: false, removeOnFail: false } })));
  return queue;
}

/** Each cell's job state, and the reason of the failed ones. */
export async function jobStates(queue: Queue<CellJob>, ids: readonly string[]): Promise<Map<string, { state: string; reason?: string }>> {
  const out = new Map<string, { state: string; reason?: string }>();
  for (const id of ids) {
    const state = await queue.getJobState(id);
    let reason: string | undefined;
    if (state === 'failed') reason = (await queue.getJob(id))?.failedReason;
    out.set(id, { state, ...(reason ? { reason } : {}) });
  }
  return out;
}

export interface WorkerOptions {
  dir: string;
  concurrency: number;
  threads: number;
  launcher: Launcher;
  /** The cell of a job id, or null when it is not a cell of the sweep in DIR. */
  cell(id: string): GridCell | null;
  args(cell: GridCell): string[];
  log(line: string): void;
  cellEnded?(cell: GridCell, outcome: CellOutcome): void;
}

export interface SweepWorker {
  /** Ctrl-C: takes no further job, interrupts the running cells (they checkpoint) and puts their jobs back. */
  stop(): Promise<void>;
  closed: Promise<void>;
}

export function startWorker(t: RedisTarget, name: string, o: WorkerOptions): SweepWorker {
  const ms = lockMs();
  const running = new Set<{ kill(signal: NodeJS.Signals): boolean }>();
  let stopping = false;
  const processor = async (job: Job<CellJob>, token?: string) => {
    const cell = o.cell(job.data.id);
    if (!cell) throw new Error(`job ${job.data.id} is not a cell of the sweep in ${o.dir}`);
    let child: { kill(signal: NodeJS.Signals): boolean } | null = null;
    const outcome = await runCell(o.dir, cell, {
      launcher: o.launcher, args: o.args(cell), threads: o.threads, leaseMs: 2 * ms, log: o.log,
      started(c) {
        child = c;
        running.add(c);
        if (stopping) c.kill('SIGINT');
      },
    });
    if (child) running.delete(child);
    o.cellEnded?.(cell, outcome);
    if (outcome.status === 'done') return { status: 'done', host: os.hostname(), skipped: outcome.skipped };
    if (outcome.status === 'failed') throw new Error(outcome.record.error ?? 'the run failed');
    if (outcome.status === 'busy') {
      // Another live holder runs this cell (a stalled job handed on while its first worker still runs): look again soon.
      o.log(`cell ${cell.id}: ${outcome.lock}; retrying in ${(ms / 1000).toFixed(1)} s`);
      try {
        await job.moveToDelayed(Date.now() + ms, token);
      } catch (e) {
        o.log(`cell ${cell.id}: its job could not be delayed (${(e as Error).message})`);
      }
      throw new DelayedError();
    }
    // Interrupted (this worker is stopping): back in the queue for any worker. A job gone from Redis (it restarted
    // empty) cannot move; the waiting sweep enqueues its cell again.
    try {
      await job.moveToWait(token);
    } catch (e) {
      o.log(`cell ${cell.id}: its job could not go back to the queue (${(e as Error).message})`);
    }
    throw new WaitingError();
  };
  const worker = new Worker<CellJob>(name, processor, {
    connection: connection(t), concurrency: o.concurrency, lockDuration: ms, stalledInterval: ms, maxStalledCount: 1000,
  });
  worker.on('error', (e) => o.log(`worker: ${e.message}`));
  let resolveClosed: () => void = () => {};
  const closed = new Promise<void>((r) => { resolveClosed = r; });
  worker.on('closed', () => resolveClosed());
  return {
    closed,
    async stop() {
      if (stopping) return;
      stopping = true;
      for (const c of running) c.kill('SIGINT');
      await worker.close();
      resolveClosed();
    },
  };
}
