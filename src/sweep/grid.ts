/**
 * A sweep's grid file: base settings, axes whose cartesian product gives the cells, and optional extra cells. A
 * setting is a `granq quantize` flag without its dashes (`wbits`, `lr-s`, `eval-every`, `nesterov: false` for
 * --no-nesterov); an axis is a setting with a list of values, or a free name with a list of objects of settings (to
 * vary several flags together, e.g. `bits: [{wbits: 3, abits: 3}, ...]`). The caller supplies the check of one cell's
 * settings (cli/sweep.ts parses them with quantize's own option parsers), so the grid is checked once, up front, and
 * each bad value is one error naming the cell.
 *
 * Ids: `w3a3-granq-channel-s0-1a2b3c4d`, a readable part plus the first 8 hex digits of the sha256 of the cell's
 * settings in canonical form (sorted keys), so the same grid always gives the same ids and the same cell has the same
 * id in every grid. The grid's hash is that of its sorted cell ids: it names the BullMQ queue and marks DIR/sweep.json.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { GranqError } from '../errors.js';

export type SettingValue = string | number | boolean | number[];
export type Settings = Record<string, SettingValue>;

export interface GridCell {
  id: string;
  settings: Settings;
}

export interface Grid {
  file: string;
  name: string;
  description: string;
  hash: string;
  cells: GridCell[];
}

/**
 * What the caller knows of the settings: the keys allowed, a cell's command-line arguments (no --out), and a check of
 * one cell's settings (throws GranqError).
 */
export interface SettingsSchema {
  keys: readonly string[];
  args(settings: Settings): string[];
  check(settings: Settings): void;
}

