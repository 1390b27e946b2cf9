/**
 * Atomic file writes: the bytes go to a temporary file beside `<path>` (`<path>.<pid>-<n>.tmp`, its own to this write,
 * so that two processes writing one file, such as two sweeps over one folder, never rename each other's), are
 * flushed, then renamed over `<path>`, so a reader (or a crash half-way) never sees a truncated weights file or
 * sidecar; of concurrent writers the last rename wins.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import { GranqError } from '../errors.js';

let writes = 0;

/** Writes `chunks` in order to `path` atomically; on failure the temporary file is removed. */
export function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): void {
  const tmp = `${path}.${process.pid}-${writes++}.tmp`;
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'w');
    for (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) off += fs.writeSync(fd, c, off, c.byteLength - off);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    if (e instanceof GranqError) throw e;
    throw new GranqError(`${path}: could not write the file (${(e as Error).message})`);
  }
}

/**
 * Checks that `dir` is, or can be created as, a directory: it and its nearest existing ancestor must be directories.
 * A one-line error naming `flag` otherwise, before any work is done (the directory itself is created later).
 */
export function checkDirTarget(dir: string, flag: string): void {
  let at = dir;
  for (;;) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(at);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new GranqError(`${flag}: ${dir}: ${(e as Error).message}`);
    }
    if (st) {
      if (!st.isDirectory()) {
        throw new GranqError(at === dir ? `${flag}: ${dir} is a file, expected a directory`
          : `${flag}: ${dir} cannot be a directory: ${at} is a file`);
      }
      return;
    }
    const up = nodePath.dirname(at);
    if (up === at) return;
    at = up;
  }
}
