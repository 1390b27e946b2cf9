/**
 * The regular files of a (gunzipped) tar archive, read in memory: enough for an npm package tarball (ustar headers,
 * names split into prefix + name, and PAX `path` records, which npm writes for long names). Links, folders and
 * other entry types are skipped.
 */
import { GranqError } from '../errors.js';

const BLOCK = 512;

function field(h: Uint8Array, from: number, len: number): string {
  const end = h.indexOf(0, from);
  return Buffer.from(h.subarray(from, end === -1 || end > from + len ? from + len : end)).toString('utf8');
}

function octal(h: Uint8Array, from: number, len: number, name: string, where: string): number {
  const s = field(h, from, len).trim();
  if (!/^[0-7]+$/.test(s)) throw new GranqError(`${name}: entry at byte ${where}: expected an octal size, got '${s}'`);
  return parseInt(s, 8);
}

/** `path=` of a PAX extended header ("<len> path=<value>\n" records). */
function paxPath(body: Uint8Array): string | null {
  const text = Buffer.from(body).toString('utf8');
  for (const rec of text.split('\n')) {
    const m = /^\d+ path=(.*)$/s.exec(rec);
    if (m) return m[1]!;
  }
  return null;
}

/** Entry name -> contents (views into `tar`, not copies). `name` labels errors. */
export function readTar(tar: Uint8Array, name: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  let at = 0;
  let nextName: string | null = null;
  while (at + BLOCK <= tar.length) {
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break; // end-of-archive marker
    const size = octal(h, 124, 12, name, String(at));
    const type = String.fromCharCode(h[156]!);
    const body = at + BLOCK;
    if (body + size > tar.length) throw new GranqError(`${name}: entry at byte ${at} claims ${size} bytes, the archive ends first`);
    const data = tar.subarray(body, body + size);
    if (type === 'x') {
      nextName = paxPath(data);
    } else if (type === '0' || type === '\0') {
      const prefix = field(h, 345, 155);
      const own = field(h, 0, 100);
      files.set(nextName ?? (prefix ? `${prefix}/${own}` : own), data);
      nextName = null;
    } else {
      nextName = null;
    }
    at = body + Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}
