/**
 * Where the CIFAR data lives. In order: the explicit `--data DIR`, then env GRANQ_DATA, then `../shared/data` relative
 * to the working directory, then `../shared/data` relative to the package root (the repo, 3 levels above
 * dist/src/data/), then the package's own `data/` (where `granq data fetch` writes by default; ignored by git).
 * An explicit choice that does not exist is an error, never a silent fallback.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GranqError } from '../errors.js';

export type DataDirSource = 'flag' | 'env' | 'cwd' | 'package' | 'fetched';

export interface DataDirResolution {
  dir: string;
  /** Which rule found it, for logs and reports. */
  source: DataDirSource;
}

export interface ResolveDataDirOptions {
  /** The `--data` value, if the user gave one. */
  data?: string;
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Defaults to process.cwd(). */
  cwd?: string;
  /** Defaults to the repo root of this package. */
  packageRoot?: string;
  /**
   * Among the default places (not --data or GRANQ_DATA), the first for which this holds wins over earlier ones that
   * merely exist (`granq train` prefers a folder with all five training batches to ../shared's one).
   */
  prefer?: (dir: string) => boolean;
}

/** The repo root: this file is dist/src/data/data-dir.js once built. */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** Where `granq data fetch` writes when no --to is given, the last place resolveDataDir() looks. */
export function fetchedDataDir(root = packageRoot()): string {
  return path.join(root, 'data');
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Where `../shared/<rel>` may be: next to the working directory, then next to this repository. */
export function sharedCandidates(rel: string, cwd = process.cwd(), root = packageRoot()): [string, DataDirSource][] {
  return [[path.resolve(cwd, '..', 'shared', rel), 'cwd'], [path.resolve(root, '..', 'shared', rel), 'package']];
}

/** The first existing `../shared/<rel>` (file or folder), or null. */
export function findShared(rel: string): string | null {
  return sharedCandidates(rel).map(([p]) => p).find((p) => fs.existsSync(p)) ?? null;
}

export function resolveDataDir(opts: ResolveDataDirOptions = {}): DataDirResolution {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  if (opts.data !== undefined) {
    const dir = path.resolve(cwd, opts.data);
    if (!isDir(dir)) throw new GranqError(`--data: expected an existing directory, got ${opts.data} (${dir} is not one)`);
    return { dir, source: 'flag' };
  }
  const fromEnv = env['GRANQ_DATA'];
  if (fromEnv !== undefined && fromEnv !== '') {
    const dir = path.resolve(cwd, fromEnv);
    if (!isDir(dir)) throw new GranqError(`GRANQ_DATA: expected an existing directory, got ${fromEnv} (${dir} is not one)`);
    return { dir, source: 'env' };
  }
  const checked: string[] = [];
  const root = opts.packageRoot ?? packageRoot();
  const candidates: [string, DataDirSource][] = [...sharedCandidates('data', cwd, root), [fetchedDataDir(root), 'fetched']];
  const existing = candidates.filter(([dir]) => isDir(dir));
  const preferred = opts.prefer ? existing.find(([dir]) => opts.prefer!(dir)) : undefined;
  const found = preferred ?? existing[0];
  if (found) return { dir: found[0], source: found[1] };
  for (const [dir] of candidates) if (!checked.includes(dir)) checked.push(dir);
  throw new GranqError(
    'no CIFAR data found: run `granq data fetch cifar10`, or pass --data DIR or set GRANQ_DATA to a folder holding ' +
      'cifar-10-batches-bin/test_batch.bin ' +
      `(checked: ${checked.join(', ')})`,
  );
}