const TOP_KEYS = ['name', 'description', 'base', 'axes', 'cells'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keys sorted at every depth: the canonical JSON the ids are hashed from. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export function cellId(settings: Settings): string {
  const s = settings;
  const parts: string[] = [];
  if (s['wbits'] !== undefined || s['abits'] !== undefined) parts.push(`w${s['wbits'] ?? 'x'}a${s['abits'] ?? 'x'}`);
  for (const k of ['act', 'weight']) if (s[k] !== undefined) parts.push(String(s[k]));
  if (s['seed'] !== undefined) parts.push(`s${s['seed']}`);
  const readable = parts.join('-').toLowerCase().replace(/[^a-z0-9.]+/g, '-');
  const hash = sha256(canonicalJson(settings)).slice(0, 8);
  return readable ? `${readable}-${hash}` : hash;
}

export function gridHash(cells: readonly GridCell[]): string {
  return sha256(cells.map((c) => c.id).sort().join('\n')).slice(0, 16);
}

/** A short human form of a cell's settings for error messages: `wbits 3, act granq`. */
export const describeSettings = (s: Settings) => Object.entries(s).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : v}`).join(', ');

function checkValue(where: string, key: string, v: unknown): SettingValue {
  if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x))) return v as number[];
  throw new GranqError(`${where}: setting '${key}' must be a string, a number, a boolean or a list of numbers, got ${JSON.stringify(v)}`);
}

function checkSettings(where: string, v: unknown, schema: SettingsSchema): Settings {
  if (!isObject(v)) throw new GranqError(`${where}: expected an object of settings, got ${JSON.stringify(v)}`);
  const out: Settings = {};
  for (const [k, x] of Object.entries(v)) {
    if (!schema.keys.includes(k)) throw new GranqError(`${where}: unknown setting '${k}' (known: ${schema.keys.join(', ')})`);
    out[k] = checkValue(where, k, x);
  }
  return out;
}

/** Parses and checks a grid; every problem is one GranqError naming the file and, for a cell's values, the cell. */
export function parseGrid(file: string, text: string, schema: SettingsSchema): Grid {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new GranqError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(raw)) throw new GranqError(`${file}: expected a JSON object with ${TOP_KEYS.join(', ')}`);
  for (const k of Object.keys(raw)) {
    if (!(TOP_KEYS as readonly string[]).includes(k)) throw new GranqError(`${file}: unknown key '${k}' (known: ${TOP_KEYS.join(', ')})`);
  }
  const base = raw['base'] === undefined ? {} : checkSettings(`${file}: base`, raw['base'], schema);
  const axesRaw = raw['axes'] ?? {};
  if (!isObject(axesRaw)) throw new GranqError(`${file}: axes: expected an object of axis name -> list of values`);
  const axes: Settings[][] = [];
  for (const [name, values] of Object.entries(axesRaw)) {
    const where = `${file}: axis '${name}'`;
    if (!Array.isArray(values)) throw new GranqError(`${where}: expected a list of values`);
    if (values.length === 0) throw new GranqError(`${where}: has no values, so the grid's product is empty`);
    if (schema.keys.includes(name)) axes.push(values.map((v) => ({ [name]: checkValue(where, name, v) })));
    else if (values.every(isObject)) axes.push(values.map((v, i) => checkSettings(`${where}, value ${i + 1}`, v, schema)));
    else throw new GranqError(`${where}: unknown setting '${name}' (an axis is a setting, or any name whose values are objects of settings; known settings: ${schema.keys.join(', ')})`);
  }
  const extraRaw = raw['cells'] ?? [];
  if (!Array.isArray(extraRaw)) throw new GranqError(`${file}: cells: expected a list of objects of settings`);
  const combos: Settings[] = [];
  if (axes.length) {
    let product: Settings[] = [{}];
    for (const axis of axes) product = product.flatMap((p) => axis.map((v) => ({ ...p, ...v })));
    combos.push(...product.map((p) => ({ ...base, ...p })));
  }
  extraRaw.forEach((c, i) => combos.push({ ...base, ...checkSettings(`${file}: cells[${i}]`, c, schema) }));
  if (!combos.length) throw new GranqError(`${file}: the grid has no cells (give axes with values, or cells)`);
  const cells: GridCell[] = [];
  const seen = new Map<string, number>();
  combos.forEach((settings, i) => {
    const id = cellId(settings);
    if (seen.has(id)) throw new GranqError(`${file}: cells ${seen.get(id)! + 1} and ${i + 1} have the same settings (${describeSettings(settings)})`);
    seen.set(id, i);
    try {
      schema.check(settings);
    } catch (e) {
      if (e instanceof GranqError) throw new GranqError(`${file}: cell ${id} (${describeSettings(settings)}): ${e.message}`);
      throw e;
    }
    cells.push({ id, settings });
  });
  const name = typeof raw['name'] === 'string' ? raw['name'] : file.replace(/^.*\//, '').replace(/\.json$/, '');
  const description = typeof raw['description'] === 'string' ? raw['description'] : '';
  return { file, name, description, hash: gridHash(cells), cells };
}

/**
 * The cells named by `spec` (comma-separated cell ids or id prefixes, e.g. `w3a3-granq-channel-s0,w4a4`), in the
 * order the list gives them: a sweep can run the cells that matter first. Each name must match at least one cell.
 */
export function selectCells(cells: readonly GridCell[], spec: string): GridCell[] {
  const names = spec.split(',').map((s) => s.trim()).filter((s) => s.length);
  if (!names.length) throw new GranqError('--cells: expected cell ids or id prefixes, comma-separated');
  const chosen: GridCell[] = [];
  for (const n of names) {
    const hits = cells.filter((c) => c.id === n || c.id.startsWith(n));
    if (!hits.length) throw new GranqError(`--cells: no cell id starts with '${n}' (see the ids with --dry-run)`);
    for (const c of hits) if (!chosen.includes(c)) chosen.push(c);
  }
  return chosen;
}

export function readGrid(file: string, schema: SettingsSchema): Grid {
  if (!existsSync(file)) throw new GranqError(`GRID: no such file ${file}`);
  return parseGrid(file, readFileSync(file, 'utf8'), schema);
}
