/** The cell lock (src/sweep/lock.ts): exclusive, stale when its holder is gone or its lease ran out, taken over once. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { LOCK_FILE, readLock, tryLock, type LockInfo } from '../../src/sweep/lock.js';

const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'granq-lock-'));
const write = (d: string, l: Partial<LockInfo>) => fs.writeFileSync(path.join(d, LOCK_FILE), JSON.stringify({
  host: os.hostname(), pid: process.pid, child_pid: null, token: 'other', lease_until: Date.now() + 60_000, ...l,
}));
/** The pid of a process that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

test('a held lock keeps a second taker out, and is free again once released', () => {
  const d = dir();
  const a = tryLock(d, 60_000)!;
  assert.ok(a);
  assert.equal(tryLock(d, 60_000), null);
  assert.equal(readLock(d)!.token, a.info.token);
  a.setChild(process.pid);
  assert.equal(readLock(d)!.child_pid, process.pid);
  a.release();
  assert.equal(fs.existsSync(path.join(d, LOCK_FILE)), false);
  const b = tryLock(d, 60_000)!;
  assert.ok(b);
  b.release();
});

test('stale locks are taken over: holder and run dead on this host, or the lease expired on another host', () => {
  const d = dir();
  write(d, { pid: deadPid(), child_pid: deadPid() });
  const a = tryLock(d, 60_000)!;
  assert.ok(a, 'dead holder and dead run: stale');
  assert.notEqual(readLock(d)!.token, 'other');
  a.release();
  // Holder dead but its run still alive (this process stands in for it): not stale.
  write(d, { pid: deadPid(), child_pid: process.pid });
  assert.equal(tryLock(d, 60_000), null);
  // Another host: liveness cannot be seen, only the lease counts.
  write(d, { host: 'elsewhere', pid: 1, lease_until: Date.now() + 60_000 });
  assert.equal(tryLock(d, 60_000), null);
  write(d, { host: 'elsewhere', pid: 1, lease_until: Date.now() - 1 });
  const b = tryLock(d, 60_000)!;
  assert.ok(b, 'expired lease: stale');
  b.release();
  // An unreadable lock (a holder between create and write) is not stale while it is new.
  fs.writeFileSync(path.join(d, LOCK_FILE), '');
  assert.equal(tryLock(d, 60_000), null);
  const old = new Date(Date.now() - 120_000);
  fs.utimesSync(path.join(d, LOCK_FILE), old, old);
  const c = tryLock(d, 60_000)!;
  assert.ok(c);
  c.release();
  fs.rmSync(d, { recursive: true, force: true });
});
