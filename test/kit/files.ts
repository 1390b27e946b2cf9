/** File checks shared by the I/O tests. */
import fs from 'node:fs';
import path from 'node:path';

/** The temporary files an atomic write of `file` would leave beside it (`<file>.<pid>-<n>.tmp`). */
export function leftoverTemps(file: string): string[] {
  const base = path.basename(file);
  return fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith(`${base}.`) && n.endsWith('.tmp'));
}
