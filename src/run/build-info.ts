/**
 * Which code made a run: the package version and the git commit of the build (dist/build-info.json, written by
 * scripts/write-build-info.mjs after tsc), with `dirty` true when tracked files differed from that commit. Recorded in
 * every result.json, so that a run made from a copied build still names its code; null fields where unknown.
 */
import { readFileSync } from 'node:fs';

export interface BuildInfo {
  version: string | null;
  commit: string | null;
  dirty: boolean | null;
}

let cached: BuildInfo | null = null;

export function buildInfo(): BuildInfo {
  if (cached) return cached;
  try {
    // dist/src/run/build-info.js -> dist/build-info.json
    const b = JSON.parse(readFileSync(new URL('../../build-info.json', import.meta.url), 'utf8')) as Partial<BuildInfo>;
    cached = { version: b.version ?? null, commit: b.commit ?? null, dirty: b.dirty ?? null };
  } catch {
    cached = { version: null, commit: null, dirty: null };
  }
  return cached;
}

/** A commit as docs give it: 7 hex digits, '+' when the build had uncommitted changes; '–' when unknown. */
export function shortCommit(b: Pick<BuildInfo, 'commit' | 'dirty'> | null | undefined): string {
  return b?.commit ? `${b.commit.slice(0, 7)}${b.dirty ? '+' : ''}` : '–';
}
