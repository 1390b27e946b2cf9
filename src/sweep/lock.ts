/**
 * The lock of one cell's run folder, `lock.json`: whoever runs a cell holds it, so two workers never write one cell at
 * the same time, whatever the queue does (a stalled job handed to a second worker while the first one still runs).
 * Created with O_EXCL; it names its holder (host, pid, the run's child pid) and carries a lease that the holder renews
 * while it runs. A lock is stale when its lease has expired, or, on the same host, when neither the holder nor its
 * child is alive (a worker killed by SIGKILL: its run stops within one iteration once its IPC channel closes). A
 * stale lock is taken over by renaming it aside first, so of two workers taking it over only one wins.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GranqError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';

export const LOCK_FILE = 'lock.json';

/**
 * GRANQ_SWEEP_LOCK_MS (default 30000; tests make it short): a distributed sweep's BullMQ job lock and stalled-check
 * interval; a cell lock's lease is twice it.
 */
export function lockMs(): number {
  const raw = process.env['GRANQ_SWEEP_LOCK_MS'];
  const v = Number(raw ?? 30_000);
  if (!Number.isInteger(v) || v < 100) throw new GranqError(`GRANQ_SWEEP_LOCK_MS: expected milliseconds >= 100, got '${raw}'`);
  return v;
}

export interface LockInfo {
  host: string;
  pid: number;
  child_pid: number | null;
  token: string;
  /** Milliseconds since the epoch after which the lock is stale, whoever holds it. */
  lease_until: number;
}

export interface CellLock {
  readonly info: LockInfo;
  /** Records the pid of the run the holder started (so the lock outlives a holder whose run still runs). */
  setChild(pid: number | null): void;
  release(): void;
}

function alive(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readLock(dir: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

export function isStale(l: LockInfo, now = Date.now()): boolean {
  if (l.lease_until < now) return true;
  return l.host === os.hostname() && !alive(l.pid) && !alive(l.child_pid);
}

function unreadableIsStale(file: string, leaseMs: number): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs > leaseMs;
  } catch {
    return true;
  }
}

/** Why a lock is held, for a waiting worker's message. */
export const describeLock = (l: LockInfo) => `held by pid ${l.pid}${l.child_pid ? ` (run pid ${l.child_pid})` : ''} on ${l.host}, lease until ${new Date(l.lease_until).toISOString()}`;

/**
 * Takes the lock of `dir` (null when another live holder has it); `leaseMs` is renewed every leaseMs/3 until released.
 */
export function tryLock(dir: string, leaseMs: number): CellLock | null {
  const file = path.join(dir, LOCK_FILE);
  const info: LockInfo = { host: os.hostname(), pid: process.pid, child_pid: null, token: randomBytes(8).toString('hex'), lease_until: Date.now() + leaseMs };
  const create = (): boolean => {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    writeSync(fd, `${JSON.stringify(info)}\n`);
    closeSync(fd);
    return true;
  };
  if (!create()) {
    const held = readLock(dir);
    if (held && !isStale(held)) return null;
    // Unreadable: a holder between its create and its write, or one that died there; only an old one is stale.
    if (!held && !unreadableIsStale(file, leaseMs)) return null;
    // Take over: move the stale lock aside; only if what was moved is the lock judged stale is it removed.
    const aside = `${file}.${info.token}.stale`;
    try {
      renameSync(file, aside);
    } catch {
      return null;
    }
    let moved: LockInfo | null = null;
    try {
      moved = JSON.parse(readFileSync(aside, 'utf8')) as LockInfo;
    } catch { /* unreadable: a half-written lock of a dead holder */ }
    if (held && moved && moved.token !== held.token) {
      // Another worker replaced it meanwhile: put its lock back.
      try {
        renameSync(aside, file);
      } catch { /* it is gone or replaced again: either way not ours */ }
      return null;
    }
    rmSync(aside, { force: true });
    if (!create()) return null;
  }
  const write = () => writeFileAtomic(file, [Buffer.from(`${JSON.stringify(info)}\n`)]);
  const timer = setInterval(() => {
    info.lease_until = Date.now() + leaseMs;
    if (readLock(dir)?.token === info.token) write();
  }, Math.max(1, Math.floor(leaseMs / 3)));
  timer.unref();
  return {
    info,
    setChild(pid) {
      info.child_pid = pid;
      write();
    },
    release() {
      clearInterval(timer);
      if (readLock(dir)?.token === info.token) rmSync(file, { force: true });
    },
  };
}
