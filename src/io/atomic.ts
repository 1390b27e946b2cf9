/**
 * Atomic file writes: the bytes go to `<path>.tmp`, are flushed, then renamed over `<path>`, so a reader (or a crash
 * half-way) never sees a truncated weights file or sidecar.
 */
import fs from 'node:fs';
import { GranqError } from '../errors.js';

/** Writes `chunks` in order to `path` atomically; on failure the temporary file is removed. */
export function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): void {
  const tmp = `${path}.tmp`;
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
