/**
 * granq sweep / granq worker: a tiny grid (2 bit widths x 2 seeds of the `tiny` preset on the default teacher), run
 * embedded with two worker processes, interrupted and re-run, and distributed on BullMQ over a redis-server of the
 * test's own with two workers, one of them killed by SIGKILL while it holds a job. Every cell's student must be
 * byte-identical to the same cell run alone with granq quantize. Every interruption is triggered by the run's own
 * progress (GRANQ_PAUSE_AT: the run stops at a fixed iteration and says so in its output.log), never by a timer.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { quantizeSchema } from '../../src/cli/sweep.js';
import { sweepTable } from '../../src/report/sweep-table.js';
import { buildInfo, shortCommit } from '../../src/run/build-info.js';
import { parseGrid } from '../../src/sweep/grid.js';
import { cellWallSeconds } from '../../src/sweep/manifest.js';
import { assertOneLineError, CLI, CLI_ENV, granq } from '../kit/cli.js';
import { freePort, noRedis, startRedis, type TestRedis } from '../kit/redis.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'granq-sweep-'));
const md5 = (f: string) => createHash('md5').update(fs.readFileSync(f)).digest('hex');
// Two epochs of 3 iterations at batch 8 (epoch 1 = warm-up), 32 test images, 16 held-out synthetic images.
const BASE = { preset: 'tiny', epochs: 2, iters: 3, 'test-limit': 32, 'eval-batch': 64, 'agree-images': 16 };
const GRID = { name: 'tiny-test', base: BASE, axes: { bits: [{ wbits: 3, abits: 3 }, { wbits: 4, abits: 4 }], seed: [0, 1] } };

function writeGrid(dir: string, grid: object, name = 'grid.json'): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, JSON.stringify(grid));
  return f;
}

interface Manifest { grid: { hash: string }; counts: Record<string, number>; cells: { id: string; status: string; starts: number; settings: Record<string, unknown> }[] }
const manifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'sweep.json'), 'utf8')) as Manifest;
const student = (dir: string, id: string) => md5(path.join(dir, 'cells', id, 'student.safetensors'));

interface Proc { child: ChildProcess; stderr: () => string; exit: Promise<number | null> }
function start(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...CLI_ENV, ...env } });
  let err = '';
  child.stderr!.on('data', (d) => { err += String(d); });
  child.stdout!.on('data', () => {});
  const exit = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return { child, stderr: () => err, exit };
}

/** Resolves once `check()` holds, looking again whenever the file changes or the process writes (progress, not time). */
async function until(what: string, check: () => boolean, p: Proc): Promise<void> {
  let done = false;
  p.exit.then(() => { done = true; });
  while (!check()) {
    if (done) throw new Error(`the process ended before ${what}; its stderr:\n${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const paused = (dir: string, id: string, marker: string) => {
  const f = path.join(dir, 'cells', id, 'output.log');
  return fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes(marker);
};

describe('granq sweep', () => {
  const root = tmp();
  const gridFile = writeGrid(root, GRID);
  const grid = parseGrid(gridFile, fs.readFileSync(gridFile, 'utf8'), quantizeSchema());
  const alone = new Map<string, string>();
  const embedded = path.join(root, 'embedded');

  before(() => {
    for (const c of grid.cells) {
      const out = path.join(root, 'alone', c.id);
      const r = granq('quantize', ...quantizeSchema().args(c.settings), '--out', out);
      assert.equal(r.code, 0, r.stderr);
      alone.set(c.id, md5(path.join(out, 'student.safetensors')));
    }
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('cell ids are stable and come from the settings alone', () => {
    assert.equal(grid.cells.length, 4);
    assert.equal(new Set(grid.cells.map((c) => c.id)).size, 4);
    const again = parseGrid('x.json', JSON.stringify({ ...GRID, name: 'other' }), quantizeSchema());
    assert.deepEqual(again.cells.map((c) => c.id), grid.cells.map((c) => c.id));
    assert.equal(again.hash, grid.hash);
    // The same settings as an explicit cell, keys in another order: the same id.
    const s = grid.cells[0]!.settings;
    const explicit = parseGrid('y.json', JSON.stringify({ cells: [Object.fromEntries(Object.entries(s).reverse())] }), quantizeSchema());
    assert.equal(explicit.cells[0]!.id, grid.cells[0]!.id);
    assert.match(grid.cells[0]!.id, /^w3a3-s0-[0-9a-f]{8}$/);
  });

  test('embedded, two workers: every cell once in sweep.json, each student byte-identical to the cell run alone', () => {
    const r = granq('sweep', gridFile, '--out', embedded, '--workers', '2');
    assert.equal(r.code, 0, r.stderr);
    const m = manifest(embedded);
    assert.deepEqual(m.cells.map((c) => c.id).sort(), grid.cells.map((c) => c.id).sort());
    assert.equal(m.counts['done'], 4);
    for (const c of grid.cells) assert.equal(student(embedded, c.id), alone.get(c.id), c.id);
    // A second run skips every finished cell.
    const again = granq('sweep', gridFile, '--out', embedded);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /started|resumed/);
    assert.deepEqual(manifest(embedded).cells.map((c) => c.starts), [1, 1, 1, 1]);
    const st = granq('sweep', 'status', embedded);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /4\/4 done/);
    for (const c of grid.cells) assert.match(st.stdout, new RegExp(`${c.id}  .*  done `));
    // The docs table: each cell's final top-1 against FP with its sign, and the code that made it (result.json's
    // code: the build's commit, as dist/build-info.json has it).
    const md = granq('sweep', 'status', embedded, '--markdown');
    assert.equal(md.code, 0, md.stderr);
    const built = buildInfo();
    assert.match(built.commit ?? '', /^[0-9a-f]{40}$/, 'the build knows its commit (a git checkout)');
    for (const c of grid.cells) {
      const res = JSON.parse(fs.readFileSync(path.join(embedded, 'cells', c.id, 'result.json'), 'utf8'));
      assert.deepEqual(res.code, built);
      const d = 100 * (res.final_top1 - res.fp_top1);
      const row = md.stdout.split('\n').find((l) => l.startsWith(`| ${c.id} |`)) ?? '';
      assert.ok(row.includes(`${(100 * res.final_top1).toFixed(2)} (${d < 0 ? '−' : '+'}${Math.abs(d).toFixed(2)})`), row);
      assert.ok(row.includes(`| ${shortCommit(built)} |`), row);
    }
    // granq report DIR renders the sweep: its table over seeds, and every cell as a run (rows, curves).
    const html = path.join(embedded, 'report.html');
    const rep = granq('report', embedded, '--out', html, '--images', '1', '--pixel-images', '16');
    assert.equal(rep.code, 0, rep.stderr);
    const page = fs.readFileSync(html, 'utf8');
    assert.match(page, /<table class="sweep-table" data-sweep="tiny-test">/);
    for (const c of grid.cells) assert.ok(page.includes(`<tr><td>${c.id}</td>`), `${c.id} has no row`);
    // The report's table over seeds: one row per bit width, n = 2, the mean of the cells' own final top-1.
    const t = sweepTable(embedded);
    assert.equal(t.rows.length, 2);
    for (const row of t.rows) {
      const finals = row.cells.map((id) => JSON.parse(fs.readFileSync(path.join(embedded, 'cells', id, 'result.json'), 'utf8')).final_top1 * 100);
      assert.equal(row.final!.n, 2);
      assert.ok(Math.abs(row.final!.mean - (finals[0] + finals[1]) / 2) < 0.006, `${row.final!.mean} vs ${finals}`);
      assert.ok(Math.abs(row.final!.std! - Math.abs(finals[0] - finals[1]) / Math.SQRT2) < 0.006);
    }
    // Wall time is the run's own count over all its starts (result.json), not cell.json's, which misses a start whose
    // sweep process was stopped with its machine: with cell.json's figure zeroed the table and the docs rows keep it.
    for (const c of grid.cells) {
      const f = path.join(embedded, 'cells', c.id, 'cell.json');
      fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), wall_s: 0 }));
    }
    const walls = (ids: string[]) => ids.map((id) => JSON.parse(fs.readFileSync(path.join(embedded, 'cells', id, 'result.json'), 'utf8')).wall_seconds as number);
    for (const row of sweepTable(embedded).rows) {
      const w = walls(row.cells);
      assert.ok(w.every((x) => x > 0), `${w}`);
      assert.ok(Math.abs(row.wall_s!.mean - (w[0]! + w[1]!) / 2) < 1e-9, `${row.wall_s!.mean} vs ${w}`);
    }
    assert.deepEqual(cellWallSeconds({ wall_s: 7, result: { wall_seconds: 9 } }), 9);
    assert.deepEqual(cellWallSeconds({ wall_s: 7, result: {} }), 7);
    assert.deepEqual(cellWallSeconds({ wall_s: 7, result: null }), 7);
  });

  test('embedded, interrupted (SIGINT once the first cell reaches epoch 2, iteration 2) and run again: resumes to the same files', async () => {
    const out = path.join(root, 'interrupted');
    // The seed-0 half of the grid: its two cells have the same ids as in the whole grid.
    const half = writeGrid(root, { ...GRID, axes: { ...GRID.axes, seed: [0] } }, 'half.json');
    const cells = grid.cells.filter((c) => c.settings['seed'] === 0);
    const first = cells[0]!.id;
    const p = start(['sweep', half, '--out', out, '--workers', '1'], { GRANQ_PAUSE_AT: '2:2' });
    await until('the first cell paused', () => paused(out, first, 'paused at epoch 2, iteration 2'), p);
    p.child.kill('SIGINT');
    assert.equal(await p.exit, 130, p.stderr());
    const m = manifest(out);
    assert.equal(m.cells.find((c) => c.id === first)!.status, 'interrupted');
    assert.equal(m.counts['done'], 0);
    const r = granq('sweep', half, '--out', out, '--workers', '1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`cell ${first}: resumed`));
    assert.deepEqual(manifest(out).cells.map((c) => c.id), cells.map((c) => c.id));
    for (const c of cells) assert.equal(student(out, c.id), alone.get(c.id), c.id);
    assert.equal(manifest(out).cells.find((c) => c.id === first)!.starts, 2);
  });

  test('embedded: a cell that fails is recorded with its error and the others still run', () => {
    const d = tmp();
    const good = grid.cells[0]!;
    const f = writeGrid(d, { cells: [{ ...good.settings, data: '/nonexistent-granq-data' }, good.settings] });
    const r = granq('sweep', f, '--out', path.join(d, 'o'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /1 of 2 cells failed/);
    const m = JSON.parse(fs.readFileSync(path.join(d, 'o', 'sweep.json'), 'utf8')) as Manifest & { cells: { error: string | null }[] };
    assert.deepEqual(m.cells.map((c) => c.status), ['failed', 'done']);
    assert.match(m.cells[0]!.error!, /--data: expected an existing directory, got \/nonexistent-granq-data/);
    assert.equal(student(path.join(d, 'o'), good.id), alone.get(good.id));
    fs.rmSync(d, { recursive: true, force: true });
  });

  test('distributed on BullMQ: two workers, one killed by SIGKILL while it holds a job; every cell once, byte-identical', { skip: noRedis }, async () => {
    const redis: TestRedis = await startRedis();
    const out = path.join(root, 'distributed');
    const procs: Proc[] = [];
    try {
      const sweep = start(['sweep', gridFile, '--out', out, '--redis', redis.url]);
      procs.push(sweep);
      await until('the cells were enqueued', () => /enqueued/.test(sweep.stderr()), sweep);
      const env = { GRANQ_SWEEP_LOCK_MS: '1000' };
      // Worker A's runs stop at epoch 2, iteration 2 and wait there: A is killed while it holds that job.
      const a = start(['worker', '--redis', redis.url, '--out', out], { ...env, GRANQ_PAUSE_AT: '2:2' });
      procs.push(a);
      await until('worker A started a cell', () => /cell \S+: started/.test(a.stderr()), a);
      const held = /cell (\S+): started/.exec(a.stderr())![1]!;
      await until('worker A\'s cell paused', () => paused(out, held, 'paused at epoch 2, iteration 2'), a);
      const b = start(['worker', '--redis', redis.url, '--out', out], env);
      procs.push(b);
      a.child.kill('SIGKILL');
      assert.equal(await sweep.exit, 0, sweep.stderr());
      const m = manifest(out);
      assert.deepEqual(m.cells.map((c) => c.id).sort(), grid.cells.map((c) => c.id).sort());
      assert.equal(m.counts['done'], 4);
      for (const c of grid.cells) assert.equal(student(out, c.id), alone.get(c.id), c.id);
      // The killed worker's cell was continued from its checkpoint by worker B.
      assert.match(b.stderr(), new RegExp(`cell ${held}: resumed`));
      assert.equal(m.cells.find((c) => c.id === held)!.starts, 2);
      assert.match(fs.readFileSync(path.join(out, 'cells', held, 'output.log'), 'utf8'), /sweep process that started this run is gone/);
      // The same grid embedded gives the same files.
      for (const c of grid.cells) assert.equal(student(out, c.id), student(embedded, c.id), c.id);
      b.child.kill('SIGINT');
      assert.equal(await b.exit, 130, b.stderr());
      // A failing cell fails its job with the run's error; the sweep records it and ends.
      const failing = writeGrid(root, { cells: [{ ...grid.cells[0]!.settings, data: '/nonexistent-granq-data' }] }, 'failing.json');
      const fout = path.join(root, 'distributed-failing');
      const fs2 = start(['sweep', failing, '--out', fout, '--redis', redis.url]);
      procs.push(fs2);
      await until('the failing cell was enqueued', () => /enqueued/.test(fs2.stderr()), fs2);
      const c = start(['worker', '--redis', redis.url, '--out', fout], env);
      procs.push(c);
      assert.equal(await fs2.exit, 1, fs2.stderr());
      const fm = JSON.parse(fs.readFileSync(path.join(fout, 'sweep.json'), 'utf8')) as Manifest & { cells: { error: string | null }[] };
      assert.equal(fm.cells[0]!.status, 'failed');
      assert.match(fm.cells[0]!.error!, /--data: expected an existing directory/);
    } finally {
      for (const p of procs) p.child.kill('SIGKILL');
      await Promise.all(procs.map((p) => p.exit));
      await redis.stop();
    }
  });

  test('distributed: Redis restarted without persistence mid-sweep; the sweep enqueues the lost cells again and finishes', { skip: noRedis }, async () => {
    let redis: TestRedis = await startRedis();
    const out = path.join(root, 'redis-restart');
    const half = writeGrid(root, { ...GRID, axes: { ...GRID.axes, seed: [1] } }, 'half-s1.json');
    const cells = grid.cells.filter((c) => c.settings['seed'] === 1);
    const procs: Proc[] = [];
    try {
      const sweep = start(['sweep', half, '--out', out, '--redis', redis.url]);
      procs.push(sweep);
      await until('the cells were enqueued', () => /enqueued/.test(sweep.stderr()), sweep);
      // Worker A's run stops at epoch 2, iteration 2 and waits there while Redis goes down and comes back empty.
      const a = start(['worker', '--redis', redis.url, '--out', out], { GRANQ_SWEEP_LOCK_MS: '1000', GRANQ_PAUSE_AT: '2:2' });
      procs.push(a);
      await until('worker A started a cell', () => /cell \S+: started/.test(a.stderr()), a);
      const held = /cell (\S+): started/.exec(a.stderr())![1]!;
      await until('worker A\'s cell paused', () => paused(out, held, 'paused at epoch 2, iteration 2'), a);
      const port = redis.port;
      await redis.stop();
      redis = await startRedis(port);
      await until('the sweep enqueued the lost cells again', () => /2 cells missing from the queue \(Redis restarted\?\): enqueued again/.test(sweep.stderr()), sweep);
      a.child.kill('SIGINT');
      await a.exit;
      const b = start(['worker', '--redis', redis.url, '--out', out], { GRANQ_SWEEP_LOCK_MS: '1000' });
      procs.push(b);
      assert.equal(await sweep.exit, 0, sweep.stderr());
      assert.match(b.stderr(), new RegExp(`cell ${held}: resumed`));
      assert.match(sweep.stderr(), /missing from the queue \(Redis restarted\?\): enqueued again/);
      const m = manifest(out);
      assert.equal(m.counts['done'], 2);
      for (const c of cells) assert.equal(student(out, c.id), alone.get(c.id), c.id);
    } finally {
      for (const p of procs) p.child.kill('SIGKILL');
      await Promise.all(procs.map((p) => p.exit));
      await redis.stop();
    }
  });

  test('--cells runs only the named cells, in the order given; the sweep folder still holds the whole grid', () => {
    const dir = path.join(root, 'chosen');
    const last = grid.cells[3]!.id;
    // A full id first, then a prefix (w3a3-s0 names one cell here).
    const r = granq('sweep', gridFile, '--out', dir, '--cells', `${last},w3a3-s0`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /2 of 4 cells/);
    const order = [...r.stderr.matchAll(/cell (\S+): started/g)].map((x) => x[1]);
    const first = grid.cells.find((c) => c.id.startsWith('w3a3-s0'))!.id;
    assert.deepEqual(order, [last, first]);
    const m = manifest(dir);
    assert.equal(m.cells.length, 4);
    assert.deepEqual(m.counts, { ...m.counts, done: 2, pending: 2 });
    for (const id of [last, first]) assert.equal(student(dir, id), alone.get(id), id);
    assertOneLineError(granq('sweep', gridFile, '--out', dir, '--cells', 'w9a9'), 1, /--cells: no cell id starts with 'w9a9'/);
    assertOneLineError(granq('sweep', gridFile, '--out', dir, '--cells', ','), 1, /--cells: expected cell ids/);
  });

  test('bad input: one-line errors', async () => {
    const d = tmp();
    const bad = (g: object, re: RegExp) => assertOneLineError(granq('sweep', writeGrid(d, g), '--out', path.join(d, 'o')), 1, re);
    bad({ axes: { colour: [1, 2] } }, /axis 'colour': unknown setting 'colour'/);
    bad({ base: { wbits: 3, abits: 3 }, axes: { act: ['granq', 'sparkle'] } }, /cell w3a3-sparkle-[0-9a-f]{8} \(.*act sparkle\): option '--act <name>' argument 'sparkle' is invalid/);
    bad({ base: { abits: 3 }, axes: { wbits: [3, 9] } }, /cell w9a3-[0-9a-f]{8} .*--wbits/);
    bad({ base: { wbits: 3, abits: 3 }, axes: { seed: [] } }, /axis 'seed': has no values, so the grid's product is empty/);
    bad({ base: { wbits: 3, abits: 3 } }, /the grid has no cells/);
    bad({ axes: {}, extra: 1 }, /unknown key 'extra'/);
    bad({ cells: [{ wbits: 3, abits: 3, out: 'x' }] }, /cells\[0\]: unknown setting 'out'/);
    bad({ cells: [{ wbits: 3 }] }, /required option '--abits <k>' not specified/);
    assertOneLineError(granq('sweep', path.join(d, 'none.json'), '--out', path.join(d, 'o')), 1, /GRID: no such file/);
    // Unreachable Redis: nothing listens on the port.
    const port = await freePort();
    assertOneLineError(granq('sweep', gridFile, '--out', path.join(d, 'r'), '--redis', `redis://127.0.0.1:${port}`), 1,
      new RegExp(`--redis: cannot reach Redis at redis://127.0.0.1:${port} \\(`));
    assertOneLineError(granq('sweep', gridFile, '--out', path.join(d, 'r'), '--redis', 'http://x'), 1, /--redis: 'http:\/\/x': expected redis:\/\//);
    // A folder holding another grid's sweep.
    const other = writeGrid(d, { ...GRID, axes: { ...GRID.axes, seed: [5] } }, 'other.json');
    assertOneLineError(granq('sweep', other, '--out', embedded), 1, /--out: .* holds the sweep of another grid \('tiny-test' from .*grid\.json, hash [0-9a-f]{16}; this grid's is [0-9a-f]{16}\): choose another --out/);
    assertOneLineError(granq('sweep', 'status', d), 1, /holds no sweep \(no sweep.json\)/);
    assertOneLineError(granq('worker', '--redis', 'redis://127.0.0.1:1', '--out', embedded), 1, /is an embedded one \(started without --redis\)/);
    fs.rmSync(d, { recursive: true, force: true });
  });
});
