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

function readJson(rel: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** The build's record; a build made without it (plain tsc) still has package.json's version. */
export function buildInfo(): BuildInfo {
  if (cached) return cached;
  // dist/src/run/build-info.js -> dist/build-info.json, and the package.json beside dist/
  const b = (readJson('../../build-info.json') ?? {}) as Partial<BuildInfo>;
  const version = b.version ?? ((readJson('../../../package.json')?.version as string | undefined) ?? null);
  cached = { version, commit: b.commit ?? null, dirty: b.dirty ?? null };
  return cached;
}

/** `granq --version`: the version and, where known, the commit of the build. */
export function versionLine(): string {
  const b = buildInfo();
  return `${b.version ?? 'unknown'}${b.commit ? ` (${shortCommit(b)})` : ''}`;
}

/** A commit as docs give it: 7 hex digits, '+' when the build had uncommitted changes; '–' when unknown. */
export function shortCommit(b: Pick<BuildInfo, 'commit' | 'dirty'> | null | undefined): string {
  return b?.commit ? `${b.commit.slice(0, 7)}${b.dirty ? '+' : ''}` : '–';
}
